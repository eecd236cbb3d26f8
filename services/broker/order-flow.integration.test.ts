/**
 * The order path against the real servers (bash infra/test-infra/up.sh): Postgres event stores,
 * RabbitMQ between broker and B3, Redis price caches, Kafka integration events. Every name is
 * isolated per file, so the servers stay shared with the other suites.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTopics, testKafka } from '../../adapters/kafka/testing.ts';
import { topicCatalogue } from '../../adapters/kafka/topics.ts';
import { MemoryPriceCache } from '../../adapters/memory/price-cache.ts';
import { openPostgresEventStore } from '../../adapters/postgres/index.ts';
import { RabbitMqBridge } from '../../adapters/rabbitmq/bridge.ts';
import { closeConnectionByName, dropRabbitTopology } from '../../adapters/rabbitmq/testing.ts';
import { RedisPriceCache } from '../../adapters/redis/price-cache.ts';
import { bookStreamId, tradeStreamId } from '../../domain/b3/book-events.ts';
import { orderStreamId } from '../../domain/broker/order/order.ts';
import { walletStreamId } from '../../domain/broker/wallet/wallet.ts';
import type { EventStore } from '../../domain/shared/event-store.ts';
import { isolatedName, testUrls } from '../../infra/test-infra/isolation.ts';
import { EngineService } from '../b3-engine/engine-service.ts';
import { MarketDataFeed } from '../market-data/feed.ts';
import { loadConfig } from '../shared/config.ts';
import { startTradingServices, type TradingServices } from '../shared/trading.ts';
import {
  b3Schemas,
  brokerSchemas,
  deposit,
  eventually,
  haltInstrument,
  listInstrument,
  orderOf,
  ordersReach,
  placeOrder,
  resumeInstrument,
  totals,
  transferSharesIn,
  walletOf,
} from '../shared/trading-fixtures.ts';
import { OrderProcess } from './order-process.ts';

const urls = testUrls();
const RETRY_DELAYS = [20, 50];
const cleanups: Array<() => Promise<void>> = [];

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

async function postgresStores(): Promise<{ broker: EventStore; b3: EventStore }> {
  const broker = await openPostgresEventStore({
    url: urls.databaseUrl,
    schema: isolatedName('flow_broker'),
    schemas: brokerSchemas(),
  });
  const b3 = await openPostgresEventStore({
    url: urls.databaseUrl,
    schema: isolatedName('flow_b3'),
    schemas: b3Schemas(),
  });
  cleanups.push(async () => {
    await broker.close();
    await b3.close();
  });
  return { broker, b3 };
}

const b3RedisUrl = `${urls.redisUrl.replace(/\/\d*$/, '')}/1`;

type EngineOptions = ConstructorParameters<typeof EngineService>[0];
type OrderProcessOptions = ConstructorParameters<typeof OrderProcess>[0];

/**
 * The broker and engine processes of `serve broker-api` and `serve b3-engine`, each on its own
 * RabbitMQ connection, over fresh Postgres stores and Redis keys, with PETR4 listed at 32.50; not
 * started. `bridge` opens another connection on the same queues (another process's). Cleaned up
 * after the file.
 */
async function rabbitOrderPath(
  name: string,
  options: {
    reconnectDelayMs?: { initial: number; max: number };
    engineHooks?: EngineOptions['hooks'];
    brokerHooks?: OrderProcessOptions['hooks'];
  } = {},
) {
  const stores = await postgresStores();
  const prefix = isolatedName(name);
  const bridge = (connectionName: string) =>
    RabbitMqBridge.connect({
      url: urls.amqpUrl,
      prefix,
      connectionName,
      ...(options.reconnectDelayMs ? { reconnectDelayMs: options.reconnectDelayMs } : {}),
    });
  const engineConnection = isolatedName(`${name}_engine`);
  const brokerConnection = isolatedName(`${name}_broker`);
  const engineBridge = await bridge(engineConnection);
  const brokerBridge = await bridge(brokerConnection);
  const keyPrefix = `${isolatedName(name)}:`;
  const brokerPrices = await RedisPriceCache.connect({ url: urls.redisUrl, keyPrefix });
  const marketPrices = await RedisPriceCache.connect({ url: b3RedisUrl, keyPrefix });
  const feed = new MarketDataFeed({ store: stores.b3, brokerPrices, marketPrices, enabled: false });
  const engineOptions = (store: EventStore, transport: RabbitMqBridge): EngineOptions => ({
    store,
    transport,
    marketPrices,
    priceMaxAgeMs: 60_000,
    priceBandBps: 1_000,
    retryDelaysMs: RETRY_DELAYS,
  });
  const engine = new EngineService({ ...engineOptions(stores.b3, engineBridge), hooks: options.engineHooks });
  const orderProcess = new OrderProcess({
    store: stores.broker,
    transport: brokerBridge,
    assetPrices: brokerPrices,
    priceBandPercent: 10,
    retryDelaysMs: RETRY_DELAYS,
    hooks: options.brokerHooks,
  });
  cleanups.push(async () => {
    await orderProcess.stop();
    await engine.stop();
    await brokerBridge.close();
    await engineBridge.close();
    await brokerPrices.close();
    await marketPrices.close();
    await dropRabbitTopology(urls.amqpUrl, prefix, RETRY_DELAYS);
  });
  await feed.setReferencePrice('PETR4', 32_50);
  await listInstrument(stores.broker, 'PETR4', 32_50);
  return { stores, engine, orderProcess, bridge, engineOptions, engineConnection, brokerConnection };
}

describe('order path through RabbitMQ, Redis and Kafka', () => {
  let stores: { broker: EventStore; b3: EventStore };
  let services: TradingServices;
  const rabbitPrefix = isolatedName('flow');
  const connectionName = isolatedName('flow_conn');
  const topicPrefix = isolatedName('flow');

  beforeAll(async () => {
    stores = await postgresStores();
    services = await startTradingServices({
      config: loadConfig({
        AMQP_URL: urls.amqpUrl,
        REDIS_URL: urls.redisUrl,
        B3_REDIS_URL: b3RedisUrl,
        KAFKA_BROKERS: urls.kafkaBrokers.join(','),
        KAFKA_TOPIC_PREFIX: topicPrefix,
        QUOTE_SOURCE: 'off',
        QUOTES_ENABLED: 'false',
      }),
      eventStores: stores,
      rabbitPrefix,
      connectionName,
      redisKeyPrefix: `${isolatedName('flow')}:`,
      retryDelaysMs: RETRY_DELAYS,
    });
    cleanups.push(async () => {
      await services.stop();
      await dropRabbitTopology(urls.amqpUrl, rabbitPrefix, RETRY_DELAYS);
    });
    await services.marketData.setReferencePrice('PETR4', 32_50);
    await listInstrument(stores.broker, 'PETR4', 32_50);
  });

  it('fills a buy and a crossing sell, settles both wallets, records the trade, and publishes the integration events', async () => {
    const { broker, b3 } = stores;
    await deposit(broker, 'kafka-buyer', 1_000_000);
    await transferSharesIn(broker, 'kafka-seller', 'PETR4', 100, 30_00);
    const buy = await placeOrder(broker, {
      accountId: 'kafka-buyer',
      symbol: 'PETR4',
      side: 'BUY',
      quantity: 100,
      price: 32_60,
    });
    await ordersReach(broker, [buy], ['NEW']);
    const sell = await placeOrder(broker, {
      accountId: 'kafka-seller',
      symbol: 'PETR4',
      side: 'SELL',
      quantity: 100,
      price: 32_40,
    });
    const [buyOrder] = await ordersReach(broker, [buy, sell], ['FILLED']);
    expect(buyOrder!.averagePrice).toBe(32_60);

    const buyer = await eventually(async () => {
      const wallet = await walletOf(broker, 'kafka-buyer');
      return wallet.cash.reserved === 0 && wallet.positions.PETR4?.available === 100 ? wallet : undefined;
    });
    expect(buyer.cash.available).toBe(1_000_000 - 326_000);
    expect((await walletOf(broker, 'kafka-seller')).cash.available).toBe(326_000);
    // The B3 market cache in Redis (database 1) holds the admin's reference price.
    expect(await services.marketPrices.get('PETR4')).toMatchObject({ price: 32_50, pinned: true });

    const tradeId = buyOrder!.executions[0]!.executionId.replace(/-[RI]$/, '');
    expect((await b3.readStream(tradeStreamId(tradeId))).map((event) => event.type)).toEqual([
      'TradeExecuted',
    ]);

    for (const relay of services.relays)
      await eventually(
        async () => (await relay.status()).lagPositions === 0,
        20_000,
        `${relay.name} caught up`,
      );
    const catalogue = topicCatalogue(topicPrefix);
    // A relay's lag counts settled events only: one still held back by an open transaction
    // elsewhere on the server reaches Kafka a moment after "caught up".
    const read = () =>
      readTopics(testKafka(isolatedName('flow_reader')), [
        catalogue.orderEvents.name,
        catalogue.walletEvents.name,
        catalogue.tradeEvents.name,
        catalogue.marketData.name,
      ]);
    const ofBuy = (found: Awaited<ReturnType<typeof read>>) =>
      found.filter((message) => message.topic === catalogue.orderEvents.name && message.key === buy);
    const messages = await eventually(async () => {
      const found = await read();
      return ofBuy(found).length >= 4 ? found : undefined;
    });
    const typesOf = (topic: string, key: string) =>
      messages
        .filter((message) => message.topic === topic && message.key === key)
        .map((message) => message.headers['event-type']);
    expect(typesOf(catalogue.orderEvents.name, buy)).toEqual([
      'OrderPlaced',
      'OrderAccepted',
      'ExecutionRecorded',
      'OrderFilled',
    ]);
    expect(typesOf(catalogue.walletEvents.name, 'kafka-buyer')).toEqual([
      'CashDeposited',
      'CashReserved',
      'BuySettled',
    ]);
    expect(typesOf(catalogue.tradeEvents.name, 'PETR4')).toEqual(['TradeExecuted']);
    expect(typesOf(catalogue.marketData.name, 'PETR4')).toEqual(['QuoteReceived']);
  });

  it('dead-letters a poison message with its reason', async () => {
    const bridge = services.transport as RabbitMqBridge;
    await bridge.publishWire('broker-to-b3', {
      content: JSON.stringify({ orderId: 'poison', symbol: 'PETR4', quantity: -5 }),
      messageId: '0f8b6c1e-9d7a-4c3b-8e2f-1a2b3c4d5e6f',
      type: 'NewOrder',
      correlationId: 'poison-correlation',
      headers: { 'x-schema-version': 1, 'x-causation-id': 'test', 'x-attempt': 1 },
    });
    const letters = await eventually(async () => {
      const found = await bridge.deadLetters('broker-to-b3');
      return found.some((letter) => letter.messageId === '0f8b6c1e-9d7a-4c3b-8e2f-1a2b3c4d5e6f')
        ? found
        : undefined;
    });
    const poison = letters.find((letter) => letter.messageId === '0f8b6c1e-9d7a-4c3b-8e2f-1a2b3c4d5e6f')!;
    expect(poison.reason).toBe('invalid-body');
    expect(poison.detail).toMatch(/quantity|accountId/);
  });

  it('loses and doubles nothing when the RabbitMQ connection is closed in the middle of a stream of orders', async () => {
    const { broker, b3 } = stores;
    const pairs = 12;
    const accounts: string[] = [];
    for (let index = 0; index < pairs; index++) {
      await deposit(broker, `stream-buyer-${index}`, 400_000);
      await transferSharesIn(broker, `stream-seller-${index}`, 'PETR4', 100, 30_00);
      accounts.push(`stream-buyer-${index}`, `stream-seller-${index}`);
    }
    const before = await totals(broker, accounts);
    const orders: string[] = [];
    let closed = 0;
    for (let index = 0; index < pairs; index++) {
      orders.push(
        await placeOrder(broker, {
          accountId: `stream-buyer-${index}`,
          symbol: 'PETR4',
          side: 'BUY',
          quantity: 100,
          price: 33_00,
        }),
        await placeOrder(broker, {
          accountId: `stream-seller-${index}`,
          symbol: 'PETR4',
          side: 'SELL',
          quantity: 100,
          price: 33_00,
        }),
      );
      if (index === pairs / 2) closed = await closeConnectionByName(connectionName);
    }
    expect(closed).toBeGreaterThan(0);
    const filled = await ordersReach(broker, orders, ['FILLED'], 30_000);
    for (const order of filled) expect(order.executions).toHaveLength(1);
    // Each order booked once at B3, whatever was redelivered.
    const book = await b3.readStream(bookStreamId('PETR4'));
    for (const orderId of orders)
      expect(
        book.filter(
          (event) =>
            event.type === 'OrderAccepted' && (event.data as { orderId: string }).orderId === orderId,
        ),
      ).toHaveLength(1);
    await eventually(async () => {
      const wallets = await Promise.all(accounts.map((account) => walletOf(broker, account)));
      return wallets.every((wallet) => Object.keys(wallet.reservations).length === 0);
    });
    expect(await totals(broker, accounts)).toEqual(before);
    expect((services.transport as RabbitMqBridge).reconnects).toBeGreaterThan(0);
  });
});

describe('crashes between an effect and its acknowledgement', () => {
  let stores: { broker: EventStore; b3: EventStore };
  let engine: EngineService;
  let orderProcess: OrderProcess;
  const crash = { engineOrderId: '', brokerOrderId: '', engineCrashes: 0, brokerCrashes: 0 };
  /** Another engine process on the same queues: a store and a RabbitMQ connection of its own. */
  let engineProcess: (store: EventStore, connectionName: string) => Promise<EngineService>;

  beforeAll(async () => {
    let engineConnection = '';
    let brokerConnection = '';
    const path = await rabbitOrderPath('crash', {
      reconnectDelayMs: { initial: 50, max: 500 },
      engineHooks: {
        afterAppend: async (message) => {
          if (
            message.type !== 'NewOrder' ||
            (message.body as { orderId: string }).orderId !== crash.engineOrderId
          )
            return;
          if (crash.engineCrashes++ > 0) return;
          // The engine dies after its events are stored, before the reports and the ack: the next
          // delivery meets a book rebuilt from the store, as after a restart.
          engine.forget();
          await closeConnectionByName(engineConnection);
          throw new Error('test: engine crashed after append');
        },
      },
      brokerHooks: {
        afterSettlement: async (report) => {
          if (report.orderId !== crash.brokerOrderId || crash.brokerCrashes++ > 0) return;
          await closeConnectionByName(brokerConnection);
          throw new Error('test: broker crashed after settlement');
        },
      },
    });
    ({ stores, engine, orderProcess, engineConnection, brokerConnection } = path);
    engineProcess = async (store, connectionName) => {
      const transport = await path.bridge(connectionName);
      const other = new EngineService(path.engineOptions(store, transport));
      cleanups.push(async () => {
        await other.stop();
        await transport.close();
      });
      return other;
    };
    await engine.start();
    await orderProcess.start();
  });

  it('books a redelivered NewOrder once when the engine died after appending, before acking', async () => {
    const { broker, b3 } = stores;
    await deposit(broker, 'engine-crash-buyer', 500_000);
    await transferSharesIn(broker, 'engine-crash-seller', 'PETR4', 100, 30_00);
    const buy = await placeOrder(broker, {
      accountId: 'engine-crash-buyer',
      symbol: 'PETR4',
      side: 'BUY',
      quantity: 100,
      price: 32_50,
    });
    await ordersReach(broker, [buy], ['NEW']);
    const sellId = crypto.randomUUID();
    crash.engineOrderId = sellId;
    await placeOrder(broker, {
      orderId: sellId,
      accountId: 'engine-crash-seller',
      symbol: 'PETR4',
      side: 'SELL',
      quantity: 100,
      price: 32_50,
    });
    await ordersReach(broker, [buy, sellId], ['FILLED'], 30_000);
    expect(crash.engineCrashes).toBe(1);

    const book = await b3.readStream(bookStreamId('PETR4'));
    const about = (orderId: string) =>
      book.filter(
        (event) =>
          (event.data as { orderId?: string; incomingOrderId?: string }).orderId === orderId ||
          (event.data as { incomingOrderId?: string }).incomingOrderId === orderId,
      );
    expect(about(sellId).map((event) => event.type)).toEqual(['OrderAccepted', 'OrdersMatched']);
    const wallets = await eventually(async () => {
      const [buyer, seller] = await Promise.all([
        walletOf(broker, 'engine-crash-buyer'),
        walletOf(broker, 'engine-crash-seller'),
      ]);
      return buyer.cash.reserved === 0 && seller.positions.PETR4 === undefined
        ? { buyer, seller }
        : undefined;
    });
    expect(wallets.buyer.cash.available).toBe(500_000 - 325_000);
    expect(wallets.seller.cash.available).toBe(325_000);
  });

  it('settles once when the broker consumer died between settlement and ack', async () => {
    const { broker } = stores;
    await deposit(broker, 'broker-crash-buyer', 500_000);
    await transferSharesIn(broker, 'broker-crash-seller', 'PETR4', 100, 30_00);
    const buyId = crypto.randomUUID();
    crash.brokerOrderId = buyId;
    await placeOrder(broker, {
      orderId: buyId,
      accountId: 'broker-crash-buyer',
      symbol: 'PETR4',
      side: 'BUY',
      quantity: 100,
      price: 32_50,
    });
    await ordersReach(broker, [buyId], ['NEW']);
    const sell = await placeOrder(broker, {
      accountId: 'broker-crash-seller',
      symbol: 'PETR4',
      side: 'SELL',
      quantity: 100,
      price: 32_50,
    });
    const [buyOrder] = await ordersReach(broker, [buyId, sell], ['FILLED'], 30_000);
    expect(crash.brokerCrashes).toBeGreaterThan(1);
    expect(buyOrder!.executions).toHaveLength(1);

    const walletEvents = await eventually(async () => {
      const events = await broker.readStream(walletStreamId('broker-crash-buyer'));
      return events.some((event) => event.type === 'ReservationReleased' || event.type === 'BuySettled')
        ? events
        : undefined;
    });
    expect(walletEvents.filter((event) => event.type === 'BuySettled')).toHaveLength(1);
    const orderEvents = await broker.readStream(orderStreamId(buyId));
    expect(orderEvents.filter((event) => event.type === 'ExecutionRecorded')).toHaveLength(1);
    const buyer = await walletOf(broker, 'broker-crash-buyer');
    expect(buyer.cash).toEqual({ available: 500_000 - 325_000, reserved: 0 });
    expect(buyer.positions.PETR4?.available).toBe(100);
  });

  it('expires a DAY order at the broker when the engine died between booking the close and reporting it', async () => {
    const { broker, b3 } = stores;
    await deposit(broker, 'close-crash-buyer', 500_000);
    const buy = await placeOrder(broker, {
      accountId: 'close-crash-buyer',
      symbol: 'PETR4',
      side: 'BUY',
      quantity: 100,
      price: 32_00,
    });
    // NEW at the broker once reserved; resting at B3 once booked.
    await eventually(async () =>
      (await b3.readStream(bookStreamId('PETR4'))).some(
        (event) => event.type === 'OrderRested' && (event.data as { orderId: string }).orderId === buy,
      ),
    );

    // An engine process whose B3 store stops answering once it has taken the close's expiry: the
    // events are stored, the process is gone before any report of them went out.
    let died = false;
    const never = new Promise<never>(() => {});
    const dying = new Proxy(b3, {
      get(target, key) {
        if (key === 'append')
          return async (...args: Parameters<EventStore['append']>) => {
            if (died) return never;
            const result = await target.append(...args);
            if (!args[1].some((event) => event.type === 'OrderExpired')) return result;
            died = true;
            return never;
          };
        const value = Reflect.get(target, key, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const dead = new EngineService({
      store: dying,
      transport: { publish: () => never, consume: () => never },
      marketPrices: new MemoryPriceCache(),
      priceMaxAgeMs: 60_000,
      priceBandBps: 1_000,
    });
    void dead.session('PETR4', 'EndOfDay', crypto.randomUUID());
    await eventually(async () => died);
    expect((await orderOf(broker, buy)).status).toBe('NEW');

    // The engine process starts again, as its own process on RabbitMQ.
    const restarted = await engineProcess(b3, isolatedName('crash_engine_restarted'));
    await restarted.start();
    await ordersReach(broker, [buy], ['EXPIRED']);
    const wallet = await eventually(async () => {
      const held = await walletOf(broker, 'close-crash-buyer');
      return held.cash.reserved === 0 ? held : undefined;
    });
    expect(wallet.cash).toEqual({ available: 500_000, reserved: 0 });
    const orderEvents = await broker.readStream(orderStreamId(buy));
    expect(orderEvents.filter((event) => event.type === 'OrderExpired')).toHaveLength(1);
  });
});

describe('an admin halt from the broker process to the engine process, over RabbitMQ', () => {
  let stores: { broker: EventStore; b3: EventStore };
  let engine: EngineService;
  let orderProcess: OrderProcess;

  beforeAll(async () => {
    // One connection each, as `serve broker-api` and `serve b3-engine` have.
    ({ stores, engine, orderProcess } = await rabbitOrderPath('halt'));
    await orderProcess.start();
  });

  it('halts both books when the engine starts after a halt recorded while it was down; resumed, they trade', async () => {
    const { broker, b3 } = stores;
    await haltInstrument(broker, 'PETR4', 'engine down when halted');
    // The broker process sent it (its checkpoint passed the halt only once RabbitMQ confirmed it).
    await orderProcess.idle();
    expect(await b3.streamVersion(bookStreamId('PETR4'))).toBe(-1);

    await engine.start();
    // The halt as the engine stored it (its book in memory changes just before the append).
    for (const symbol of ['PETR4', 'PETR4F']) {
      const halt = await eventually(async () => (await b3.readStream(bookStreamId(symbol)))[0]);
      expect(halt, symbol).toMatchObject({
        type: 'TradingHalted',
        data: { reason: 'engine down when halted' },
      });
      expect((await engine.book(symbol)).bookStatus).toBe('HALTED');
    }

    await resumeInstrument(broker, 'PETR4');
    await eventually(async () => (await engine.book('PETR4')).bookStatus === 'NOT_OPEN');
    await deposit(broker, 'halt-buyer', 500_000);
    await transferSharesIn(broker, 'halt-seller', 'PETR4', 100, 30_00);
    const sell = await placeOrder(broker, {
      accountId: 'halt-seller',
      symbol: 'PETR4',
      side: 'SELL',
      quantity: 100,
      price: 32_50,
    });
    const buy = await placeOrder(broker, {
      accountId: 'halt-buyer',
      symbol: 'PETR4',
      side: 'BUY',
      quantity: 100,
      price: 32_50,
    });
    await ordersReach(broker, [buy, sell], ['FILLED']);
  });
});
