import { z } from 'zod';

/**
 * The event store port: every adapter (memory, PGlite, Postgres, EventStoreDB) implements it and
 * passes the one contract suite in `adapters/event-store-contract.ts`.
 *
 * Stream versions count from 0 (the first event of a stream has version 0); a stream that does not
 * exist has version -1. Global positions are positive integers that only grow in read-all order;
 * they may have gaps.
 */

export const NO_STREAM = -1;

/** `any`: no check; `no_stream`: the stream must not exist; `stream_exists`: it must; n: its version must be n. */
export type ExpectedVersion = 'any' | 'no_stream' | 'stream_exists' | number;

export const EventMetadata = z
  .object({
    correlationId: z.string().min(1),
    causationId: z.string().min(1),
    actor: z.string().min(1),
    occurredAt: z.iso.datetime({ offset: true }),
    schemaVersion: z.number().int().positive(),
  })
  .loose();
export type EventMetadata = z.infer<typeof EventMetadata>;

/** What a caller appends. `schemaVersion` is filled in from the schema registry when absent. */
export interface NewEvent<Type extends string = string, Data = unknown> {
  id: string;
  type: Type;
  data: Data;
  metadata: Omit<EventMetadata, 'schemaVersion'> & { schemaVersion?: number };
}

export interface RecordedEvent<Type extends string = string, Data = unknown> {
  id: string;
  streamId: string;
  type: Type;
  version: number;
  position: number;
  data: Data;
  metadata: EventMetadata;
  recordedAt: Date;
}

export interface AppendResult {
  /** The stream's version after the append (the version of its last event). */
  nextExpectedVersion: number;
  /** One global position per appended event, in order. */
  positions: number[];
  /** True when every event id was already stored: nothing was written, the original positions are reported. */
  idempotent: boolean;
}

export interface ReadStreamOptions {
  /** Versions read from (inclusive). Forwards defaults to 0, backwards to the last event. */
  fromVersion?: number;
  direction?: 'forwards' | 'backwards';
  limit?: number;
  /** Stop at this version (inclusive): the stream as it was at version N. Forwards only. */
  toVersion?: number;
  /** Only events recorded at or before this instant: the stream as it was at a point in time. Forwards only. */
  until?: Date;
}

export interface ReadAllOptions {
  /** Read events after this position (exclusive); 0 reads from the start. */
  after?: number;
  limit?: number;
}

export interface SubscribeOptions {
  /** Deliver events after this position (exclusive). */
  after: number;
  /** Called for each event in order; the next is delivered only after the promise resolves. */
  onEvent?: (event: RecordedEvent) => Promise<void> | void;
  /** Called instead of `onEvent` with each batch read (at most `batchSize` events, in order). */
  onBatch?: (events: RecordedEvent[]) => Promise<void> | void;
  /** Called when the subscription dies; the subscription is stopped afterwards. */
  onError?: (error: unknown) => void;
  /** Called once when the subscription has read everything that was stored and is following live appends. */
  onCaughtUp?: () => void;
  batchSize?: number;
  /**
   * After a batch that emptied what was there, wait this long before reading again, so that a
   * busy store's events arrive in fewer, larger batches (a projector's transactions). A hint:
   * a store may deliver sooner. Default 0.
   */
  pacingMs?: number;
}

export interface Subscription {
  stop(): Promise<void>;
  /** Resolves when the subscription has stopped, by `stop()` or by an error. */
  readonly done: Promise<void>;
}

export interface Snapshot<State = unknown> {
  streamId: string;
  /** The stream version the state includes. */
  version: number;
  state: State;
  /** Which state shape this is; a snapshot of another shape is ignored. */
  schemaVersion: number;
  takenAt: Date;
}

export interface EventStore {
  append(
    streamId: string,
    events: NewEvent[],
    options?: { expectedVersion?: ExpectedVersion },
  ): Promise<AppendResult>;
  readStream(streamId: string, options?: ReadStreamOptions): Promise<RecordedEvent[]>;
  readAll(options?: ReadAllOptions): Promise<RecordedEvent[]>;
  /** The version of the stream's last event, or -1 when it has none. */
  streamVersion(streamId: string): Promise<number>;
  /** The greatest position a reader can see now (0 when empty). */
  headPosition(): Promise<number>;
  /**
   * The stream's version, without a read, when this store is certain of it: a store that is the
   * only writer of its data (in memory, embedded) and saw the stream's last append. Undefined
   * otherwise; absent on stores shared with other processes.
   */
  knownVersion?(streamId: string): number | undefined;
  subscribeToAll(options: SubscribeOptions): Subscription;
  saveSnapshot(snapshot: Omit<Snapshot, 'takenAt'>): Promise<void>;
  /** The latest snapshot of the stream at or below `atOrBelowVersion` with this schema version. */
  loadSnapshot(
    streamId: string,
    options: { schemaVersion: number; atOrBelowVersion?: number },
  ): Promise<Snapshot | undefined>;
  close(): Promise<void>;
}

/** The expected version did not hold. `actualVersion` is the stream's version when the append was refused. */
export class WrongExpectedVersion extends Error {
  override readonly name = 'WrongExpectedVersion';
  constructor(
    readonly streamId: string,
    readonly expectedVersion: ExpectedVersion,
    readonly actualVersion: number,
  ) {
    super(`stream ${streamId}: expected version ${expectedVersion}, actual ${actualVersion}`);
  }
}

/** Some, but not all, of the appended event ids are already stored, or stored in another stream. */
export class DuplicateEventId extends Error {
  override readonly name = 'DuplicateEventId';
  constructor(
    readonly streamId: string,
    readonly eventIds: string[],
  ) {
    super(`stream ${streamId}: event ids already stored elsewhere or partially: ${eventIds.join(', ')}`);
  }
}

/** An event failed its schema on the way in (append) or out (read, after upcasting). */
export class InvalidEvent extends Error {
  override readonly name = 'InvalidEvent';
  constructor(
    readonly eventType: string,
    readonly issues: string[],
  ) {
    super(`invalid ${eventType} event: ${issues.join('; ')}`);
  }
}

/** Checks an expected version against the stream's version; the one rule every adapter shares. */
export function expectedVersionHolds(expected: ExpectedVersion, actual: number): boolean {
  if (expected === 'any') return true;
  if (expected === 'no_stream') return actual === NO_STREAM;
  if (expected === 'stream_exists') return actual !== NO_STREAM;
  return expected === actual;
}

export function parseExpectedVersion(value: unknown): ExpectedVersion {
  if (value === 'any' || value === 'no_stream' || value === 'stream_exists') return value;
  if (typeof value === 'number' && Number.isInteger(value) && value >= NO_STREAM) return value;
  throw new TypeError(
    `expected version must be any, no_stream, stream_exists or an integer ≥ -1, got ${String(value)}`,
  );
}
