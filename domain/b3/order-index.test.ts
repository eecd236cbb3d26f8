import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { OrderIndex } from './order-index.ts';

const order = (id: string) => ({ id });

describe('the order index', () => {
  it('finds what was added and forgets what was deleted', () => {
    const index = new OrderIndex<{ id: string }>();
    const ana = order('ana-1');
    index.add(ana);
    index.add(order('bia-1'));
    expect(index.get('ana-1')).toBe(ana);
    expect(index.delete('ana-1')).toBe(true);
    expect(index.get('ana-1')).toBeUndefined();
    expect(index.delete('ana-1')).toBe(false);
    expect(index.has('bia-1')).toBe(true);
    expect(index.size).toBe(1);
  });

  it('behaves as a Map over any sequence of adds and deletes, through growth and wrap-around', () =>
    fc.assert(
      fc.property(
        // Few distinct ids and a tiny table: long probe runs, wrap-around and many backward shifts.
        fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 60 })), { maxLength: 300 }),
        (steps) => {
          const index = new OrderIndex<{ id: string }>(2);
          const map = new Map<string, { id: string }>();
          for (const [adding, n] of steps) {
            const id = `o${n}`;
            if (adding && !map.has(id)) {
              const entry = order(id);
              index.add(entry);
              map.set(id, entry);
            } else expect(index.delete(id)).toBe(map.delete(id));
            expect(index.size).toBe(map.size);
            for (let other = 0; other <= 60; other++)
              expect(index.get(`o${other}`)).toBe(map.get(`o${other}`));
          }
          expect(new Set(index.values())).toEqual(new Set(map.values()));
        },
      ),
    ));
});
