import { describe, it } from 'vitest';
import { projectionSpecification, recorded, TRADE_AT, tradeExecuted } from './testing.ts';
import { TRADE_PARTIES, TRADES, tradesProjection } from './trades.ts';

const at = TRADE_AT;
const trade = tradeExecuted;

describe('trades tape', () => {
  const given = projectionSpecification(tradesProjection);
  it('puts a trade on the tape and on both parties’ tapes', () => {
    const event = trade('t1', 3_250, 200);
    given()
      .when(event)
      .thenRow(
        TRADES,
        { trade_id: 't1' },
        { symbol: 'PETR4', price: 3_250, quantity: 200, position: event.position, executed_at: new Date(at) },
      )
      .thenRow(
        TRADE_PARTIES,
        { account_id: 'buyer', position: event.position },
        { trade_id: 't1', side: 'BUY', symbol: 'PETR4' },
      )
      .thenRow(
        TRADE_PARTIES,
        { account_id: 'seller', position: event.position },
        { trade_id: 't1', side: 'SELL', symbol: 'PETR4' },
      );
  });
  it('ignores book events', () =>
    given()
      .when(recorded('book-PETR4', 'TradingHalted', { sequence: 2, at }))
      .thenNothing());
});
