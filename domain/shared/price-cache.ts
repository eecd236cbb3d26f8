/**
 * The price cache port: the last known price of each symbol, as a market data feed (or an
 * admin) last set it. Two caches exist: the broker's asset cache (what a market buy reserves
 * against) and the B3 market cache (the reference price of the engine's price band).
 * Adapters: Redis (`adapters/redis/price-cache.ts`) and in process (`adapters/memory/price-cache.ts`).
 */
import type { Cents } from './money.ts';

export interface CachedPrice {
  symbol: string;
  price: Cents;
  /** When the price was observed, epoch milliseconds. */
  at: number;
  /** Which feed (or `admin`) set it. */
  source: string;
  /** Set by an admin command: never considered stale (deterministic tests and demos). */
  pinned: boolean;
}

export interface PriceCache {
  /** Stores a price unless a newer one (by `at`) is already there; a pinned price is replaced only by another pinned one, or goes with `delete`. */
  set(price: CachedPrice): Promise<void>;
  get(symbol: string): Promise<CachedPrice | undefined>;
  /** Removes a symbol's price (an admin resetting a demo). */
  delete(symbol: string): Promise<void>;
  close(): Promise<void>;
}

/** Why a cached price cannot serve as a reference price. */
export type PriceUnavailable = 'REFERENCE_PRICE_MISSING' | 'REFERENCE_PRICE_STALE';

/** The price, or why it cannot be used: missing, or older than `maxAgeMs` at `now` (pinned prices never age). */
export function usablePrice(
  cached: CachedPrice | undefined,
  now: number,
  maxAgeMs: number,
): { ok: true; price: Cents } | { ok: false; reason: PriceUnavailable } {
  if (!cached) return { ok: false, reason: 'REFERENCE_PRICE_MISSING' };
  if (!cached.pinned && now - cached.at > maxAgeMs) return { ok: false, reason: 'REFERENCE_PRICE_STALE' };
  return { ok: true, price: cached.price };
}

/** Whether `next` may replace `current`: pinned wins over feeds; otherwise the newer observation wins. */
export function supersedes(current: CachedPrice | undefined, next: CachedPrice): boolean {
  if (!current) return true;
  if (next.pinned) return true;
  if (current.pinned) return false;
  return next.at >= current.at;
}
