import type { EventSchemas } from '../../domain/shared/event-schemas.ts';
import {
  type AppendResult,
  DuplicateEventId,
  type EventStore,
  type ExpectedVersion,
  expectedVersionHolds,
  type NewEvent,
  NO_STREAM,
  parseExpectedVersion,
  type ReadAllOptions,
  type ReadStreamOptions,
  type RecordedEvent,
  type Snapshot,
  type SubscribeOptions,
  type Subscription,
  WrongExpectedVersion,
} from '../../domain/shared/event-store.ts';
import { prepareEvents } from '../shared/prepare-events.ts';
import { followAll, Waker } from '../shared/subscription.ts';

/**
 * The event store in memory, for domain unit tests only: the same contract as the real ones,
 * nothing survives the process. `now` lets tests control `recordedAt`.
 */
export class MemoryEventStore implements EventStore {
  private readonly all: RecordedEvent[];
  private readonly streams: Map<string, RecordedEvent[]>;
  private readonly byId: Map<string, RecordedEvent>;
  private readonly snapshots: Snapshot[];
  private readonly waker: Waker;
  private readonly subscriptions = new Set<Subscription>();

  /** `sharing` makes this store a second handle on another one's events (say, with other schemas). */
  constructor(
    private readonly options: { schemas?: EventSchemas; now?: () => Date } = {},
    sharing?: MemoryEventStore,
  ) {
    this.all = sharing?.all ?? [];
    this.streams = sharing?.streams ?? new Map();
    this.byId = sharing?.byId ?? new Map();
    this.snapshots = sharing?.snapshots ?? [];
    this.waker = sharing?.waker ?? new Waker();
  }

  knownVersion(streamId: string): number {
    return (this.streams.get(streamId)?.length ?? 0) - 1;
  }

  async append(
    streamId: string,
    events: NewEvent[],
    options: { expectedVersion?: ExpectedVersion } = {},
  ): Promise<AppendResult> {
    const expected = parseExpectedVersion(options.expectedVersion ?? 'any');
    const prepared = prepareEvents(streamId, events, this.options.schemas);
    const stream = this.streams.get(streamId) ?? [];
    const current = stream.length - 1;

    const stored = prepared.map((event) => this.byId.get(event.id)).filter((event) => event !== undefined);
    if (stored.length > 0) {
      if (stored.length === prepared.length && stored.every((event) => event.streamId === streamId)) {
        return {
          nextExpectedVersion: current,
          positions: stored.map((event) => event.position),
          idempotent: true,
        };
      }
      throw new DuplicateEventId(
        streamId,
        stored.map((event) => event.id),
      );
    }
    if (!expectedVersionHolds(expected, current)) throw new WrongExpectedVersion(streamId, expected, current);

    const recordedAt = this.options.now?.() ?? new Date();
    const recorded = prepared.map((event, index) => ({
      ...structuredClone(event),
      streamId,
      version: current + 1 + index,
      position: this.all.length + 1 + index,
      recordedAt,
    }));
    for (const event of recorded) {
      this.all.push(event);
      this.byId.set(event.id, event);
    }
    this.streams.set(streamId, [...stream, ...recorded]);
    this.waker.wake();
    return {
      nextExpectedVersion: current + recorded.length,
      positions: recorded.map((event) => event.position),
      idempotent: false,
    };
  }

  async readStream(streamId: string, options: ReadStreamOptions = {}): Promise<RecordedEvent[]> {
    const stream = this.streams.get(streamId) ?? [];
    const limit = options.limit ?? Number.POSITIVE_INFINITY;
    if (options.direction === 'backwards') {
      const from = options.fromVersion ?? stream.length - 1;
      return stream
        .filter((event) => event.version <= from)
        .reverse()
        .slice(0, limit)
        .map((event) => this.decode(event));
    }
    return stream
      .filter(
        (event) =>
          event.version >= (options.fromVersion ?? 0) &&
          (options.toVersion === undefined || event.version <= options.toVersion) &&
          (options.until === undefined || event.recordedAt <= options.until),
      )
      .slice(0, limit)
      .map((event) => this.decode(event));
  }

  async readAll(options: ReadAllOptions = {}): Promise<RecordedEvent[]> {
    // Positions are 1, 2, 3…: the event after position p sits at index p.
    const from = options.after ?? 0;
    return this.all.slice(from, from + (options.limit ?? 1000)).map((event) => this.decode(event));
  }

  async streamVersion(streamId: string): Promise<number> {
    const stream = this.streams.get(streamId);
    return stream ? stream.length - 1 : NO_STREAM;
  }

  async headPosition(): Promise<number> {
    return this.all.length;
  }

  subscribeToAll(options: SubscribeOptions): Subscription {
    const subscription = followAll(
      async (after, limit) => ({ events: await this.readAll({ after, limit }), heldBack: false }),
      this.waker,
      options,
    );
    this.subscriptions.add(subscription);
    void subscription.done.then(() => this.subscriptions.delete(subscription));
    return subscription;
  }

  async saveSnapshot(snapshot: Omit<Snapshot, 'takenAt'>): Promise<void> {
    // One per stream, schema version and version, as the SQL stores keep it: saved again, replaced.
    const same = (kept: Snapshot) =>
      kept.streamId === snapshot.streamId &&
      kept.schemaVersion === snapshot.schemaVersion &&
      kept.version === snapshot.version;
    // In place: a store opened again on the same memory shares the array.
    const index = this.snapshots.findIndex(same);
    if (index !== -1) this.snapshots.splice(index, 1);
    this.snapshots.push({ ...structuredClone(snapshot), takenAt: this.options.now?.() ?? new Date() });
  }

  async loadSnapshot(
    streamId: string,
    options: { schemaVersion: number; atOrBelowVersion?: number },
  ): Promise<Snapshot | undefined> {
    const candidates = this.snapshots.filter(
      (snapshot) =>
        snapshot.streamId === streamId &&
        snapshot.schemaVersion === options.schemaVersion &&
        (options.atOrBelowVersion === undefined || snapshot.version <= options.atOrBelowVersion),
    );
    const latest = candidates.sort((a, b) => b.version - a.version)[0];
    return latest && structuredClone(latest);
  }

  async close(): Promise<void> {
    await Promise.all([...this.subscriptions].map((subscription) => subscription.stop()));
  }

  private decode(event: RecordedEvent): RecordedEvent {
    const copy = structuredClone(event);
    return this.options.schemas ? this.options.schemas.decode(copy) : copy;
  }
}
