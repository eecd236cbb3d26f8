import { z } from 'zod';

/** Building blocks shared by the broker's event schemas. */

/** An instant with its offset, as the command supplied it (`2025-03-14T13:05:00.000Z`). */
export const Timestamp = z.iso.datetime({ offset: true });
/** An identifier supplied by the caller (uuid or any non-empty opaque string). */
export const Id = z.string().min(1).max(200);
/** A strictly positive whole number of shares. */
export const Quantity = z.number().int().positive().refine(Number.isSafeInteger, 'must be a safe integer');
/** A non-negative whole number of shares. */
export const ShareCount = z
  .number()
  .int()
  .nonnegative()
  .refine(Number.isSafeInteger, 'must be a safe integer');

/**
 * A standard-market B3 ticker: a four-character issuer code (letters, and digits after the first, as in
 * `B3SA`) and a share-class number (`PETR4`, `VALE3`, `B3SA3`, `BPAC11`).
 */
export const STANDARD_SYMBOL = /^[A-Z][A-Z0-9]{3}\d{1,2}$/;
/** A fractional-market B3 ticker: the standard ticker with an `F` (`PETR4F`). */
export const FRACTIONAL_SYMBOL = /^([A-Z][A-Z0-9]{3}\d{1,2})F$/;
/** A ticker either market trades: `STANDARD_SYMBOL`, or `FRACTIONAL_SYMBOL` (`PETR4`, `PETR4F`). */
export const TRADED_SYMBOL = /^[A-Z][A-Z0-9]{3}\d{1,2}F?$/;

export const StandardSymbol = z.string().regex(STANDARD_SYMBOL, 'must be a B3 ticker such as PETR4');
export const TradedSymbol = z
  .string()
  .refine(
    (symbol) => STANDARD_SYMBOL.test(symbol) || FRACTIONAL_SYMBOL.test(symbol),
    'must be a B3 ticker such as PETR4 or PETR4F',
  );
