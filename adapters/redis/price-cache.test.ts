import { expect, it } from 'vitest';
import { isolatedName, testUrls } from '../../infra/test-infra/isolation.ts';
import { priceCacheContract } from '../shared/price-cache-contract.ts';
import { RedisPriceCache } from './price-cache.ts';

const { redisUrl } = testUrls();

priceCacheContract('Redis', () =>
  RedisPriceCache.connect({ url: redisUrl, keyPrefix: `${isolatedName('prices')}:` }),
);

it('keeps the broker asset cache and the B3 market cache apart on two Redis databases', async () => {
  const keyPrefix = `${isolatedName('prices_db')}:`;
  const broker = await RedisPriceCache.connect({ url: redisUrl, keyPrefix });
  const market = await RedisPriceCache.connect({ url: `${redisUrl.replace(/\/\d*$/, '')}/1`, keyPrefix });
  try {
    await broker.set({ symbol: 'PETR4', price: 32_50, at: 1, source: 'feed', pinned: false });
    expect(await market.get('PETR4')).toBeUndefined();
    expect((await broker.redis.hgetall(`${keyPrefix}price:PETR4`)).price).toBe('3250');
    await broker.delete('PETR4');
  } finally {
    await broker.close();
    await market.close();
  }
});
