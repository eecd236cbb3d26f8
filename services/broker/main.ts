/**
 * The broker side of the order path for `tradecore serve broker-api`: the order process manager
 * (reservations, routing to B3 over RabbitMQ, settlement of execution reports) and, with
 * KAFKA_BROKERS set, the relay of the broker events to the integration topics.
 */
import type { Logger } from 'pino';
import { RabbitMqBridge } from '../../adapters/rabbitmq/bridge.ts';
import { RedisPriceCache } from '../../adapters/redis/price-cache.ts';
import type { EventStore } from '../../domain/shared/event-store.ts';
import { type Config, reaching } from '../shared/config.ts';
import { startKafkaRelays } from '../shared/kafka-relays.ts';
import type { KeyedLanes } from '../shared/keyed-lanes.ts';
import { ShutdownStack } from '../shared/ops-server.ts';
import { OrderProcess } from './order-process.ts';

export interface BrokerSide {
  description: string[];
  /** Dependencies `/health/ready` checks. */
  readiness: Record<string, () => Promise<unknown>>;
  stop(): Promise<void>;
}

export async function startBrokerSide(
  config: Config & { amqpUrl: string; redisUrl: string },
  broker: EventStore,
  logger: Logger,
  /** The per-wallet lanes shared with the API in this process. */
  walletLanes?: KeyedLanes,
): Promise<BrokerSide> {
  const stack = new ShutdownStack(logger);
  try {
    const transport = await reaching('AMQP_URL', config.amqpUrl, () =>
      RabbitMqBridge.connect({ url: config.amqpUrl, connectionName: 'broker-api', logger }),
    );
    stack.push('transport', () => transport.close());
    const assetPrices = await reaching('REDIS_URL', config.redisUrl, () =>
      RedisPriceCache.connect({ url: config.redisUrl, logger }),
    );
    stack.push('broker asset cache', () => assetPrices.close());
    let kafkaReadiness: (() => Promise<unknown>) | undefined;
    if (config.kafkaBrokers) {
      const kafka = await startKafkaRelays({
        brokers: config.kafkaBrokers,
        topicPrefix: config.kafkaTopicPrefix,
        eventStores: { broker },
        logger: logger.child({ component: 'relay' }),
      });
      stack.push('kafka publisher', () => kafka.close());
      kafkaReadiness = kafka.readiness;
      for (const relay of kafka.relays) {
        await relay.start();
        stack.push('kafka relay', () => relay.stop());
      }
    }
    const orderProcess = new OrderProcess({
      store: broker,
      transport,
      assetPrices,
      priceBandPercent: config.priceBandPercent,
      walletLanes,
      logger: logger.child({ component: 'order-process' }),
    });
    await orderProcess.start();
    stack.push('order process', () => orderProcess.stop());
    return {
      description: [
        'order process: here, over RabbitMQ to the b3-engine process',
        config.kafkaBrokers
          ? `integration events (broker side): Kafka at ${config.kafkaBrokers.join(',')}`
          : 'integration events: none (KAFKA_BROKERS unset)',
      ],
      readiness: {
        'order-process': () => orderProcess.progress(),
        rabbitmq: () => transport.deadLetters('b3-to-broker', { limit: 0 }),
        'broker-asset-cache': () => assetPrices.get('PETR4'),
        ...(kafkaReadiness ? { kafka: kafkaReadiness } : {}),
      },
      stop: () => stack.stop(),
    };
  } catch (error) {
    await stack.stop();
    throw error;
  }
}
