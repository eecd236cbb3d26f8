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
import { MemoryPriceCache } from '../../adapters/memory/price-cache.ts';
import { MemoryTransport } from '../../adapters/memory/transport.ts';
import { defaultCatalogue } from '../../domain/broker/instrument/catalogue.ts';
import type { PriceCache } from '../../domain/shared/price-cache.ts';
import type { Transport } from '../../domain/shared/transport.ts';
import type { Relay, RelayCheckpoints } from '../../projections/relay.ts';
import { EngineService } from '../b3-engine/engine-service.ts';
import { type Clock, sessionClockSettings } from '../b3-engine/session-clock.ts';
import { OrderProcess } from '../broker/order-process.ts';
import { MarketDataFeed, type QuoteSourceConfig } from '../market-data/feed.ts';
import { ReferencePriceFollower } from '../market-data/reference-prices.ts';
import { b3RedisKeyPrefix, b3RedisVariable, type Config, reaching } from './config.ts';
import type { EventStores } from './event-stores.ts';
import type { KeyedLanes } from './keyed-lanes.ts';
import { type ServiceLogger, silentLogger } from './service-logger.ts';

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
        ? await reaching('AMQP_URL', amqpUrl, async () => {
            // Each server's client is loaded only where its URL is set: an embedded start does
            // not pay for loading amqplib, ioredis and kafkajs.
            const { RabbitMqBridge } = await import('../../adapters/rabbitmq/bridge.ts');
            return RabbitMqBridge.connect({
              url: amqpUrl,
              prefix: options.rabbitPrefix,
              connectionName: options.connectionName,
              logger,
            });
          })
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
        ? await reaching(variable, url, async () => {
            const { RedisPriceCache } = await import('../../adapters/redis/price-cache.ts');
            return RedisPriceCache.connect({
              url,
              keyPrefix: `${options.redisKeyPrefix ?? ''}${keyPrefix}`,
              logger,
            });
          })
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
      ? await (await import('./kafka-relays.ts')).startKafkaRelays({
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
