import { Counter, Gauge } from 'prom-client';
import type { EventStore, RecordedEvent } from '../domain/shared/event-store.ts';
import { CheckpointedFollower, type FollowerState } from './checkpointed-follower.ts';

/**
 * The relay: follows an event store from its own checkpoint and publishes public integration
 * messages (Kafka in compose, an in-process bus in embedded mode). Pure of technology: the
 * publisher and the checkpoint store are ports.
 *
 * At least once, never lost: a batch's checkpoint is saved only after the publisher resolved
 * (Kafka acknowledged every message). A crash between the two publishes the batch again on
 * restart, so consumers deduplicate by the `event-id` header.
 */

/** What a mapper makes of one event: where it goes, its partition key and its JSON body. */
export interface IntegrationEvent {
  topic: string;
  /** Messages with one key keep their order (one partition): an order id, a symbol, an account id. */
  key: string;
  /** Serialised as JSON. */
  value: unknown;
  /** Added to the standard headers; cannot override them. */
  headers?: Record<string, string>;
}

/** One message as it goes on the wire. */
export interface IntegrationMessage {
  topic: string;
  key: string;
  /** JSON text. */
  value: string;
  headers: Record<string, string>;
}

/** The headers every integration message carries, the contract consumers rely on. */
export const INTEGRATION_HEADERS = {
  /** The source event's uuid: the key consumers deduplicate on. */
  eventId: 'event-id',
  eventType: 'event-type',
  schemaVersion: 'schema-version',
  correlationId: 'correlation-id',
  causationId: 'causation-id',
  occurredAt: 'occurred-at',
  /** The event's global position in the source event store: diagnostics only, not an order across keys. */
  position: 'source-position',
} as const;

/** Maps one event to zero or more messages, at most one per topic (consumers dedupe per topic by event id). */
export type IntegrationMapper = (event: RecordedEvent) => IntegrationEvent[];

export interface IntegrationPublisher {
  /**
   * Publishes every message, keeping the given order among messages of one topic and key;
   * resolves only once all of them are durably acknowledged, rejects otherwise (some may have
   * been published: the relay then publishes them again).
   */
  publish(messages: IntegrationMessage[]): Promise<void>;
}

export interface RelayCheckpoints {
  /** The position of the last event whose messages were acknowledged; 0 when the relay never ran. */
  load(name: string): Promise<number>;
  /** Records that every event up to `position` is published; never moves a checkpoint backwards. */
  save(name: string, position: number): Promise<void>;
}

/** Checkpoints in memory: unit tests and throwaway embedded runs. */
export class MemoryRelayCheckpoints implements RelayCheckpoints {
  private readonly positions = new Map<string, number>();

  async load(name: string): Promise<number> {
    return this.positions.get(name) ?? 0;
  }

  async save(name: string, position: number): Promise<void> {
    this.positions.set(name, Math.max(position, this.positions.get(name) ?? 0));
  }
}

export const relayCheckpoint = new Gauge({
  name: 'tradecore_relay_checkpoint',
  help: 'Position of the last event whose integration messages were acknowledged',
  labelNames: ['relay'] as const,
});

export const relayLagPositions = new Gauge({
  name: 'tradecore_relay_lag_positions',
  help: 'Head position of the source event store minus the relay checkpoint',
  labelNames: ['relay'] as const,
});

export const relayPublishedMessages = new Counter({
  name: 'tradecore_relay_messages_published_total',
  help: 'Integration messages acknowledged by the publisher (re-publications after a failure count again)',
  labelNames: ['relay', 'topic'] as const,
});

export const relayFailures = new Counter({
  name: 'tradecore_relay_failures_total',
  help: 'Batches the relay failed to publish or checkpoint (it retries from its checkpoint)',
  labelNames: ['relay'] as const,
});

export type RelayState = FollowerState;

export interface RelayStatus {
  relay: string;
  state: RelayState;
  checkpoint: number;
  head: number;
  lagPositions: number;
  failures: number;
  error?: string;
  /** Whether the last batch failed at Kafka (not at the event store it reads). */
  publishFailing: boolean;
}

export interface RelayOptions {
  /** Names the checkpoint and the metrics' `relay` label. */
  name: string;
  source: EventStore;
  checkpoints: RelayCheckpoints;
  publisher: IntegrationPublisher;
  map: IntegrationMapper;
  /** Events read and published per batch (default 500). */
  batchSize?: number;
  /** First delay before following again after a failure, doubled up to `maxRetryDelayMs` (defaults 500 and 30,000). */
  retryDelayMs?: number;
  maxRetryDelayMs?: number;
  logger?: {
    info: (object: object, message: string) => void;
    warn: (object: object, message: string) => void;
    error: (object: object, message: string) => void;
  };
}

/** Turns one event into its wire messages, with the standard headers. */
export function toIntegrationMessages(event: RecordedEvent, map: IntegrationMapper): IntegrationMessage[] {
  const mapped = map(event);
  const topics = new Set<string>();
  return mapped.map((message) => {
    if (topics.has(message.topic)) {
      throw new Error(
        `event ${event.id} (${event.type}) maps to topic ${message.topic} twice: consumers dedupe by event id`,
      );
    }
    topics.add(message.topic);
    if (message.key.length === 0) throw new Error(`event ${event.id} (${event.type}) maps to an empty key`);
    const { metadata } = event;
    return {
      topic: message.topic,
      key: message.key,
      value: JSON.stringify(message.value),
      headers: {
        ...message.headers,
        [INTEGRATION_HEADERS.eventId]: event.id,
        [INTEGRATION_HEADERS.eventType]: event.type,
        [INTEGRATION_HEADERS.schemaVersion]: String(metadata.schemaVersion),
        [INTEGRATION_HEADERS.correlationId]: metadata.correlationId,
        [INTEGRATION_HEADERS.causationId]: metadata.causationId,
        [INTEGRATION_HEADERS.occurredAt]: metadata.occurredAt,
        [INTEGRATION_HEADERS.position]: String(event.position),
      },
    };
  });
}

/**
 * One relay instance per name: two would both publish (still at least once, but twice the
 * duplicates). A failed batch is retried from the saved checkpoint with a growing delay.
 */
export class Relay {
  private readonly follower: CheckpointedFollower;
  private publishFailing = false;

  constructor(private readonly options: RelayOptions) {
    const { name } = options;
    // At 0 from the start, so that a dashboard's rate of failures shows 0 rather than no data.
    relayFailures.inc({ relay: name }, 0);
    this.follower = new CheckpointedFollower({
      name,
      source: options.source,
      checkpoints: options.checkpoints,
      handle: (events, checkpoint) => this.publishBatch(events, checkpoint),
      batchSize: options.batchSize,
      retryDelayMs: options.retryDelayMs,
      maxRetryDelayMs: options.maxRetryDelayMs,
      onCheckpoint: (position) => relayCheckpoint.set({ relay: name }, position),
      onFailure: () => relayFailures.inc({ relay: name }),
      logger: options.logger,
      retryMessage: 'relay batch failed: retrying from the checkpoint',
      logDetails: { relay: name },
    });
  }

  get name(): string {
    return this.options.name;
  }

  /** Loads the checkpoint and follows the store from there; resolves once following. */
  start(): Promise<void> {
    return this.follower.start();
  }

  private async publishBatch(events: RecordedEvent[], checkpoint: () => Promise<void>): Promise<void> {
    const { name, map, publisher, source } = this.options;
    const messages = events.flatMap((event) => toIntegrationMessages(event, map));
    if (messages.length > 0)
      await publisher.publish(messages).then(
        () => {
          this.publishFailing = false;
        },
        (error: unknown) => {
          this.publishFailing = true;
          throw error;
        },
      );
    // Only now, after the acknowledgement: a crash before this line publishes the batch again.
    await checkpoint();
    const perTopic = new Map<string, number>();
    for (const message of messages) perTopic.set(message.topic, (perTopic.get(message.topic) ?? 0) + 1);
    for (const [topic, count] of perTopic) relayPublishedMessages.inc({ relay: name, topic }, count);
    const head = await source.headPosition();
    relayLagPositions.set({ relay: name }, Math.max(0, head - events.at(-1)!.position));
  }

  /** Stops following; a batch in flight finishes (and checkpoints) first. */
  stop(): Promise<void> {
    return this.follower.stop();
  }

  async status(): Promise<RelayStatus> {
    const head = await this.options.source.headPosition();
    const { state, checkpoint: followed, failures, error } = this.follower.progress();
    const checkpoint = state === 'stopped' ? await this.options.checkpoints.load(this.name) : followed;
    const lag = Math.max(0, head - checkpoint);
    relayLagPositions.set({ relay: this.name }, lag);
    return {
      relay: this.name,
      state,
      checkpoint,
      head,
      lagPositions: lag,
      failures,
      error,
      publishFailing: state === 'retrying' && this.publishFailing,
    };
  }
}
