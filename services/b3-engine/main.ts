/**
 * `tradecore serve b3-engine`: the B3 matching engine in its own process. It consumes
 * `mq-broker-to-b3` (RabbitMQ), checks prices against the B3 market cache (Redis), appends
 * `book-…` and `trade-…` events to the B3 event store and answers on `mq-b3-to-broker`; with
 * KAFKA_BROKERS set it also relays the B3 events to the integration topics.
 */
import type { Logger } from 'pino';
import { RabbitMqBridge } from '../../adapters/rabbitmq/bridge.ts';
import { RedisPriceCache } from '../../adapters/redis/price-cache.ts';
import { b3RedisKeyPrefix, b3RedisVariable, type Config, reaching } from '../shared/config.ts';
import { connectEventStores } from '../shared/event-stores.ts';
import { startKafkaRelays } from '../shared/kafka-relays.ts';
import { type RunningService, ShutdownStack, startOpsServer } from '../shared/ops-server.ts';
import { formatClose } from '../shared/trading.ts';
import { EngineService } from './engine-service.ts';
import { sessionClockSettings } from './session-clock.ts';

/** Needs AMQP_URL and a B3 market cache (B3_REDIS_URL, or REDIS_URL's database 1): `tradecore serve` checks. */
export async function startB3EngineService(
  config: Config & { amqpUrl: string; b3RedisUrl: string },
  logger: Logger,
): Promise<RunningService> {
  const stack = new ShutdownStack(logger);
  try {
    const eventStores = await connectEventStores(config, {}, logger);
    stack.push('event stores', () => eventStores.close());
    const transport = await reaching('AMQP_URL', config.amqpUrl, () =>
      RabbitMqBridge.connect({ url: config.amqpUrl, connectionName: 'b3-engine', logger }),
    );
    stack.push('transport', () => transport.close());
    const marketPrices = await reaching(b3RedisVariable(config), config.b3RedisUrl, () =>
      RedisPriceCache.connect({ url: config.b3RedisUrl, keyPrefix: b3RedisKeyPrefix(config), logger }),
    );
    stack.push('market cache', () => marketPrices.close());

    const engine = new EngineService({
      store: eventStores.b3,
      transport,
      marketPrices,
      priceMaxAgeMs: config.priceMaxAgeMs,
      priceBandBps: Math.round(config.priceBandPercent * 100),
      sessionClock: sessionClockSettings(config),
      logger: logger.child({ component: 'engine' }),
    });
    let kafkaReadiness: (() => Promise<unknown>) | undefined;
    if (config.kafkaBrokers) {
      const kafka = await startKafkaRelays({
        brokers: config.kafkaBrokers,
        topicPrefix: config.kafkaTopicPrefix,
        eventStores: { b3: eventStores.b3 },
        logger: logger.child({ component: 'relay' }),
      });
      stack.push('kafka publisher', () => kafka.close());
      kafkaReadiness = kafka.readiness;
      for (const relay of kafka.relays) {
        await relay.start();
        stack.push('kafka relay', () => relay.stop());
      }
    }
    await engine.start();
    stack.push('engine', () => engine.stop());

    const ops = await startOpsServer({
      port: config.port,
      host: config.host,
      logger: logger.child({ component: 'http' }),
      readiness: {
        'b3-event-store': () => eventStores.b3.headPosition(),
        rabbitmq: () => transport.deadLetters('broker-to-b3', { limit: 0 }),
        'market-cache': () => marketPrices.get('PETR4'),
        ...(kafkaReadiness ? { kafka: kafkaReadiness } : {}),
      },
    });
    // First to stop: health answers until the engine has drained.
    stack.push('http', () => ops.close());
    return {
      url: ops.url,
      banner: [
        `tradecore b3-engine: health and metrics on ${ops.url}`,
        `event stores: ${eventStores.description}`,
        `price band ±${config.priceBandPercent}%, reference prices older than ${config.priceMaxAgeMs / 1000} s rejected`,
        `session close: ${formatClose(config)} São Paulo time (B3_SESSION_CLOSE), DAY orders expire then`,
      ],
      stop: () => stack.stop(),
    };
  } catch (error) {
    await stack.stop();
    throw error;
  }
}
