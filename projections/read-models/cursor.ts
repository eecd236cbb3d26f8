import { z } from 'zod';
import type { Value } from '../model.ts';

/**
 * List cursors: opaque base64url JSON naming the list and the keyset values of the last item a
 * page returned (`queries.ts`, `audit-trace.ts`). Decoding checks the values against the list's
 * keyset, so what reaches a store is always a value its columns can hold.
 */

/** A cursor that is not one a list gave out (tampered, truncated, or from another list). */
export class InvalidCursor extends Error {
  override readonly name = 'InvalidCursor';
  constructor(readonly cursor: string) {
    super('invalid cursor');
  }
}

export function encodeCursor(list: string, after: Value[]): string {
  return Buffer.from(JSON.stringify({ l: list, a: after })).toString('base64url');
}

/**
 * A keyset value that is a store position or a stream version: an integer from 0, exact in a
 * double (every store reads `bigint` back as a number within 2^53).
 */
export const CursorPosition = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

/** The keyset of a list's cursor: what each of its values must be before a store sees it. */
export type Keyset<Values extends Value[]> = z.ZodType<Values>;

/**
 * The keyset values a cursor of `list` carries, checked against `keyset`: a cursor is the caller's
 * text, so anything else (another list's, a hand-made one with a string, a fraction or a number no
 * column holds) is an `InvalidCursor` here, never an error of the store it would be sent to.
 */
export function decodeCursor<Values extends Value[]>(
  list: string,
  cursor: string | undefined,
  keyset: Keyset<Values>,
): Values | undefined {
  if (cursor === undefined || cursor === '') return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw new InvalidCursor(cursor);
  }
  const decoded = z.object({ l: z.literal(list), a: keyset }).safeParse(parsed);
  if (!decoded.success) throw new InvalidCursor(cursor);
  return decoded.data.a as Values;
}
