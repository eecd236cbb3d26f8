import type { RecordedEvent } from '../../domain/shared/event-store.ts';
import type { Change, ProjectionDefinition } from '../model.ts';
import type { RecordedTradeExecuted } from './events.ts';

/**
 * OHLCV candles (`GET /v1/market/{symbol}/candles`) of each interval in `CANDLE_INTERVALS`, from
 * the trades. Buckets are aligned to UTC (B3's session, 10:00–18:00 in São Paulo, sits inside one
 * UTC day). Open is the first trade's price (kept by `insert`), close the last one's (`set`), high
 * and low by `max`/`min`, volume and notional by increments: every trade is one write per interval.
 */
export const CANDLES = 'candles';

/**
 * The intervals, and their lengths in ms: the one list the API's schema, its OpenAPI enum and the
 * query take theirs from. Each is projected from every trade, so adding one means a new version of
 * the projection (its rows exist only from a rebuild).
 */
export const CANDLE_INTERVALS = {
  '1m': 60_000,
  '5m': 300_000,
  '15m': 900_000,
  '1h': 3_600_000,
  '1d': 86_400_000,
} as const;
export type CandleInterval = keyof typeof CANDLE_INTERVALS;
export const CANDLE_INTERVAL_NAMES = Object.keys(CANDLE_INTERVALS) as [CandleInterval, ...CandleInterval[]];
/** What `GET /v1/market/{symbol}/candles` answers when no interval is asked for. */
export const DEFAULT_CANDLE_INTERVAL: CandleInterval = '1m';
const intervals = Object.entries(CANDLE_INTERVALS);

export const candlesProjection: ProjectionDefinition = {
  name: 'candles',
  // 2: the 15m interval (version 1 projected 1m, 5m, 1h and 1d; the first start after the upgrade
  // rebuilds it, so past trades get their 15m candles too).
  version: 2,
  source: 'b3',
  store: 'postgres',
  tables: [
    {
      name: CANDLES,
      columns: {
        symbol: { type: 'text' },
        interval: { type: 'text' },
        bucket_start: { type: 'timestamp' },
        open: { type: 'bigint' },
        high: { type: 'bigint' },
        low: { type: 'bigint' },
        close: { type: 'bigint' },
        /** Shares traded. */
        volume: { type: 'bigint' },
        /** Σ price × quantity, in cents: the VWAP is notional ÷ volume. */
        notional: { type: 'bigint' },
        trades: { type: 'int' },
      },
      // The key is also the index the range query walks: symbol, interval, then time.
      primaryKey: ['symbol', 'interval', 'bucket_start'],
    },
  ],
  project(event: RecordedEvent): Change[] {
    if (event.type !== 'TradeExecuted') return [];
    const { data } = event as RecordedTradeExecuted;
    // A loop over the intervals, not a map with a callback: no closure nor entry arrays per trade.
    const changes: Change[] = [];
    for (const [interval, length] of intervals)
      changes.push({
        kind: 'upsert',
        table: CANDLES,
        key: {
          symbol: data.symbol,
          interval,
          bucket_start: new Date(data.at - (data.at % length)),
        },
        insert: { open: data.price },
        set: { close: data.price },
        max: { high: data.price },
        min: { low: data.price },
        add: { volume: data.quantity, notional: data.price * data.quantity, trades: 1 },
      });
    return changes;
  },
};
