import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { topicCatalogue } from '../../adapters/kafka/topics.ts';
import { MemoryEventStore } from '../../adapters/memory/event-store.ts';
import { MemoryPriceCache } from '../../adapters/memory/price-cache.ts';
import { quoteStreamId } from '../../domain/b3/quote-events.ts';
import { b3Schemas, eventually } from '../shared/trading-fixtures.ts';
import { lastRecordedPrice, MarketDataFeed, type MarketDataFeedOptions } from './feed.ts';
import { routeB3Events } from './integration.ts';

function feed(options: Partial<MarketDataFeedOptions> = {}) {
  const store = new MemoryEventStore({ schemas: b3Schemas() });
  const brokerPrices = new MemoryPriceCache();
  const marketPrices = new MemoryPriceCache();
  return {
    store,
    brokerPrices,
    marketPrices,
    feed: new MarketDataFeed({ store, brokerPrices, marketPrices, ...options }),
  };
}

describe('market data feed', () => {
  it('sends each quote to both caches and to a QuoteReceived event, once however often it is replayed', async () => {
    const { store, brokerPrices, marketPrices, feed: quotes } = feed();
    const quote = { symbol: 'PETR4', price: 32_55, at: 1_000, source: 'replay:x' };
    await quotes.publish(quote);
    await quotes.publish(quote);
    expect(await brokerPrices.get('PETR4')).toMatchObject({ price: 32_55, at: 1_000, pinned: false });
    expect(await marketPrices.get('PETR4')).toMatchObject({ price: 32_55, at: 1_000, pinned: false });
    const events = await store.readStream(quoteStreamId('PETR4'));
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      type: 'QuoteReceived',
      data: { symbol: 'PETR4', last: 32_55, source: 'replay:x', at: 1_000 },
    });
  });

  it('drops feed quotes while switched off, and takes an admin’s pinned reference price either way', async () => {
    const { marketPrices, feed: quotes } = feed({ enabled: false, now: () => 5_000 });
    expect(await quotes.publish({ symbol: 'VALE3', price: 55_00, at: 1, source: 'feed' })).toBe(false);
    expect(await marketPrices.get('VALE3')).toBeUndefined();
    await quotes.setReferencePrice('VALE3', 54_00);
    quotes.setQuotesEnabled(true);
    await quotes.publish({ symbol: 'VALE3', price: 60_00, at: 9_000, source: 'feed' });
    expect(await marketPrices.get('VALE3')).toMatchObject({ price: 54_00, pinned: true, source: 'admin' });
    await expect(quotes.setReferencePrice('VALE3', 0)).rejects.toThrow(RangeError);
  });

  it('keeps an admin’s price pinned while the walk goes on, and after a restart', async () => {
    const walk = {
      kind: 'random-walk',
      start: { PETR4: 32_50, VALE3: 55_00 },
      seed: 9,
      intervalMs: 10,
    } as const;
    const { store, feed: quotes } = feed({ source: walk });
    await quotes.start();
    await quotes.setReferencePrice('PETR4', 32_00);
    const pinnedAt = quotes.count;
    await eventually(async () => quotes.count >= pinnedAt + 6, 5_000);
    await quotes.stop();
    // The walk moved VALE3 and left PETR4 alone: the admin's quote is PETR4's last.
    const [last] = await store.readStream(quoteStreamId('PETR4'), { direction: 'backwards', limit: 1 });
    expect(last?.data).toMatchObject({ last: 32_00, source: 'admin' });
    expect((await store.readStream(quoteStreamId('VALE3'))).length).toBeGreaterThan(3);

    // A restart: empty caches, warmed from the streams, and the walk from its seed again.
    const brokerPrices = new MemoryPriceCache();
    const marketPrices = new MemoryPriceCache();
    const restarted = new MarketDataFeed({ store, brokerPrices, marketPrices, source: walk });
    await restarted.warmCaches(['PETR4', 'VALE3']);
    await restarted.start();
    await eventually(async () => restarted.count >= 3, 5_000);
    await restarted.stop();
    for (const cache of [brokerPrices, marketPrices])
      expect(await cache.get('PETR4')).toMatchObject({ price: 32_00, source: 'admin', pinned: true });
    expect(await lastRecordedPrice(store, 'PETR4')).toMatchObject({ price: 32_00, pinned: true });
  });

  it('fills flushed caches again from the streams, quotes off or not, an admin price pinned', async () => {
    const { brokerPrices, marketPrices, feed: quotes } = feed({ enabled: false, now: () => 5_000 });
    await quotes.setReferencePrice('VALE3', 54_00);
    quotes.setQuotesEnabled(true);
    await quotes.publish({ symbol: 'PETR4', price: 32_10, at: 4_000, source: 'feed' });
    quotes.setQuotesEnabled(false);
    quotes.keepCachesWarm(20);
    // A Redis flushed under the feed: every price gone.
    for (const cache of [brokerPrices, marketPrices])
      for (const symbol of ['PETR4', 'VALE3']) await cache.delete(symbol);
    await eventually(async () => (await brokerPrices.get('VALE3')) !== undefined, 2_000);
    await eventually(async () => (await marketPrices.get('PETR4')) !== undefined, 2_000);
    await quotes.stop();
    for (const cache of [brokerPrices, marketPrices]) {
      expect(await cache.get('VALE3')).toMatchObject({ price: 54_00, pinned: true, source: 'admin' });
      expect(await cache.get('PETR4')).toMatchObject({ price: 32_10, pinned: false, at: 4_000 });
    }
  });

  it('reads a stream again only for the symbols a cache lost', async () => {
    const { store, brokerPrices, marketPrices, feed: quotes } = feed({ now: () => 5_000 });
    await quotes.publish({ symbol: 'PETR4', price: 32_10, at: 4_000, source: 'feed' });
    await quotes.publish({ symbol: 'VALE3', price: 55_20, at: 4_000, source: 'feed' });
    const read: string[] = [];
    const readStream = store.readStream.bind(store);
    store.readStream = (streamId, options) => {
      read.push(streamId);
      return readStream(streamId, options);
    };
    expect(await quotes.warmEmptiedCaches(['PETR4', 'VALE3'])).toBe(0);
    expect(read).toEqual([]);
    // Only the market cache lost VALE3: its stream alone is read, and both caches hold its price.
    await marketPrices.delete('VALE3');
    expect(await quotes.warmEmptiedCaches(['PETR4', 'VALE3'])).toBe(1);
    expect(read).toEqual([quoteStreamId('VALE3')]);
    for (const cache of [brokerPrices, marketPrices])
      expect(await cache.get('VALE3')).toMatchObject({ price: 55_20, at: 4_000 });
  });

  it('replays a Brapi recording one timestamp per tick, then stops', async () => {
    const file = join(import.meta.dirname, 'samples', 'brapi-quotes.json');
    const {
      store,
      marketPrices,
      feed: quotes,
    } = feed({ source: { kind: 'replay', file, intervalMs: 10, keepOriginalTime: true } });
    await quotes.start();
    await eventually(async () => quotes.count === 9, 5_000);
    await quotes.stop();
    expect(await marketPrices.get('PETR4')).toMatchObject({
      price: 32_49,
      at: Date.parse('2025-03-14T13:02:00Z'),
    });
    expect(await store.readStream(quoteStreamId('ITUB4'))).toHaveLength(3);
  });

  it('appends a tick’s quotes together, and one that fails does not hold back the others', async () => {
    const { store, feed: quotes } = feed();
    const append = store.append.bind(store);
    let inFlight = 0;
    let mostInFlight = 0;
    store.append = async (streamId, events, options) => {
      inFlight += 1;
      mostInFlight = Math.max(mostInFlight, inFlight);
      await new Promise((resolve) => setImmediate(resolve));
      inFlight -= 1;
      if (streamId === quoteStreamId('VALE3')) throw new Error('store refused');
      return append(streamId, events, options);
    };
    const symbols = ['PETR4', 'VALE3', 'ITUB4', 'BBAS3'];
    await quotes.publishAll(symbols.map((symbol) => ({ symbol, price: 10_00, at: 7, source: 'feed' })));
    expect(mostInFlight).toBe(symbols.length);
    for (const symbol of ['PETR4', 'ITUB4', 'BBAS3'])
      expect(await store.readStream(quoteStreamId(symbol))).toHaveLength(1);
    expect(await store.readStream(quoteStreamId('VALE3'))).toHaveLength(0);
  });

  it('walks on after a restart from the last recorded price, not from the start prices', async () => {
    const walk = { kind: 'random-walk', start: { VALE3: 55_00 }, seed: 9, intervalMs: 10 } as const;
    const { store, feed: quotes } = feed({ source: walk });
    await quotes.publish({ symbol: 'VALE3', price: 60_00, at: 1, source: 'random-walk' });
    await quotes.start();
    await eventually(async () => quotes.count >= 2, 5_000);
    await quotes.stop();
    const [first, second] = (await store.readStream(quoteStreamId('VALE3'))).map(
      (event) => (event.data as { last: number }).last,
    );
    expect(first).toBe(60_00);
    // One step of at most 0.2 % from where it was.
    expect(Math.abs(second! - 60_00)).toBeLessThanOrEqual(12);
  });

  it('says once that quotes cannot be published, and once that they are again, not a line per quote', async () => {
    const lines: Array<{ level: string; message: string; details: Record<string, unknown> }> = [];
    const line = (level: string) => (details: object, message: string) =>
      lines.push({ level, message, details: details as Record<string, unknown> });
    const { store, feed: quotes } = feed({
      logger: { info: line('info'), warn: line('warn'), error: line('error') },
    });
    const append = store.append.bind(store);
    let down = true;
    store.append = async (...args) => {
      if (down)
        throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
      return append(...args);
    };
    const tick = (at: number) =>
      quotes.publishAll(
        ['PETR4', 'VALE3', 'ITUB4'].map((symbol) => ({ symbol, price: 10_00, at, source: 'feed' })),
      );
    for (let at = 1; at <= 5; at++) await tick(at);
    down = false;
    await tick(6);
    await tick(7);
    expect(lines.map(({ level, message }) => `${level} ${message}`)).toEqual([
      'warn quotes not published: the feed goes on and says when they are again',
      'info quotes published again',
    ]);
    expect(lines[0]!.details).toMatchObject({ quotes: 3 });
    expect(lines[1]!.details).toMatchObject({ dropped: 15 });
  });

  it('walks prices from a seed on its timer', async () => {
    const { brokerPrices, feed: quotes } = feed({
      source: { kind: 'random-walk', start: { PETR4: 32_50 }, seed: 9, intervalMs: 10 },
    });
    await quotes.start();
    await eventually(async () => quotes.count >= 3, 5_000);
    await quotes.stop();
    expect((await brokerPrices.get('PETR4'))?.source).toBe('random-walk');
  });

  it('polls Brapi when configured, and keeps going after a failed poll', async () => {
    let calls = 0;
    const fakeFetch = (async () => {
      calls += 1;
      if (calls === 1) return new Response('down', { status: 503 });
      return Response.json({
        results: [{ symbol: 'PETR4', regularMarketPrice: 32.7, regularMarketTime: 1 }],
      });
    }) as typeof fetch;
    const { marketPrices, feed: quotes } = feed({
      source: {
        kind: 'brapi',
        tickers: ['PETR4'],
        intervalMs: 10,
        client: { fetch: fakeFetch, attempts: 1 },
      },
    });
    await quotes.start();
    await eventually(async () => quotes.count >= 1, 5_000);
    await quotes.stop();
    expect(await marketPrices.get('PETR4')).toMatchObject({ price: 32_70, source: 'brapi' });
  });

  it('routes quotes to assets-market-data-v1 keyed by symbol, and trades as before', async () => {
    const { store, feed: quotes } = feed();
    await quotes.publish({ symbol: 'PETR4', price: 32_50, at: 1, source: 'feed' });
    const [event] = await store.readStream(quoteStreamId('PETR4'));
    const catalogue = topicCatalogue('t');
    expect(routeB3Events(catalogue)(event!)).toEqual([
      expect.objectContaining({ topic: 't-assets-market-data-v1', key: 'PETR4' }),
    ]);
    expect(routeB3Events(catalogue)({ ...event!, streamId: 'book-PETR4', type: 'OrderRested' })).toEqual([]);
  });
});
