/**
 * Admins' reference prices in connected mode, against the real servers (bash
 * infra/test-infra/up.sh): broker-api, the B3 engine and the market-data service each with their
 * own composition and connections, over one isolated Postgres database, RabbitMQ and Redis. The
 * instrument events are the only thing between broker-api and the market data.
 */
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryEventStore } from '../../adapters/memory/event-store.ts';
import { MemoryPriceCache } from '../../adapters/memory/price-cache.ts';
import { RabbitMqBridge } from '../../adapters/rabbitmq/bridge.ts';
import { dropRabbitTopology } from '../../adapters/rabbitmq/testing.ts';
import { RedisPriceCache } from '../../adapters/redis/price-cache.ts';
import { bookStreamId } from '../../domain/b3/book-events.ts';
import { quoteStreamId } from '../../domain/b3/quote-events.ts';
import { defaultCatalogue } from '../../domain/broker/instrument/catalogue.ts';
import type { EventStore } from '../../domain/shared/event-store.ts';
import { isolatedName, testUrls } from '../../infra/test-infra/isolation.ts';
import { MemoryRelayCheckpoints } from '../../projections/relay.ts';
import { buildApi } from '../api/app.ts';
import { TokenIssuer } from '../api/auth.ts';
import type { App } from '../api/context.ts';
import { ensureAdmin, seedInstruments } from '../api/seed.ts';
import { EngineService } from '../b3-engine/engine-service.ts';
import { OrderProcess } from '../broker/order-process.ts';
import { loadConfig } from '../shared/config.ts';
import { connectEventStores, type EventStores } from '../shared/event-stores.ts';
import type { RunningService } from '../shared/ops-server.ts';
import {
  b3Schemas,
  brokerSchemas,
  deposit,
  eventually,
  listInstrument,
  orderOf,
  placeOrder,
  transferSharesIn,
} from '../shared/trading-fixtures.ts';
import { MarketDataFeed } from './feed.ts';
import { startMarketDataService } from './main.ts';
import { ReferencePriceFollower } from './reference-prices.ts';

const urls = testUrls();
const RETRY_DELAYS = [20, 50];
const ADMIN_PASSWORD = 'listing-admin-password';
const JWT_SECRET = 'a-test-signing-key-that-is-long-enough-for-hs256';
const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

describe('reference prices across processes: broker-api lists, market-data records, B3 trades', () => {
  const database = isolatedName('listing');
  const databaseUrl = new URL(urls.databaseUrl);
  databaseUrl.pathname = `/${database}`;
  const b3RedisUrl = `${urls.redisUrl.replace(/\/\d*$/, '')}/1`;
  const redisKeyPrefix = `${isolatedName('listing')}:`;
  const rabbitPrefix = isolatedName('listing');
  const config = loadConfig({
    DATABASE_URL: databaseUrl.toString(),
    REDIS_URL: urls.redisUrl,
    B3_REDIS_URL: b3RedisUrl,
    QUOTE_SOURCE: 'off',
    QUOTES_ENABLED: 'false',
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'silent',
    TRADECORE_JWT_SECRET: JWT_SECRET,
  });
  const symbol = 'TRLA3';

  let api: App;
  let brokerApiStores: EventStores;
  let adminToken: string;
  let traderCache: RedisPriceCache;
  let marketCache: RedisPriceCache;
  let marketData: RunningService | undefined;
  const startMarketData = async () => {
    marketData = await startMarketDataService(
      { ...config, redisUrl: urls.redisUrl, b3RedisUrl },
      pino({ level: 'silent' }),
      { redisKeyPrefix },
    );
  };

  beforeAll(async () => {
    const admin = new pg.Client({ connectionString: urls.databaseUrl });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${database}`);
    await admin.end();
    cleanups.push(async () => {
      const dropper = new pg.Client({ connectionString: urls.databaseUrl });
      await dropper.connect();
      await dropper.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
      await dropper.end();
    });

    // broker-api: the HTTP API and the order process, on its own connections.
    brokerApiStores = await connectEventStores(config);
    cleanups.push(() => brokerApiStores.close());
    const tokens = new TokenIssuer(JWT_SECRET, 3600);
    await seedInstruments(brokerApiStores.broker, defaultCatalogue);
    await ensureAdmin({ ...brokerApiStores, tokens, now: () => new Date() }, ADMIN_PASSWORD);
    api = await buildApi({
      broker: brokerApiStores.broker,
      b3: brokerApiStores.b3,
      tokens,
      referencePriceWaitMs: 1_000,
    });
    cleanups.push(() => api.close());
    const brokerBridge = await RabbitMqBridge.connect({
      url: urls.amqpUrl,
      prefix: rabbitPrefix,
      connectionName: isolatedName('listing_broker'),
    });
    const assetPrices = await RedisPriceCache.connect({ url: urls.redisUrl, keyPrefix: redisKeyPrefix });
    const orderProcess = new OrderProcess({
      store: brokerApiStores.broker,
      transport: brokerBridge,
      assetPrices,
      priceBandPercent: 10,
      retryDelaysMs: RETRY_DELAYS,
    });

    // b3-engine: its own connections.
    const engineStores = await connectEventStores(config);
    const engineBridge = await RabbitMqBridge.connect({
      url: urls.amqpUrl,
      prefix: rabbitPrefix,
      connectionName: isolatedName('listing_engine'),
    });
    const enginePrices = await RedisPriceCache.connect({ url: b3RedisUrl, keyPrefix: redisKeyPrefix });
    const engine = new EngineService({
      store: engineStores.b3,
      transport: engineBridge,
      marketPrices: enginePrices,
      priceMaxAgeMs: 60_000,
      priceBandBps: 1_000,
      retryDelaysMs: RETRY_DELAYS,
    });
    await engine.start();
    await orderProcess.start();
    cleanups.push(async () => {
      await orderProcess.stop();
      await engine.stop();
      await brokerBridge.close();
      await engineBridge.close();
      await assetPrices.close();
      await enginePrices.close();
      await engineStores.close();
      await dropRabbitTopology(urls.amqpUrl, rabbitPrefix, RETRY_DELAYS);
    });

    // market-data: `tradecore serve market-data`'s composition.
    await startMarketData();
    cleanups.push(async () => {
      await marketData?.stop();
    });

    traderCache = await RedisPriceCache.connect({ url: urls.redisUrl, keyPrefix: redisKeyPrefix });
    marketCache = await RedisPriceCache.connect({ url: b3RedisUrl, keyPrefix: redisKeyPrefix });
    cleanups.push(async () => {
      for (const cache of [traderCache, marketCache]) {
        const keys = await cache.redis.keys(`${redisKeyPrefix}*`);
        if (keys.length > 0) await cache.redis.del(...keys);
        await cache.close();
      }
    });
    const login = await api.inject({
      method: 'POST',
      url: '/v1/auth/login',
      payload: { username: 'admin', password: ADMIN_PASSWORD },
    });
    adminToken = login.json().token;
  }, 120_000);

  const admin = (url: string, payload: Record<string, unknown>) =>
    api.inject({ method: 'POST', url, headers: { authorization: `Bearer ${adminToken}` }, payload });
  const adminQuotes = async () =>
    (await brokerApiStores.b3.readStream(quoteStreamId(symbol))).filter(
      (event) => (event.data as { source: string }).source === 'admin',
    );
  /** What B3 made of an order: booked (its OrderAccepted in the book), or the broker order's rejection. */
  const b3Outcome = (orderId: string) =>
    eventually(async () => {
      const order = await orderOf(brokerApiStores.broker, orderId);
      if (order.status === 'REJECTED') return `REJECTED ${order.rejectReason}`;
      const book = await brokerApiStores.b3.readStream(bookStreamId(symbol));
      const booked = book.some(
        (event) => event.type === 'OrderAccepted' && (event.data as { orderId: string }).orderId === orderId,
      );
      return booked ? 'BOOKED' : undefined;
    }, 20_000);

  it('trades an instrument at once when an admin lists it through broker-api', async () => {
    const listing = await admin('/v1/admin/instruments', {
      symbol,
      name: 'Trial Two SA',
      lotSize: 100,
      tickSize: '0.01',
      fractional: true,
      referencePrice: '10.00',
    });
    expect(listing.statusCode, listing.body).toBe(201);
    // The answer came once the market data had the price: both caches hold it, pinned.
    for (const cache of [traderCache, marketCache])
      expect(await cache.get(symbol)).toMatchObject({ price: 10_00, source: 'admin', pinned: true });
    expect((await adminQuotes()).map((event) => (event.data as { last: number }).last)).toEqual([10_00]);
    // The default catalogue's seeded listings are the quote source's to price: none is pinned.
    expect(await marketCache.get('PETR4')).toBeUndefined();

    await transferSharesIn(brokerApiStores.broker, 'listing-seller', symbol, 500, 9_00);
    const sell = await placeOrder(brokerApiStores.broker, {
      accountId: 'listing-seller',
      symbol,
      side: 'SELL',
      quantity: 200,
      price: 10_00,
    });
    expect(await b3Outcome(sell)).toBe('BOOKED');
  }, 60_000);

  it('moves the B3 price band to an admin’s reference price', async () => {
    const priced = await admin(`/v1/admin/instruments/${symbol}/reference-price`, {
      referencePrice: '12.00',
    });
    expect(priced.statusCode, priced.body).toBe(200);
    expect(await marketCache.get(symbol)).toMatchObject({ price: 12_00, pinned: true });
    await deposit(brokerApiStores.broker, 'band-buyer', 10_000_00);
    // ±10 % around 12.00: 13.20 is the upper edge (past the band around 10.00), 13.21 is past it.
    const edge = await placeOrder(brokerApiStores.broker, {
      accountId: 'band-buyer',
      symbol,
      side: 'BUY',
      quantity: 100,
      price: 13_20,
    });
    const past = await placeOrder(brokerApiStores.broker, {
      accountId: 'band-buyer',
      symbol,
      side: 'BUY',
      quantity: 100,
      price: 13_21,
    });
    expect(await b3Outcome(edge)).toBe('BOOKED');
    expect(await b3Outcome(past)).toBe('REJECTED PRICE_BAND');
  }, 60_000);

  it('takes a price set while market-data was down when it starts again, once', async () => {
    await marketData?.stop();
    marketData = undefined;
    // broker-api answers anyway, after its wait: the event is stored, the market data is behind.
    const priced = await admin(`/v1/admin/instruments/${symbol}/reference-price`, {
      referencePrice: '11.00',
    });
    expect(priced.statusCode, priced.body).toBe(200);
    expect(await marketCache.get(symbol)).toMatchObject({ price: 12_00 });

    await startMarketData();
    await eventually(async () => ((await marketCache.get(symbol))?.price === 11_00 ? true : undefined));
    expect(await traderCache.get(symbol)).toMatchObject({ price: 11_00, source: 'admin', pinned: true });
    // One admin quote per catalogue event, across the restart: listing, 12.00, 11.00. The caches are
    // set a moment before the quote is appended to its stream, so the stream is waited for too.
    const lasts = await eventually(async () => {
      const quotes = (await adminQuotes()).map((event) => (event.data as { last: number }).last);
      return quotes.length >= 3 ? quotes : undefined;
    });
    expect(lasts).toEqual([10_00, 12_00, 11_00]);
    // 9.95 is under the band around 12.00 (10.80 to 13.20) and inside the one around 11.00.
    await deposit(brokerApiStores.broker, 'restart-buyer', 10_000_00);
    const buy = await placeOrder(brokerApiStores.broker, {
      accountId: 'restart-buyer',
      symbol,
      side: 'BUY',
      quantity: 100,
      price: 9_95,
    });
    expect(await b3Outcome(buy)).toBe('BOOKED');
  }, 60_000);

  it('switches quotes on the market-data service’s port; broker-api’s 503 says where', async () => {
    const elsewhere = await admin('/v1/admin/market/quotes', { enabled: true });
    expect(elsewhere.statusCode).toBe(503);
    expect(elsewhere.json().detail).toContain('tradecore serve market-data');
    const url = `${marketData!.url}/v1/admin/market/quotes`;
    const post = (headers: Record<string, string>, body: unknown) =>
      fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify(body),
      });
    expect((await post({}, { enabled: true })).status).toBe(401);
    const bearer = { authorization: `Bearer ${adminToken}` };
    expect((await post(bearer, { enabled: 'yes' })).status).toBe(400);
    const switched = await post(bearer, { enabled: true });
    expect(switched.status).toBe(200);
    expect(await switched.json()).toEqual({ enabled: true });
  }, 60_000);
});

describe('ReferencePriceFollower', () => {
  async function setup() {
    const broker = new MemoryEventStore({ schemas: brokerSchemas() });
    const b3 = new MemoryEventStore({ schemas: b3Schemas() });
    const marketPrices = new MemoryPriceCache();
    const feed = new MarketDataFeed({ store: b3, brokerPrices: new MemoryPriceCache(), marketPrices });
    return { broker, b3, marketPrices, feed };
  }

  it('records each catalogue price once when a crash lost the checkpoint after the quotes', async () => {
    const { broker, b3, marketPrices, feed } = await setup();
    await listInstrument(broker, 'CRSH3', 20_00, { byAdmin: true });
    // The checkpoint is never saved: every start follows the catalogue from the beginning again.
    const lost = new MemoryRelayCheckpoints();
    lost.save = async () => {
      throw new Error('test: crashed before the checkpoint');
    };
    const follower = new ReferencePriceFollower({ broker, feed, checkpoints: lost, retryDelayMs: 10 });
    await follower.start();
    await eventually(async () =>
      (await b3.readStream(quoteStreamId('CRSH3'))).length > 0 ? true : undefined,
    );
    await follower.stop();
    const again = new ReferencePriceFollower({ broker, feed, checkpoints: lost, retryDelayMs: 10 });
    await again.start();
    await new Promise((resolve) => setTimeout(resolve, 100));
    await again.stop();
    expect(await b3.readStream(quoteStreamId('CRSH3'))).toHaveLength(1);
    expect(await marketPrices.get('CRSH3')).toMatchObject({ price: 20_00, pinned: true });
  });

  it('leaves the seeded default catalogue to the quote source', async () => {
    const { broker, b3, feed } = await setup();
    await seedInstruments(broker as EventStore, defaultCatalogue.slice(0, 2));
    await listInstrument(broker, 'LAST3', 5_00, { byAdmin: true });
    const follower = new ReferencePriceFollower({ broker, feed, checkpoints: new MemoryRelayCheckpoints() });
    await follower.start();
    await eventually(async () =>
      (await b3.readStream(quoteStreamId('LAST3'))).length > 0 ? true : undefined,
    );
    await follower.stop();
    for (const spec of defaultCatalogue.slice(0, 2))
      expect(await b3.readStream(quoteStreamId(spec.symbol))).toHaveLength(0);
  });
});
