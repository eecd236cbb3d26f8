import { describe, expect, it } from 'vitest';
import { decodeCursor, encodeCursor, InvalidCursor } from './queries.ts';

describe('list cursors', () => {
  it('are opaque base64url tokens that give back the keyset of the last item', () => {
    const cursor = encodeCursor('orders', [1_234]);
    expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeCursor('orders', cursor, 1)).toEqual([1_234]);
    expect(decodeCursor('orders', undefined, 1)).toBeUndefined();
  });

  it('refuse a cursor of another list, of another width, or not one of ours', () => {
    expect(() => decodeCursor('trades', encodeCursor('orders', [1]), 1)).toThrow(InvalidCursor);
    expect(() => decodeCursor('orders', encodeCursor('orders', [1, 2]), 1)).toThrow(InvalidCursor);
    expect(() => decodeCursor('orders', 'not-a-cursor', 1)).toThrow(InvalidCursor);
    expect(() =>
      decodeCursor('orders', Buffer.from('{"l":"orders","a":[{}]}').toString('base64url'), 1),
    ).toThrow(InvalidCursor);
  });
});
