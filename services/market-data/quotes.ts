/**
 * Quote sources for the market data feed: a seeded random walk per symbol, and recorded quotes in
 * the Brapi `/api/quote` response format. Pure functions of their inputs (the seed, the file's
 * text), so tests and demos are repeatable.
 */
import { z } from 'zod';

/** One observed price. */
export interface Quote {
  symbol: string;
  /** Cents. */
  price: number;
  /** Epoch milliseconds. */
  at: number;
  /** The feed it came from: `random-walk`, `replay:<file>`, `brapi`, `admin`. */
  source: string;
}

/** A small, fast, seeded PRNG (mulberry32): the same seed gives the same walk on every machine. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

export interface RandomWalkOptions {
  /** Starting price per symbol, in cents. */
  start: Record<string, number>;
  seed: number;
  /** Largest move per step, in basis points of the price (default 20 = 0.2 %). */
  maxStepBps?: number;
}

/**
 * An endless random walk: each call moves every symbol by at most `maxStepBps` and returns the new
 * prices (whole cents, never below one cent). Symbols step in a fixed (sorted) order, so one seed
 * gives one path.
 */
export function randomWalk(options: RandomWalkOptions): () => Array<{ symbol: string; price: number }> {
  const random = seededRandom(options.seed);
  const maxStep = (options.maxStepBps ?? 20) / 10_000;
  const prices = new Map(Object.entries(options.start).sort(([a], [b]) => a.localeCompare(b)));
  return () =>
    [...prices.entries()].map(([symbol, price]) => {
      const next = Math.max(1, Math.round(price * (1 + (random() * 2 - 1) * maxStep)));
      prices.set(symbol, next);
      return { symbol, price: next };
    });
}

/** The fields tradecore reads from a Brapi `/api/quote/{tickers}` result; the rest is ignored. */
const BrapiResult = z
  .object({
    symbol: z.string().min(1),
    regularMarketPrice: z.number().positive(),
    /** ISO 8601, or epoch seconds (Brapi has used both). */
    regularMarketTime: z.union([z.string().min(1), z.number().nonnegative()]),
  })
  .loose();
const BrapiResponse = z.object({ results: z.array(BrapiResult) }).loose();

export class InvalidQuoteFile extends Error {
  override readonly name = 'InvalidQuoteFile';
}

/** Brapi prices are floats: 22.305 is 2230.4999… cents in binary, so trim to 12 digits before rounding half up. */
function priceInCents(price: number): number {
  return Math.max(1, Math.round(Number((price * 100).toPrecision(12))));
}

function instantOf(time: string | number): number {
  if (typeof time === 'number') return Math.round(time * 1000);
  const parsed = Date.parse(time);
  if (Number.isNaN(parsed)) throw new InvalidQuoteFile(`regularMarketTime is not a date: ${time}`);
  return parsed;
}

/**
 * Quotes from recorded Brapi responses: the file holds one response (`{results: [...]}`) or an
 * array of them (a recording over time). Sorted by time, then symbol; prices rounded to cents.
 */
export function parseBrapiRecording(text: string, source = 'replay'): Quote[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new InvalidQuoteFile(`not JSON: ${(error as Error).message}`);
  }
  const responses = Array.isArray(json) ? json : [json];
  const quotes: Quote[] = [];
  for (const [index, response] of responses.entries()) {
    const parsed = BrapiResponse.safeParse(response);
    if (!parsed.success)
      throw new InvalidQuoteFile(
        `response ${index}: ${parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ')}`,
      );
    for (const result of parsed.data.results)
      quotes.push({
        symbol: result.symbol,
        price: priceInCents(result.regularMarketPrice),
        at: instantOf(result.regularMarketTime),
        source,
      });
  }
  return quotes.sort((a, b) => a.at - b.at || a.symbol.localeCompare(b.symbol));
}
