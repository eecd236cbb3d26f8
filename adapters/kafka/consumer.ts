import type { Consumer, ConsumerConfig, EachMessagePayload, IHeaders, Kafka } from 'kafkajs';
import { Counter } from 'prom-client';
import { INTEGRATION_HEADERS } from '../../projections/relay.ts';

/**
 * The other side of the relay: a consumer group member that applies each integration message
 * exactly once in effect, over Kafka's at-least-once delivery.
 *
 * For each message, in partition order: in one unit of work (a SQL transaction) check whether
 * its event id was seen, apply the effect, remember the id; then commit the message's offset.
 * A crash before the unit commits leaves nothing behind and the message comes again; a crash
 * after it but before the offset commit brings the message again too, and `seen` skips it.
 */

/** A decoded integration message. */
export interface ConsumedMessage {
  topic: string;
  partition: number;
  offset: string;
  key: string | undefined;
  /** The parsed JSON value. */
  value: unknown;
  headers: Record<string, string>;
  eventId: string;
  eventType: string | undefined;
  schemaVersion: number | undefined;
  correlationId: string | undefined;
}

/**
 * The deduplication store: event ids already applied, kept in the same unit of work (the same
 * transaction) as the effect, so an effect and its "seen" mark commit together or not at all.
 * `adapters/postgres/processed-events.ts` is the Postgres/PGlite one.
 */
export interface ProcessedEvents<Unit> {
  /** Runs `work` atomically: committed when it resolves, rolled back when it throws. */
  unit<T>(work: (unit: Unit) => Promise<T>): Promise<T>;
  seen(unit: Unit, eventId: string): Promise<boolean>;
  /** Must fail when the id is already there (a unique key): two members racing on one message then apply it once. */
  remember(unit: Unit, eventId: string): Promise<void>;
}

export interface IdempotentConsumerOptions<Unit> {
  kafka: Kafka;
  groupId: string;
  topics: string[];
  /** Where a group with no committed offset starts: the topic's beginning (default) or its end. */
  fromBeginning?: boolean;
  processed: ProcessedEvents<Unit>;
  /** The effect, inside the unit of work; throwing rolls it back and the message is retried. */
  effect: (message: ConsumedMessage, unit: Unit) => Promise<void>;
  /** Partitions handled at the same time by this member (default 1); each partition stays sequential. */
  partitionsConsumedConcurrently?: number;
  /** Timeouts, retry and the like, passed to kafkajs (groupId and auto topic creation are set here). */
  consumer?: Omit<ConsumerConfig, 'groupId'>;
  logger?: { warn: (object: object, message: string) => void };
}

export const consumedMessages = new Counter({
  name: 'tradecore_kafka_consumed_messages_total',
  help: 'Integration messages handled by an idempotent consumer, applied or skipped as duplicates',
  labelNames: ['group', 'topic', 'outcome'] as const,
});

export class MissingEventId extends Error {
  override readonly name = 'MissingEventId';
  constructor(
    readonly topic: string,
    readonly partition: number,
    readonly offset: string,
  ) {
    super(
      `${topic}[${partition}]@${offset} has no ${INTEGRATION_HEADERS.eventId} header: it cannot be deduplicated`,
    );
  }
}

export function decodeMessage({ topic, partition, message }: EachMessagePayload): ConsumedMessage {
  const headers = decodeHeaders(message.headers);
  const eventId = headers[INTEGRATION_HEADERS.eventId];
  if (!eventId) throw new MissingEventId(topic, partition, message.offset);
  const raw = message.value?.toString('utf8');
  const schemaVersion = headers[INTEGRATION_HEADERS.schemaVersion];
  return {
    topic,
    partition,
    offset: message.offset,
    key: message.key?.toString('utf8'),
    value: raw === undefined ? null : JSON.parse(raw),
    headers,
    eventId,
    eventType: headers[INTEGRATION_HEADERS.eventType],
    schemaVersion: schemaVersion === undefined ? undefined : Number(schemaVersion),
    correlationId: headers[INTEGRATION_HEADERS.correlationId],
  };
}

export function decodeHeaders(headers: IHeaders | undefined): Record<string, string> {
  const decoded: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (value === undefined) continue;
    const first = Array.isArray(value) ? value[0] : value;
    if (first !== undefined) decoded[name] = first.toString();
  }
  return decoded;
}

export class IdempotentConsumer<Unit> {
  readonly consumer: Consumer;

  constructor(private readonly options: IdempotentConsumerOptions<Unit>) {
    this.consumer = options.kafka.consumer({
      ...options.consumer,
      groupId: options.groupId,
      allowAutoTopicCreation: false,
    });
  }

  /** Joins the group and starts consuming; resolves once running. */
  async start(): Promise<void> {
    const { topics, fromBeginning } = this.options;
    await this.consumer.connect();
    await this.consumer.subscribe({ topics, fromBeginning: fromBeginning ?? true });
    await this.consumer.run({
      autoCommit: false,
      // One message at a time per partition, whatever the concurrency across partitions: the
      // order of a key is the order of its effects.
      partitionsConsumedConcurrently: this.options.partitionsConsumedConcurrently ?? 1,
      eachMessage: (payload) => this.handle(payload),
    });
  }

  private async handle(payload: EachMessagePayload): Promise<void> {
    const { processed, effect, groupId } = this.options;
    const message = decodeMessage(payload);
    const applied = await processed.unit(async (unit) => {
      if (await processed.seen(unit, message.eventId)) return false;
      await effect(message, unit);
      await processed.remember(unit, message.eventId);
      return true;
    });
    if (!applied) {
      this.options.logger?.warn(
        { group: groupId, topic: message.topic, partition: message.partition, eventId: message.eventId },
        'duplicate integration message skipped',
      );
    }
    consumedMessages.inc({
      group: groupId,
      topic: message.topic,
      outcome: applied ? 'applied' : 'duplicate',
    });
    // Only after the effect committed: the committed offset is the next message to read.
    await this.consumer.commitOffsets([
      {
        topic: payload.topic,
        partition: payload.partition,
        offset: (BigInt(payload.message.offset) + 1n).toString(),
      },
    ]);
  }

  /** Leaves the group after the message in hand is handled and committed. */
  async stop(): Promise<void> {
    await this.consumer.disconnect();
  }
}
