import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { logLevel } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { openPgliteEventStore } from '../../adapters/pglite/event-store.ts';
import { RedisPriceCache } from '../../adapters/redis/price-cache.ts';
import { quoteStreamId } from '../../domain/b3/quote-events.ts';
import { isolatedName, testUrls } from '../../infra/test-infra/isolation.ts';
import { TcpProxy } from '../../infra/test-infra/tcp-proxy.ts';
import { withTimeout } from '../../projections/deadline.ts';
import { loadConfig } from './config.ts';
import { connectEventStores } from './event-stores.ts';
import { kafkaLogs } from './kafka-relays.ts';
import { startTradingServices } from './trading.ts';
import {
  b3Schemas,
  brokerSchemas,
  deposit,
  eventually,
  listInstrument,
  ordersReach,
  placeOrder,
  transferSharesIn,
  walletOf,
} from './trading-fixtures.ts';

describe('startTradingServices, embedded', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it('survives a restart: the book, the manager’s position and the admin’s prices come back from the data folder', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'tradecore-trading-'));
    dirs.push(dataDir);
    const config = loadConfig({ TRADECORE_DATA_DIR: dataDir, QUOTE_SOURCE: 'off', QUOTES_ENABLED: 'false' });
    const open = () => connectEventStores(config, { broker: brokerSchemas(), b3: b3Schemas() });

    let stores = await open();
    let services = await startTradingServices({ config, eventStores: stores });
    expect(services.description).toContain('broker↔B3 transport: in process');
    await services.marketData.setReferencePrice('PETR4', 32_50);
    await listInstrument(stores.broker, 'PETR4', 32_50);
    await deposit(stores.broker, 'before-restart', 400_000);
    await transferSharesIn(stores.broker, 'after-restart', 'PETR4', 100, 30_00);
    const buy = await placeOrder(stores.broker, {
      accountId: 'before-restart',
      symbol: 'PETR4',
      side: 'BUY',
      quantity: 100,
      price: 32_50,
    });
    await ordersReach(stores.broker, [buy], ['NEW']);
    await services.orderProcess.idle();
    await services.stop();
    await stores.close();

    stores = await open();
    services = await startTradingServices({ config, eventStores: stores });
    try {
      expect(await services.marketPrices.get('PETR4')).toMatchObject({ price: 32_50, pinned: true });
      const sell = await placeOrder(stores.broker, {
        accountId: 'after-restart',
        symbol: 'PETR4',
        side: 'SELL',
        quantity: 100,
        price: 32_50,
      });
      await ordersReach(stores.broker, [buy, sell], ['FILLED']);
      await eventually(
        async () => (await walletOf(stores.broker, 'before-restart')).positions.PETR4?.available === 100,
      );
      expect((await services.engine.book('PETR4')).size).toBe(0);
    } finally {
      await services.stop();
      await stores.close();
    }
    // Creating two PGlite databases on disk takes seconds on a busy two-core machine.
  }, 90_000);
});

describe('startTradingServices, with Redis price caches and the random-walk feed', () => {
  it('brings an admin’s pinned price back after a restart on a flushed Redis, and the B3 band uses it', async () => {
    const { redisUrl } = testUrls();
    const b3RedisUrl = `${redisUrl.replace(/\/\d*$/, '')}/1`;
    const redisKeyPrefix = `${isolatedName('pin')}:`;
    const config = loadConfig({
      REDIS_URL: redisUrl,
      B3_REDIS_URL: b3RedisUrl,
      QUOTE_SOURCE: 'random-walk',
      QUOTE_INTERVAL_MS: '10',
    });
    const broker = await openPgliteEventStore({ schema: 'broker', schemas: brokerSchemas() });
    const b3 = await openPgliteEventStore({ schema: 'b3', schemas: b3Schemas() });
    const eventStores = { broker, b3 };
    const flushRedis = async () => {
      for (const url of [redisUrl, b3RedisUrl]) {
        const cache = await RedisPriceCache.connect({ url, keyPrefix: redisKeyPrefix });
        const keys = await cache.redis.keys(`${redisKeyPrefix}*`);
        if (keys.length > 0) await cache.redis.del(...keys);
        await cache.close();
      }
    };

    let services = await startTradingServices({ config, eventStores, redisKeyPrefix });
    try {
      await services.marketData.setReferencePrice('PETR4', 32_00);
      await listInstrument(broker, 'PETR4', 32_00);
      const quotesOf = async (symbol: string) => (await b3.readStream(quoteStreamId(symbol))).length;
      const vale = await quotesOf('VALE3');
      await eventually(async () => (await quotesOf('VALE3')) >= vale + 5);
      await services.stop();
      // A flushed Redis: both caches are filled again from the quote streams at start.
      await flushRedis();

      services = await startTradingServices({ config, eventStores, redisKeyPrefix });
      for (const cache of [services.brokerPrices, services.marketPrices])
        expect(await cache.get('PETR4')).toMatchObject({ price: 32_00, source: 'admin', pinned: true });
      await deposit(broker, 'band-edge-buyer', 400_000);
      // 10 % under the pinned 32.00: the band's lower edge.
      const buy = await placeOrder(broker, {
        accountId: 'band-edge-buyer',
        symbol: 'PETR4',
        side: 'BUY',
        quantity: 100,
        price: 28_80,
      });
      const [order] = await ordersReach(broker, [buy], ['NEW', 'REJECTED']);
      expect(order).toMatchObject({ status: 'NEW' });
      expect(await services.marketPrices.get('PETR4')).toMatchObject({ price: 32_00, pinned: true });
    } finally {
      await services.stop();
      await flushRedis();
      await broker.close();
      await b3.close();
    }
  }, 90_000);
});

describe('startTradingServices, both price caches on one Redis database', () => {
  // REDIS_URL naming database 1 and no B3_REDIS_URL: the B3 market cache defaults to that same
  // database, where both caches' `price:<symbol>` keys used to be one key.
  it('keeps the two caches apart: the B3 market cache under b3:', async () => {
    const redisUrl = `${testUrls().redisUrl.replace(/\/\d*$/, '')}/1`;
    const redisKeyPrefix = `${isolatedName('shared_db')}:`;
    const config = loadConfig({ REDIS_URL: redisUrl, QUOTE_SOURCE: 'off', QUOTES_ENABLED: 'false' });
    expect(config.b3RedisUrl).toBe(redisUrl);
    const broker = await openPgliteEventStore({ schema: 'broker', schemas: brokerSchemas() });
    const b3 = await openPgliteEventStore({ schema: 'b3', schemas: b3Schemas() });
    const services = await startTradingServices({ config, eventStores: { broker, b3 }, redisKeyPrefix });
    const raw = await RedisPriceCache.connect({ url: redisUrl });
    try {
      await services.marketData.setReferencePrice('PETR4', 32_00);
      expect((await raw.redis.keys(`${redisKeyPrefix}*`)).sort()).toEqual([
        `${redisKeyPrefix}b3:price:PETR4`,
        `${redisKeyPrefix}price:PETR4`,
      ]);
      // Each cache reads its own key: deleting the broker's leaves the B3 one.
      await raw.redis.del(`${redisKeyPrefix}price:PETR4`);
      expect(await services.brokerPrices.get('PETR4')).toBeUndefined();
      expect(await services.marketPrices.get('PETR4')).toMatchObject({ price: 32_00 });
    } finally {
      await services.stop();
      const keys = await raw.redis.keys(`${redisKeyPrefix}*`);
      if (keys.length > 0) await raw.redis.del(...keys);
      await raw.close();
      await broker.close();
      await b3.close();
    }
  }, 60_000);
});

describe('startTradingServices, connected to Redis', () => {
  it('is ready only while the price caches it uses answer, and checks no server it does not use', async () => {
    const proxy = await TcpProxy.start({
      host: '127.0.0.1',
      port: Number(new URL(testUrls().redisUrl).port),
    });
    const redisUrl = `${proxy.rewrite(testUrls().redisUrl).replace(/\/\d*$/, '')}/1`;
    const config = loadConfig({ REDIS_URL: redisUrl, QUOTE_SOURCE: 'off', QUOTES_ENABLED: 'false' });
    const broker = await openPgliteEventStore({ schema: 'broker', schemas: brokerSchemas() });
    const b3 = await openPgliteEventStore({ schema: 'b3', schemas: b3Schemas() });
    const services = await startTradingServices({
      config,
      eventStores: { broker, b3 },
      redisKeyPrefix: `${isolatedName('ready')}:`,
    });
    try {
      // No AMQP_URL or KAFKA_BROKERS: the transport is in process, and there is no Kafka.
      expect(Object.keys(services.readiness).sort()).toEqual([
        'broker-asset-cache',
        'market-cache',
        'order-process',
      ]);
      for (const check of Object.values(services.readiness)) await withTimeout(check(), 2_000);
      await proxy.stop();
      const { 'order-process': orders, ...caches } = services.readiness;
      for (const [name, check] of Object.entries(caches))
        await expect(withTimeout(check(), 2_000), name).rejects.toThrow();
      // No order is failing: the order process is as ready as before.
      await expect(orders!()).resolves.toBeUndefined();
    } finally {
      await proxy.start();
      await services.stop();
      await proxy.stop();
      await broker.close();
      await b3.close();
    }
  }, 60_000);
});

describe("kafkajs' log lines", () => {
  const captured = () => {
    const lines: Array<{ level: string; details: object; message: string }> = [];
    const line = (level: string) => (details: object, message: string) =>
      lines.push({ level, details, message });
    return {
      lines,
      logger: { info: line('info'), warn: line('warn'), error: line('error'), debug: line('debug') },
    };
  };
  const entry = (level: number, log: { message: string } & Record<string, unknown>) => ({
    namespace: 'Connection',
    level,
    label: 'ERROR',
    log: { timestamp: '2026-11-28T00:00:00.000Z', ...log },
  });

  it('keep their fields under `kafka`, so that its protocol counter is not taken for a request correlation id', () => {
    const { lines, logger } = captured();
    kafkaLogs(logger)(logLevel.ERROR)(
      entry(logLevel.ERROR, { message: 'Crash: KafkaJSNumberOfRetriesExceeded', correlationId: 11 }),
    );
    expect(lines).toEqual([
      {
        level: 'error',
        details: { kafka: { timestamp: '2026-11-28T00:00:00.000Z', correlationId: 11 } },
        message: 'kafkajs: Crash: KafkaJSNumberOfRetriesExceeded',
      },
    ]);
  });

  it('are a warning for an error response kafkajs retries itself (a new topic without its leader yet)', () => {
    const { lines, logger } = captured();
    kafkaLogs(logger)(logLevel.ERROR)(
      entry(logLevel.ERROR, {
        message: 'Response ListOffsets(key: 2, version: 3)',
        error: 'This server is not the leader for that topic-partition',
        correlationId: 11,
      }),
    );
    expect(lines.map(({ level, message }) => ({ level, message }))).toEqual([
      { level: 'warn', message: 'kafkajs: Response ListOffsets(key: 2, version: 3)' },
    ]);
  });
});
