import type { RecordedEvent } from '../../domain/shared/event-store.ts';
import type { Change, ProjectionDefinition, Row } from '../model.ts';
import type { RecordedTradeExecuted } from './events.ts';

/**
 * The trades tape (`GET /v1/trades`): one row per B3 trade, from the `TradeExecuted` event of its
 * `trade-{tradeId}` stream, newest first by position (the keyset of the cursor). A trade has two
 * parties, so `trade_parties` indexes it once per account for the per-account tape: the account,
 * its side and the keyset columns, the rest read from `trades` by id. Both tables are tapes
 * (append-only).
 */
export const TRADES = 'trades';
export const TRADE_PARTIES = 'trade_parties';

const tradeColumns = {
  trade_id: { type: 'text' },
  symbol: { type: 'text' },
  price: { type: 'bigint' },
  quantity: { type: 'bigint' },
  buy_order_id: { type: 'text' },
  buy_account_id: { type: 'text' },
  sell_order_id: { type: 'text' },
  sell_account_id: { type: 'text' },
  aggressor_side: { type: 'text' },
  book_sequence: { type: 'bigint' },
  executed_at: { type: 'timestamp' },
  position: { type: 'bigint' },
} as const;

export const tradesProjection: ProjectionDefinition = {
  name: 'trades',
  version: 2,
  source: 'b3',
  store: 'postgres',
  tables: [
    {
      name: TRADES,
      columns: tradeColumns,
      primaryKey: ['trade_id'],
      indexes: [['position'], ['symbol', 'position']],
      appendOnly: true,
    },
    {
      name: TRADE_PARTIES,
      columns: {
        account_id: { type: 'text' },
        trade_id: { type: 'text' },
        side: { type: 'text' },
        symbol: { type: 'text' },
        position: { type: 'bigint' },
      },
      // A trade is the only one of its event, so its position identifies it within the account.
      primaryKey: ['account_id', 'position'],
      indexes: [['account_id', 'symbol', 'position']],
      appendOnly: true,
    },
  ],
  project(event: RecordedEvent): Change[] {
    if (event.type !== 'TradeExecuted') return [];
    const trade = event as RecordedTradeExecuted;
    const { data } = trade;
    const row: Row = {
      symbol: data.symbol,
      price: data.price,
      quantity: data.quantity,
      buy_order_id: data.buyOrderId,
      buy_account_id: data.buyAccountId,
      sell_order_id: data.sellOrderId,
      sell_account_id: data.sellAccountId,
      aggressor_side: data.aggressorSide,
      book_sequence: data.bookSequence,
      executed_at: new Date(data.at),
      position: event.position,
    };
    const changes: Change[] = [
      { kind: 'upsert', table: TRADES, key: { trade_id: data.tradeId }, set: row },
      party(trade, data.buyAccountId, 'BUY'),
    ];
    // A self-trade (prevented by the engine, but not impossible in old history) is one party row.
    if (data.sellAccountId !== data.buyAccountId) changes.push(party(trade, data.sellAccountId, 'SELL'));
    return changes;
  },
};

/** A trade's row in the tape of one of its accounts. */
function party(trade: RecordedTradeExecuted, accountId: string, side: 'BUY' | 'SELL'): Change {
  return {
    kind: 'upsert',
    table: TRADE_PARTIES,
    key: { account_id: accountId, position: trade.position },
    set: { trade_id: trade.data.tradeId, side, symbol: trade.data.symbol },
  };
}
