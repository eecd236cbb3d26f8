import { setTimeout as delay } from 'node:timers/promises';
import {
  type Admin,
  CompressionTypes,
  type IHeaders,
  type Kafka,
  Partitioners,
  type Producer,
  type RetryOptions,
  type TopicMessages,
} from 'kafkajs';
import type { IntegrationMessage, IntegrationPublisher } from '../../projections/relay.ts';

/**
 * Integration messages to Kafka through an idempotent producer: the broker drops a retried
 * batch it already wrote (producer id + sequence numbers), `maxInFlightRequests: 1` keeps a
 * retry from overtaking the batch after it, and acks -1 waits for every in-sync replica, so a
 * resolved `publish` means durably stored, in order per partition. What idempotence cannot
 * cover — a process that dies after the send and before its caller's checkpoint — is why
 * consumers still dedupe by event id.
 */
export class KafkaPublisher implements IntegrationPublisher {
  readonly producer: Producer;
  private readonly compression: CompressionTypes;
  private connected = false;

  constructor(
    kafka: Kafka,
    options: {
      /** kafkajs' idempotent default retries forever (with back-off), so an outage only grows the relay's lag. */
      retry?: RetryOptions;
      compression?: CompressionTypes;
    } = {},
  ) {
    this.producer = kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      // Topics come from ensureTopics with their partition counts, never from a first publish.
      allowAutoTopicCreation: false,
      // Murmur2, as the Java client: a key lands on the same partition whoever produces it.
      createPartitioner: Partitioners.DefaultPartitioner,
      ...(options.retry ? { retry: options.retry } : {}),
    });
    this.compression = options.compression ?? CompressionTypes.None;
  }

  async connect(): Promise<void> {
    await this.producer.connect();
    this.connected = true;
  }

  async publish(messages: IntegrationMessage[]): Promise<void> {
    if (messages.length === 0) return;
    if (!this.connected) throw new Error('KafkaPublisher: connect() first');
    // One request set per call, grouped by topic in first-seen order; within a topic the array
    // order is kept, and so the order of each key on its partition.
    const byTopic = new Map<string, TopicMessages>();
    for (const message of messages) {
      let entry = byTopic.get(message.topic);
      if (!entry) {
        entry = { topic: message.topic, messages: [] };
        byTopic.set(message.topic, entry);
      }
      entry.messages.push({ key: message.key, value: message.value, headers: message.headers as IHeaders });
    }
    await this.producer.sendBatch({
      topicMessages: [...byTopic.values()],
      acks: -1,
      compression: this.compression,
    });
  }

  async disconnect(): Promise<void> {
    this.connected = false;
    await this.producer.disconnect();
  }
}

export interface TopicToEnsure {
  topic: string;
  partitions: number;
  /** Defaults to the broker's `default.replication.factor`. */
  replicationFactor?: number;
  /** Topic-level settings, e.g. `{ 'retention.ms': '604800000' }`. */
  config?: Record<string, string>;
}

export interface EnsuredTopics {
  created: string[];
  /** Topics that were there already, left as they are, with the partition count they have. */
  existing: { topic: string; partitions: number }[];
}

/**
 * Creates the missing topics with their partition counts and waits until their leaders host them.
 * Existing topics are left alone (a different partition count there is reported, not changed:
 * growing a topic moves keys between partitions and is an operator's decision).
 */
export async function ensureTopics(admin: Admin, topics: TopicToEnsure[]): Promise<EnsuredTopics> {
  const present = new Set(await admin.listTopics());
  const missing = topics.filter((topic) => !present.has(topic.topic));
  if (missing.length > 0) {
    // Another process may create some of them at the same moment: Kafka then answers
    // TOPIC_ALREADY_EXISTS, which kafkajs reports as `false` rather than an error.
    await admin.createTopics({
      waitForLeaders: true,
      topics: missing.map((topic) => ({
        topic: topic.topic,
        numPartitions: topic.partitions,
        replicationFactor: topic.replicationFactor ?? -1,
        configEntries: Object.entries(topic.config ?? {}).map(([name, value]) => ({ name, value })),
      })),
    });
    await Promise.all(missing.map((topic) => untilHosted(admin, topic.topic)));
  }
  const existingNames = topics.filter((topic) => present.has(topic.topic)).map((topic) => topic.topic);
  const existing =
    existingNames.length === 0
      ? []
      : (await admin.fetchTopicMetadata({ topics: existingNames })).topics.map((topic) => ({
          topic: topic.name,
          partitions: topic.partitions.length,
        }));
  return { created: missing.map((topic) => topic.topic), existing };
}

/** A broker's answers while a new partition is not served yet: wait, and ask again. */
const NOT_HOSTED_YET = new Set([
  'UNKNOWN_TOPIC_OR_PARTITION',
  'LEADER_NOT_AVAILABLE',
  'NOT_LEADER_FOR_PARTITION',
]);

/**
 * Waits until the broker serves every partition of a topic just created. `createTopics` waits for
 * the leaders to be named in the metadata, but a broker may name one a moment before it hosts the
 * partition: until then produce and offset requests are refused (as not hosted, or not the
 * leader). Reading the topic's offsets succeeds once they are all served.
 */
async function untilHosted(admin: Admin, topic: string, timeoutMs = 30_000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; ; ) {
    try {
      await admin.fetchTopicOffsets(topic);
      return;
    } catch (error) {
      if (!NOT_HOSTED_YET.has(protocolErrorType(error) ?? '') || Date.now() > deadline) throw error;
      await delay(100);
    }
  }
}

/** The broker's error type (`NOT_LEADER_FOR_PARTITION`…), also when kafkajs gave up retrying and wrapped it. */
function protocolErrorType(error: unknown): string | undefined {
  for (
    let cause = error;
    typeof cause === 'object' && cause !== null;
    cause = (cause as { cause?: unknown }).cause
  ) {
    const { type } = cause as { type?: unknown };
    if (typeof type === 'string') return type;
  }
  return undefined;
}
