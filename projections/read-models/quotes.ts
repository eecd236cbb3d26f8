import type { RecordedEvent } from '../../domain/shared/event-store.ts';
import type { Change, ProjectionDefinition } from '../model.ts';
import { type RecordedQuoteReceived, streamEntity } from './events.ts';

/**
 * Quote history (`GET /v1/market/{symbol}/quote` and its history): every `QuoteReceived` of a
 * `quotes-{symbol}` stream, one document each, keyed by symbol and stream version (the keyset of
 * the history's cursor, newest first), and the latest quote per symbol for the quote endpoint.
 */
export const QUOTES = 'quotes';
export const LATEST_QUOTES = 'latest_quotes';

const quoteColumns = {
  symbol: { type: 'text' },
  bid: { type: 'bigint', nullable: true },
  ask: { type: 'bigint', nullable: true },
  bid_size: { type: 'bigint' },
  ask_size: { type: 'bigint' },
  last: { type: 'bigint', nullable: true },
  volume: { type: 'bigint' },
  source: { type: 'text' },
  quoted_at: { type: 'timestamp' },
  sequence: { type: 'bigint' },
} as const;

export const quotesProjection: ProjectionDefinition = {
  name: 'quotes',
  version: 1,
  source: 'b3',
  store: 'mongo',
  tables: [
    {
      name: QUOTES,
      columns: quoteColumns,
      primaryKey: ['symbol', 'sequence'],
      indexes: [['symbol', 'quoted_at']],
      appendOnly: true,
    },
    { name: LATEST_QUOTES, columns: quoteColumns, primaryKey: ['symbol'] },
  ],
  project(event: RecordedEvent): Change[] {
    const symbol = streamEntity(event.streamId, 'quotes');
    if (!symbol || event.type !== 'QuoteReceived') return [];
    const { data } = event as RecordedQuoteReceived;
    const row = {
      bid: data.bid,
      ask: data.ask,
      bid_size: data.bidSize,
      ask_size: data.askSize,
      last: data.last,
      volume: data.volume,
      source: data.source,
      quoted_at: new Date(data.at),
    };
    return [
      { kind: 'upsert', table: QUOTES, key: { symbol, sequence: event.version }, set: row },
      { kind: 'upsert', table: LATEST_QUOTES, key: { symbol }, set: { ...row, sequence: event.version } },
    ];
  },
};
