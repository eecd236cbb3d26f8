/**
 * The Kafka relays: the integration topics created, one publisher connected, and a relay per event
 * store. Apart from the trading composition, so that kafkajs is loaded only where KAFKA_BROKERS is set.
 */
import { Kafka, type logCreator, logLevel } from 'kafkajs';
import { ensureTopics, KafkaPublisher } from '../../adapters/kafka/publisher.ts';
import { catalogueTopics, routeByStream, topicCatalogue } from '../../adapters/kafka/topics.ts';
import { withTimeout } from '../../projections/deadline.ts';
import { Relay, type RelayCheckpoints } from '../../projections/relay.ts';
import { routeB3Events } from '../market-data/integration.ts';
import { reaching } from './config.ts';
import type { EventStores } from './event-stores.ts';
import type { ServiceLogger } from './service-logger.ts';
import { SnapshotCheckpoints } from './snapshot-checkpoints.ts';

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
  // One relay per given store, each with its own checkpoint and routing.
  const routes = { broker: routeByStream(catalogue), b3: routeB3Events(catalogue) };
  const relays = (['broker', 'b3'] as const).flatMap((side) => {
    const source = eventStores[side];
    return source
      ? [
          new Relay({
            name: `kafka-${side}`,
            source,
            checkpoints: options.checkpoints?.[side] ?? new SnapshotCheckpoints(source),
            publisher,
            map: routes[side],
            logger,
          }),
        ]
      : [];
  });
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
