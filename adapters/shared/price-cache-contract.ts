import { afterAll, describe, expect, it } from 'vitest';
import type { PriceCache } from '../../domain/shared/price-cache.ts';

/** One contract for every PriceCache adapter. */
export function priceCacheContract(name: string, create: () => Promise<PriceCache>): void {
  describe(`${name} price cache`, () => {
    const caches: PriceCache[] = [];
    const open = async () => {
      const cache = await create();
      caches.push(cache);
      return cache;
    };
    afterAll(async () => {
      for (const cache of caches) await cache.close();
    });

    it('answers undefined for a symbol it never saw, and the last price for one it did', async () => {
      const cache = await open();
      expect(await cache.get('PETR4')).toBeUndefined();
      await cache.set({ symbol: 'PETR4', price: 32_50, at: 1_000, source: 'feed', pinned: false });
      expect(await cache.get('PETR4')).toEqual({
        symbol: 'PETR4',
        price: 32_50,
        at: 1_000,
        source: 'feed',
        pinned: false,
      });
    });

    it('keeps the newer observation when an older one arrives late', async () => {
      const cache = await open();
      await cache.set({ symbol: 'VALE3', price: 55_00, at: 2_000, source: 'feed', pinned: false });
      await cache.set({ symbol: 'VALE3', price: 54_00, at: 1_000, source: 'feed', pinned: false });
      expect((await cache.get('VALE3'))?.price).toBe(55_00);
    });

    it('keeps an admin’s pinned price against feed quotes, until another pinned price or a delete', async () => {
      const cache = await open();
      await cache.set({ symbol: 'ITUB4', price: 35_00, at: 1_000, source: 'admin', pinned: true });
      await cache.set({ symbol: 'ITUB4', price: 36_00, at: 9_000, source: 'feed', pinned: false });
      expect(await cache.get('ITUB4')).toMatchObject({ price: 35_00, pinned: true });
      await cache.set({ symbol: 'ITUB4', price: 34_00, at: 500, source: 'admin', pinned: true });
      expect((await cache.get('ITUB4'))?.price).toBe(34_00);
      await cache.delete('ITUB4');
      expect(await cache.get('ITUB4')).toBeUndefined();
    });
  });
}
