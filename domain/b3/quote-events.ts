import { z } from 'zod';
import { defineEvent, type EventDefinition } from '../shared/event-schemas.ts';

/**
 * Market data: one `QuoteReceived` event per quote update from a feed (or the engine's own top of
 * book), in the B3 event store's `quotes-{symbol}` stream. Prices are integer cents, sizes integer
 * shares, `at` epoch milliseconds, like the book events.
 */

export const quoteStreamId = (symbol: string): string => `quotes-${symbol}`;

const cents = z.number().int().positive();
const size = z.number().int().nonnegative();

export const QuoteReceivedData = z.object({
  symbol: z.string().min(1),
  /** Best bid and ask; null when that side of the book is empty. */
  bid: cents.nullable(),
  ask: cents.nullable(),
  bidSize: size,
  askSize: size,
  /** Last trade price, null before the first trade of the session. */
  last: cents.nullable(),
  /** Shares traded in the session so far. */
  volume: size,
  /** Where the quote came from: `b3-engine`, or a feed's name. */
  source: z.string().min(1),
  at: z.number().int().nonnegative(),
});
export type QuoteReceivedData = z.infer<typeof QuoteReceivedData>;
export type QuoteReceived = { type: 'QuoteReceived'; data: QuoteReceivedData };

/** Register beside `b3EventDefinitions` in the B3 event store's schema registry. */
export const quoteEventDefinitions: EventDefinition[] = [
  defineEvent({ type: 'QuoteReceived', version: 1, schema: QuoteReceivedData }),
];
