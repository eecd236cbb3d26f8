import { z } from 'zod';

/**
 * Money and prices are integer cents inside the code; decimal strings such as `"32.50"` appear only at
 * the edges (HTTP, CLI, docs). This module is the one place that converts between the two.
 */

/** An amount or price in integer cents (BRL centavos). */
export type Cents = number;

/** Any integer amount of cents, possibly negative (a difference, a balance change). */
export const Cents = z.number().int().refine(Number.isSafeInteger, 'must be a safe integer');
/** A non-negative amount of cents: balances, reservations. */
export const NonNegativeCents = Cents.refine((value) => value >= 0, 'must not be negative');
/** A strictly positive amount of cents: deposits, prices. */
export const PositiveCents = Cents.refine((value) => value > 0, 'must be positive');

/** A decimal string with at most two decimals, optionally negative: `"32.50"`, `"100"`, `"-0.05"`. */
const DECIMAL = /^(-)?(\d+)(?:\.(\d{1,2}))?$/;

/** The decimal text was not a valid amount (`reason` stays stable for API error mapping). */
export class InvalidDecimalAmount extends Error {
  override readonly name = 'InvalidDecimalAmount';
  readonly reason = 'INVALID_DECIMAL_AMOUNT';
  constructor(readonly text: string) {
    super(`not a decimal amount with at most two decimals: ${JSON.stringify(text)}`);
  }
}

/** `"32.50"` → `3250`, `"32.5"` → `3250`, `"32"` → `3200`, `"-0.05"` → `-5`. Refuses more than two decimals. */
export function toCents(text: string): Cents {
  const match = DECIMAL.exec(text.trim());
  if (!match) throw new InvalidDecimalAmount(text);
  const [, minus, units = '0', fraction = ''] = match;
  const cents = Number(units) * 100 + Number(fraction.padEnd(2, '0'));
  if (!Number.isSafeInteger(cents)) throw new InvalidDecimalAmount(text);
  return minus && cents !== 0 ? -cents : cents;
}

/** `3250` → `"32.50"`, `-5` → `"-0.05"`, `0` → `"0.00"`. */
export function formatCents(cents: Cents): string {
  if (!Number.isSafeInteger(cents)) throw new RangeError(`not an integer amount of cents: ${cents}`);
  const sign = cents < 0 ? '-' : '';
  const magnitude = Math.abs(cents);
  const units = Math.trunc(magnitude / 100);
  const fraction = String(magnitude % 100).padStart(2, '0');
  return `${sign}${units}.${fraction}`;
}

/**
 * quantity × price as a decimal string, exactly, however large: for messages about amounts too
 * large to keep as cents (`1000 × 9999999999999` → `"99999999999990.00"`).
 */
export function formatProduct(quantity: number, price: Cents): string {
  const cents = BigInt(Math.trunc(quantity)) * BigInt(Math.trunc(price));
  const sign = cents < 0n ? '-' : '';
  const magnitude = cents < 0n ? -cents : cents;
  return `${sign}${magnitude / 100n}.${String(magnitude % 100n).padStart(2, '0')}`;
}

/** The largest amount of cents kept exactly, as a decimal: `"90071992547409.91"`. */
export const LARGEST_EXACT_AMOUNT = formatCents(Number.MAX_SAFE_INTEGER);

/** A zod schema for a decimal string at an edge, parsed to cents: `DecimalAmount.parse("32.50") === 3250`. */
export const DecimalAmount = z
  .string()
  .regex(DECIMAL, 'must be a decimal amount with at most two decimals, e.g. "32.50"')
  .transform((text) => toCents(text));

/** quantity × price, refusing results that would lose integer precision. */
export function notional(quantity: number, price: Cents): Cents {
  const amount = quantity * price;
  if (!Number.isSafeInteger(amount)) throw new RangeError(`amount out of range: ${quantity} × ${price}`);
  return amount;
}

/** Whether multiplying would stay an exact integer (for deciders that must reject instead of throw RangeError). */
export function isSafeNotional(quantity: number, price: Cents): boolean {
  return Number.isSafeInteger(quantity * price);
}

/**
 * A price band's edges in cents, around `referencePrice`, `bandBps` basis points (1/100 %) either
 * side: the lowest price within it rounded up to a whole cent (never below one cent), the highest
 * rounded down (never past the largest exact amount, whatever the reference price). Worked in
 * integers, so that neither a floating-point error nor a product past 2^53 reaches a price.
 */
export function priceBandEdges(referencePrice: Cents, bandBps: number): { low: Cents; high: Cents } {
  const reference = BigInt(referencePrice);
  const bps = BigInt(bandBps);
  const low = (reference * (BASIS_POINTS - bps) + BASIS_POINTS - 1n) / BASIS_POINTS;
  const high = (reference * (BASIS_POINTS + bps)) / BASIS_POINTS;
  return {
    low: Math.max(1, Number(low)),
    high: high > LARGEST_EXACT_CENTS ? Number.MAX_SAFE_INTEGER : Number(high),
  };
}

const BASIS_POINTS = 10_000n;
const LARGEST_EXACT_CENTS = BigInt(Number.MAX_SAFE_INTEGER);

/** A band given in percent (up to two decimals: 2.5 = 2.5 %), in basis points. */
const basisPointsOf = (bandPercent: number) => Math.round(bandPercent * 100);

/** The upper edge of a price band given in percent (`priceBandEdges`). */
export function priceBandUpperEdge(referencePrice: Cents, bandPercent: number): Cents {
  return priceBandEdges(referencePrice, basisPointsOf(bandPercent)).high;
}

/** The lower edge of a price band given in percent (`priceBandEdges`). */
export function priceBandLowerEdge(referencePrice: Cents, bandPercent: number): Cents {
  return priceBandEdges(referencePrice, basisPointsOf(bandPercent)).low;
}
