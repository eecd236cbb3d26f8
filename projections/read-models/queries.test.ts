import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { CursorPosition, decodeCursor, encodeCursor, InvalidCursor } from './queries.ts';

const onePosition = z.tuple([CursorPosition]);
const cursorOf = (json: string) => Buffer.from(json).toString('base64url');

describe('list cursors', () => {
  it('are opaque base64url tokens that give back the keyset of the last item', () => {
    const cursor = encodeCursor('orders', [1_234]);
    expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeCursor('orders', cursor, onePosition)).toEqual([1_234]);
    expect(decodeCursor('orders', undefined, onePosition)).toBeUndefined();
  });

  it('refuse a cursor of another list, of another width, or not one of ours', () => {
    expect(() => decodeCursor('trades', encodeCursor('orders', [1]), onePosition)).toThrow(InvalidCursor);
    expect(() => decodeCursor('orders', encodeCursor('orders', [1, 2]), onePosition)).toThrow(InvalidCursor);
    expect(() => decodeCursor('orders', 'not-a-cursor', onePosition)).toThrow(InvalidCursor);
    expect(() => decodeCursor('orders', cursorOf('{"l":"orders","a":[{}]}'), onePosition)).toThrow(
      InvalidCursor,
    );
  });

  it('refuse keyset values no position column holds: text, fractions, unsafe or negative numbers', () => {
    for (const value of [
      '"x"',
      '"1"',
      '1.5',
      '1e308',
      '99999999999999999999',
      '9007199254740992',
      '-1',
      'null',
    ])
      expect(
        () => decodeCursor('orders', cursorOf(`{"l":"orders","a":[${value}]}`), onePosition),
        value,
      ).toThrow(InvalidCursor);
    expect(decodeCursor('orders', cursorOf('{"l":"orders","a":[9007199254740991]}'), onePosition)).toEqual([
      Number.MAX_SAFE_INTEGER,
    ]);
  });

  it('decode any text to its keyset or to InvalidCursor, nothing else', () => {
    const json = fc.oneof(
      fc.jsonValue().map((value) => JSON.stringify({ l: 'orders', a: [value] })),
      fc.jsonValue().map((value) => JSON.stringify({ l: 'orders', a: value })),
      fc.string(),
    );
    fc.assert(
      fc.property(fc.oneof(json.map(cursorOf), fc.string()), (cursor) => {
        try {
          const decoded = decodeCursor('orders', cursor, onePosition);
          if (decoded !== undefined) expect(onePosition.safeParse(decoded).success).toBe(true);
        } catch (error) {
          expect(error).toBeInstanceOf(InvalidCursor);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('give back every position they were made with', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), (position) => {
        expect(decodeCursor('orders', encodeCursor('orders', [position]), onePosition)).toEqual([position]);
      }),
    );
  });
});
