/**
 * The trading services in one composition: the order process manager (broker side), the B3
 * engine, the market data feed and the Kafka relays. Adapters are chosen by URL: RabbitMQ when
 * AMQP_URL is set (else the in-process transport), Redis when REDIS_URL / B3_REDIS_URL are set
 * (else in-process caches), Kafka relays when KAFKA_BROKERS is set (else none).
 *
 * `tradecore start` (embedded, everything in one process) and `tradecore serve …` call
 * `startTradingServices` after `connectEventStores`, and `stop()` before closing the stores.
 */
import { join } from 'node:path';
import { Kafka, type logCreator, logLevel } from 'kafkajs';
import { ensureTopics, KafkaPublisher } from '../../adapters/kafka/publisher.ts';
import { catalogueTopics, routeByStream, topicCatalogue } from '../../adapters/kafka/topics.ts';
import { MemoryPriceCache } from '../../adapters/memory/price-cache.ts';
import { MemoryTransport } from '../../adapters/memory/transport.ts';
import { RabbitMqBridge } from '../../adapters/rabbitmq/bridge.ts';
import { RedisPriceCache } from '../../adapters/redis/price-cache.ts';
import { defaultCatalogue } from '../../domain/broker/instrument/catalogue.ts';
import type { PriceCache } from '../../domain/shared/price-cache.ts';
import type { Transport } from '../../domain/shared/transport.ts';
import { withTimeout } from '../../projections/deadline.ts';
import { Relay, type RelayCheckpoints } from '../../projections/relay.ts';
import { EngineService } from '../b3-engine/engine-service.ts';
import { type Clock, sessionClockSettings } from '../b3-engine/session-clock.ts';
import { OrderProcess } from '../broker/order-process.ts';
import { MarketDataFeed, type QuoteSourceConfig } from '../market-data/feed.ts';
import { routeB3Events } from '../market-data/integration.ts';
import { ReferencePriceFollower } from '../market-data/reference-prices.ts';
import { b3RedisKeyPrefix, b3RedisVariable, type Config, reaching } from './config.ts';
import type { EventStores } from './event-stores.ts';
import type { KeyedLanes } from './keyed-lanes.ts';
import { type ServiceLogger, silentLogger } from './service-logger.ts';
import { SnapshotCheckpoints } from './snapshot-checkpoints.ts';

export interface TradingServices {
  orderProcess: OrderProcess;
  engine: EngineService;
  /** Admin commands: `marketData.setQuotesEnabled(false)`, `marketData.setReferencePrice('PETR4', 3250)`. */
  marketData: MarketDataFeed;
  /** Records the catalogue's admin prices (listings, reference price updates) through `marketData`. */
  referencePrices: ReferencePriceFollower;
  transport: Transport;
  brokerPrices: PriceCache;
  marketPrices: PriceCache;
  relays: Relay[];
  /** Dependencies `/health/ready` checks beyond the event stores (Kafka, when the relays run). */
  readiness: Record<string, () => Promise<unknown>>;
  /** One line per adapter, for the start banner. */
  description: string[];
  /** Stops taking work, drains, saves checkpoints, closes connections; the event stores stay open. */
  stop(): Promise<void>;
}

export interface StartTradingServicesOptions {
  config: Config;
  eventStores: Pick<EventStores, 'broker' | 'b3'>;
  logger?: ServiceLogger;
  /** Isolation for tests and tenants: RabbitMQ name prefix, Redis key prefix, a RabbitMQ connection name. */
  rabbitPrefix?: string;
  redisKeyPrefix?: string;
  connectionName?: string;
  /** Given adapters win over the config's (tests). */
  transport?: Transport;
  brokerPrices?: PriceCache;
  marketPrices?: PriceCache;
  /** Checkpoints for the process manager and relays (default: snapshots in each event store). */
  checkpoints?: { broker?: RelayCheckpoints; b3?: RelayCheckpoints };
  /** Transport retries (tests shorten them). */
  retryDelaysMs?: readonly number[];
  /** The engine's time and timers (tests run a session close without waiting for it). */
  clock?: Clock;
  /** The per-wallet lanes shared with the API in this process (see `OrderProcessOptions.walletLanes`). */
  walletLanes?: KeyedLanes;
}

export async function startTradingServices(options: StartTradingServicesOptions): Promise<TradingServices> {
  const { config, eventStores } = options;
  const logger = options.logger ?? silentLogger;
  const description: string[] = [];
  const closers: Array<() => Promise<void>> = [];
  const stoppers: Array<() => Promise<void>> = [];
  const stop = async () => {
    for (const stopOne of stoppers.reverse())
      await stopOne().catch((error: unknown) => logger.warn({ err: error }, 'stop failed'));
    for (const close of closers.reverse())
      await close().catch((error: unknown) => logger.warn({ err: error }, 'close failed'));
  };

  try {
    const amqpUrl = config.amqpUrl;
    const transport: Transport =
      options.transport ??
      (amqpUrl
        ? await reaching('AMQP_URL', amqpUrl, () =>
            RabbitMqBridge.connect({
              url: amqpUrl,
              prefix: options.rabbitPrefix,
              connectionName: options.connectionName,
              logger,
            }),
          )
        : // In process, a message dies with the process: a publish is confirmed once handled, so
          // that what a crash loses is sent again by its publisher (docs/order-flow.md).
          new MemoryTransport({ confirm: 'handled', logger }));
    if (!options.transport) closers.push(() => transport.close());
    description.push(config.amqpUrl ? 'broker↔B3 transport: RabbitMQ' : 'broker↔B3 transport: in process');

    const cache = async (
      given: PriceCache | undefined,
      variable: string,
      url: string | undefined,
      keyPrefix = '',
    ): Promise<PriceCache> => {
      if (given) return given;
      const created = url
        ? await reaching(variable, url, () =>
            RedisPriceCache.connect({
              url,
              keyPrefix: `${options.redisKeyPrefix ?? ''}${keyPrefix}`,
              logger,
            }),
          )
        : new MemoryPriceCache();
      closers.push(() => created.close());
      return created;
    };
    const brokerPrices = await cache(options.brokerPrices, 'REDIS_URL', config.redisUrl);
    const marketPrices = await cache(
      options.marketPrices,
      b3RedisVariable(config),
      config.b3RedisUrl,
      b3RedisKeyPrefix(config),
    );
    description.push(config.redisUrl ? 'price caches: Redis' : 'price caches: in process');

    const source = quoteSourceConfig(config);
    const marketData = new MarketDataFeed({
      store: eventStores.b3,
      brokerPrices,
      marketPrices,
      source,
      enabled: config.quotesEnabled,
      logger,
    });

    await marketData.warmCaches(defaultCatalogue.map((spec) => spec.symbol));
    // A Redis can be flushed or restarted under us; a cache in this process cannot.
    if (config.redisUrl || config.b3RedisUrl) marketData.keepCachesWarm();

    const engine = new EngineService({
      store: eventStores.b3,
      transport,
      marketPrices,
      priceMaxAgeMs: config.priceMaxAgeMs,
      priceBandBps: Math.round(config.priceBandPercent * 100),
      retryDelaysMs: options.retryDelaysMs,
      ...(options.clock ? { now: options.clock.now } : {}),
      sessionClock: sessionClockSettings(config, options.clock),
      logger,
    });
    const orderProcess = new OrderProcess({
      store: eventStores.broker,
      transport,
      assetPrices: brokerPrices,
      priceBandPercent: config.priceBandPercent,
      checkpoints: options.checkpoints?.broker,
      retryDelaysMs: options.retryDelaysMs,
      walletLanes: options.walletLanes,
      logger,
    });

    const kafka = config.kafkaBrokers
      ? await startKafkaRelays({
          brokers: config.kafkaBrokers,
          topicPrefix: config.kafkaTopicPrefix,
          eventStores,
          checkpoints: options.checkpoints,
          logger,
        })
      : undefined;
    const relays = kafka?.relays ?? [];
    if (kafka) closers.push(() => kafka.close());
    description.push(
      config.kafkaBrokers
        ? `integration events: Kafka at ${config.kafkaBrokers.join(',')}`
        : 'integration events: none (KAFKA_BROKERS unset)',
    );

    // Consumers first, producers last, so nothing waits on a service not yet started. They stop
    // the other way round, the order path from its source: the order process stops sending orders,
    // the engine books and reports what it took, and the order process takes those last reports
    // (in process, a report left unconsumed would end with the process).
    stoppers.push(async () => {
      if ((await transport.settled?.('b3-to-broker')) === false)
        logger.warn({}, 'stopping with execution reports still unhandled');
      await orderProcess.stop();
    });
    await orderProcess.consumeReports();
    await engine.start();
    stoppers.push(() => engine.stop());
    await orderProcess.start();
    stoppers.push(() => orderProcess.stopFollowing());
    for (const relay of relays) {
      await relay.start();
      stoppers.push(() => relay.stop());
    }
    await marketData.start();
    stoppers.push(() => marketData.stop());
    const referencePrices = new ReferencePriceFollower({
      broker: eventStores.broker,
      feed: marketData,
      checkpoints: options.checkpoints?.broker,
      logger,
    });
    await referencePrices.start();
    stoppers.push(() => referencePrices.stop());
    description.push(
      `session close: ${formatClose(config)} São Paulo time (B3_SESSION_CLOSE), DAY orders expire then`,
    );
    description.push(
      `market data: ${source.kind}${config.quotesEnabled ? '' : ' (quotes off)'}, price band ±${config.priceBandPercent}%`,
    );

    return {
      orderProcess,
      engine,
      marketData,
      referencePrices,
      transport,
      brokerPrices,
      marketPrices,
      relays,
      // The servers of the order path this process uses, checked as `tradecore serve` checks them.
      readiness: {
        'order-process': () => orderProcess.progress(),
        ...(config.amqpUrl ? { rabbitmq: () => transport.deadLetters('b3-to-broker', { limit: 0 }) } : {}),
        ...(config.redisUrl ? { 'broker-asset-cache': () => brokerPrices.get('PETR4') } : {}),
        ...((config.b3RedisUrl ?? config.redisUrl)
          ? { 'market-cache': () => marketPrices.get('PETR4') }
          : {}),
        ...(kafka ? { kafka: kafka.readiness } : {}),
      },
      description,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** `18:00`: the session close as B3_SESSION_CLOSE spells it. */
export function formatClose(config: Pick<Config, 'sessionClose'>): string {
  const { hour, minute } = config.sessionClose;
  return `${String(hour).padStart(2, '0')}:${String(minute).padStart(2, '0')}`;
}

/** The quote source the config names (QUOTE_SOURCE and its settings), over the default catalogue. */
export function quoteSourceConfig(config: Config): QuoteSourceConfig {
  const catalogueSymbols = defaultCatalogue.map((spec) => spec.symbol);
  switch (config.quoteSource) {
    case 'off':
      return { kind: 'off' };
    case 'brapi':
      return {
        kind: 'brapi',
        tickers: catalogueSymbols,
        intervalMs: config.quoteIntervalMs,
        client: { baseUrl: config.brapiUrl, token: config.brapiToken },
      };
    case 'replay':
      return {
        kind: 'replay',
        file: config.quoteReplayFile ?? join('services', 'market-data', 'samples', 'brapi-quotes.json'),
        intervalMs: config.quoteIntervalMs,
      };
    case 'random-walk':
      return {
        kind: 'random-walk',
        seed: config.quoteSeed,
        intervalMs: config.quoteIntervalMs,
        start: Object.fromEntries(defaultCatalogue.map((spec) => [spec.symbol, spec.referencePrice])),
      };
  }
}

/** The start's connection to Kafka: retried for about 2 s, then given up (kafkajs' default retries for ~30 s). */
const KAFKA_START_RETRY = { retries: 3, initialRetryTime: 250, maxRetryTime: 1_000 };
const KAFKA_START_TIMEOUT_MS = 10_000;

/**
 * kafkajs' own log lines into the service's logger (its default writes JSON to the console), its
 * fields under `kafka`: its `correlationId` is a protocol counter, not a request's. An error
 * response (`Response ListOffsets…`: a partition's leader moving, topics just created) is a
 * warning: kafkajs retries the request, and a request that keeps failing reaches our code, which
 * says so itself.
 */
export function kafkaLogs(logger: ServiceLogger): logCreator {
  return () =>
    ({ level, log }) => {
      const { message, ...kafka } = log;
      const line = `kafkajs: ${message}`;
      if (level <= logLevel.ERROR && !message.startsWith('Response ')) logger.error({ kafka }, line);
      else if (level <= logLevel.WARN) logger.warn({ kafka }, line);
      else logger.debug?.({ kafka }, line);
    };
}

export interface StartKafkaRelaysOptions {
  brokers: string[];
  topicPrefix: string;
  /** The stores whose events go to Kafka: the broker's, the B3's, or both. */
  eventStores: Partial<Pick<EventStores, 'broker' | 'b3'>>;
  checkpoints?: { broker?: RelayCheckpoints; b3?: RelayCheckpoints };
  logger: ServiceLogger;
}

/**
 * Creates the integration topics, connects one publisher and builds (not starts) a relay per
 * given event store. `close()` disconnects the publisher once the relays are stopped.
 */
export async function startKafkaRelays(
  options: StartKafkaRelaysOptions,
): Promise<{ relays: Relay[]; readiness: () => Promise<unknown>; close(): Promise<void> }> {
  const { eventStores, logger } = options;
  const client = {
    // Told apart by their topics' prefix on a cluster that several environments share.
    clientId: options.topicPrefix ? `tradecore-${options.topicPrefix}` : 'tradecore',
    brokers: options.brokers,
    logLevel: logLevel.WARN,
    logCreator: kafkaLogs(logger),
  };
  const kafka = new Kafka(client);
  const catalogue = topicCatalogue(options.topicPrefix);
  const publisher = new KafkaPublisher(kafka);
  // A cluster the start cannot use fails it in one line naming KAFKA_BROKERS, within the 10 s the
  // other servers get: a few quick retries (a client's own setting, connections included), not
  // kafkajs' default back-off of some 10 s per request.
  await reaching('KAFKA_BROKERS', options.brokers.join(','), async () => {
    const admin = new Kafka({ ...client, retry: KAFKA_START_RETRY }).admin();
    try {
      await withTimeout(
        (async () => {
          await admin.connect();
          await ensureTopics(
            admin,
            catalogueTopics(catalogue).map((topic) => ({ topic: topic.name, partitions: topic.partitions })),
          );
          await admin.disconnect();
          await publisher.connect();
        })(),
        KAFKA_START_TIMEOUT_MS,
      );
    } catch (error) {
      // Not awaited: a disconnect waits for the request in flight, which a server that does not
      // answer holds for kafkajs' 30 s request timeout.
      void admin.disconnect().catch(() => {});
      void publisher.disconnect().catch(() => {});
      throw error;
    }
  });
  const relays: Relay[] = [];
  if (eventStores.broker)
    relays.push(
      new Relay({
        name: 'kafka-broker',
        source: eventStores.broker,
        checkpoints: options.checkpoints?.broker ?? new SnapshotCheckpoints(eventStores.broker),
        publisher,
        map: routeByStream(catalogue),
        logger,
      }),
    );
  if (eventStores.b3)
    relays.push(
      new Relay({
        name: 'kafka-b3',
        source: eventStores.b3,
        checkpoints: options.checkpoints?.b3 ?? new SnapshotCheckpoints(eventStores.b3),
        publisher,
        map: routeB3Events(catalogue),
        logger,
      }),
    );
  // Readiness asks the cluster itself (an idle relay would not notice Kafka gone) and the relays.
  const probe = kafka.admin({ retry: { retries: 0 } });
  let probing: Promise<void> | undefined;
  const readiness = async () => {
    probing ??= probe.connect().catch((error: unknown) => {
      probing = undefined;
      throw error;
    });
    await probing;
    await probe.describeCluster();
    // A relay retrying for want of its event store is that store's trouble, which its own check names.
    // A relay whose status cannot be read (its event store out) is not Kafka's trouble either.
    const statuses = await Promise.all(relays.map((relay) => relay.status().catch(() => undefined)));
    const retrying = statuses.filter((status) => status?.publishFailing === true);
    if (retrying.length > 0)
      throw new Error(
        retrying.map((status) => `relay ${status!.relay} retrying: ${status!.error}`).join('; '),
      );
  };
  return {
    relays,
    readiness,
    close: async () => {
      await probe.disconnect().catch(() => {});
      await publisher.disconnect();
    },
  };
}
