import {
  type AllStreamResolvedEvent,
  BACKWARDS,
  END,
  EventStoreDBClient,
  excludeSystemEvents,
  FORWARDS,
  jsonEvent,
  type Position,
  type ResolvedEvent,
  START,
  StreamNotFoundError,
  WrongExpectedVersionError,
} from '@eventstore/db-client';
import type { EventSchemas } from '../../domain/shared/event-schemas.ts';
import {
  type AppendResult,
  DuplicateEventId,
  type EventStore,
  type ExpectedVersion,
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
import { appendSeconds } from '../shared/event-store-metrics.ts';
import { prepareEvents } from '../shared/prepare-events.ts';

/**
 * The event store on EventStoreDB. Streams are prefixed per side (`broker.`, `b3.`) because one
 * EventStoreDB holds both; positions are commit positions in its transaction log. Event ids are
 * unique per stream here (EventStoreDB has no global index by id), not across streams.
 */
export class EventStoreDbEventStore implements EventStore {
  private constructor(
    private readonly client: EventStoreDBClient,
    private readonly prefix: string,
    private readonly schemas?: EventSchemas,
  ) {}

  static connect(options: { url: string; prefix: string; schemas?: EventSchemas }): EventStoreDbEventStore {
    return new EventStoreDbEventStore(
      EventStoreDBClient.connectionString`${options.url}`,
      options.prefix,
      options.schemas,
    );
  }

  private name(streamId: string): string {
    return `${this.prefix}.${streamId}`;
  }

  async append(
    streamId: string,
    events: NewEvent[],
    options: { expectedVersion?: ExpectedVersion } = {},
  ): Promise<AppendResult> {
    const expected = parseExpectedVersion(options.expectedVersion ?? 'any');
    const prepared = prepareEvents(streamId, events, this.schemas);
    const stopTimer = appendSeconds.startTimer({ store: `eventstoredb:${this.prefix}` });
    try {
      const retry = await this.storedRetry(
        streamId,
        prepared.map((event) => event.id),
      );
      if (retry) return retry;
      const result = await this.client.appendToStream(
        this.name(streamId),
        prepared.map((event) =>
          jsonEvent({ id: event.id, type: event.type, data: event.data as never, metadata: event.metadata }),
        ),
        {
          expectedRevision:
            typeof expected === 'number'
              ? expected === NO_STREAM
                ? 'no_stream'
                : BigInt(expected)
              : expected,
        },
      );
      const appended = await this.client
        .readStream(this.name(streamId), {
          direction: BACKWARDS,
          fromRevision: END,
          maxCount: prepared.length,
        })
        .toArray?.();
      const positions = (appended ?? [])
        .map((resolved: ResolvedEvent) => Number(resolved.event?.position?.commit ?? 0))
        .reverse();
      return { nextExpectedVersion: Number(result.nextExpectedRevision), positions, idempotent: false };
    } catch (error) {
      if (error instanceof WrongExpectedVersionError) {
        const actual = typeof error.actualVersion === 'bigint' ? Number(error.actualVersion) : NO_STREAM;
        throw new WrongExpectedVersion(streamId, expected, actual);
      }
      throw error;
    } finally {
      stopTimer();
    }
  }

  /** A retry of events already stored answers their original positions; a partial overlap is refused. */
  private async storedRetry(streamId: string, ids: string[]): Promise<AppendResult | undefined> {
    const recent = await this.readStream(streamId, { direction: 'backwards', limit: 1000 });
    const byId = new Map(recent.map((event) => [event.id, event]));
    const stored = ids.map((id) => byId.get(id)).filter((event) => event !== undefined);
    if (stored.length === 0) return undefined;
    if (stored.length !== ids.length)
      throw new DuplicateEventId(
        streamId,
        stored.map((event) => event.id),
      );
    return {
      nextExpectedVersion: recent[0]?.version ?? NO_STREAM,
      positions: stored.map((event) => event.position),
      idempotent: true,
    };
  }

  async readStream(streamId: string, options: ReadStreamOptions = {}): Promise<RecordedEvent[]> {
    const backwards = options.direction === 'backwards';
    const fromRevision =
      options.fromVersion === undefined ? (backwards ? END : START) : BigInt(options.fromVersion);
    const events: RecordedEvent[] = [];
    try {
      for await (const resolved of this.client.readStream(this.name(streamId), {
        direction: backwards ? BACKWARDS : FORWARDS,
        fromRevision,
        maxCount: options.limit ?? Number.MAX_SAFE_INTEGER,
      })) {
        const event = this.toEvent(resolved, streamId);
        if (!event) continue;
        if (options.toVersion !== undefined && event.version > options.toVersion) break;
        if (options.until !== undefined && event.recordedAt > options.until) break;
        events.push(event);
      }
    } catch (error) {
      if (error instanceof StreamNotFoundError) return [];
      throw error;
    }
    return events;
  }

  async readAll(options: ReadAllOptions = {}): Promise<RecordedEvent[]> {
    const after = options.after ?? 0;
    const limit = options.limit ?? 1000;
    const events: RecordedEvent[] = [];
    const fromPosition: Position | typeof START =
      after === 0 ? START : { commit: BigInt(after), prepare: BigInt(after) };
    for await (const resolved of this.client.readAll({ fromPosition, maxCount: limit + 1 })) {
      const event = this.toEvent(resolved);
      if (!event || event.position <= after) continue;
      events.push(event);
      if (events.length === limit) break;
    }
    return events;
  }

  async streamVersion(streamId: string): Promise<number> {
    const [last] = await this.readStream(streamId, { direction: 'backwards', limit: 1 });
    return last?.version ?? NO_STREAM;
  }

  async headPosition(): Promise<number> {
    for await (const resolved of this.client.readAll({
      direction: BACKWARDS,
      fromPosition: END,
      maxCount: 1000,
    })) {
      const event = this.toEvent(resolved);
      if (event) return event.position;
    }
    return 0;
  }

  subscribeToAll(options: SubscribeOptions): Subscription {
    const fromPosition: Position | typeof START =
      options.after === 0 ? START : { commit: BigInt(options.after), prepare: BigInt(options.after) };
    const subscription = this.client.subscribeToAll({ fromPosition, filter: excludeSystemEvents() });
    let stopped = false;
    const done = (async () => {
      try {
        subscription.on('caughtUp', () => options.onCaughtUp?.());
        for await (const resolved of subscription) {
          if (stopped) break;
          const event = this.toEvent(resolved as AllStreamResolvedEvent);
          if (!event || event.position <= options.after) continue;
          if (options.onBatch) await options.onBatch([event]);
          else await options.onEvent?.(event);
        }
      } catch (error) {
        if (!stopped) options.onError?.(error);
      } finally {
        await subscription.unsubscribe().catch(() => {});
      }
    })();
    return {
      done,
      async stop() {
        stopped = true;
        await subscription.unsubscribe().catch(() => {});
        await done;
      },
    };
  }

  async saveSnapshot(snapshot: Omit<Snapshot, 'takenAt'>): Promise<void> {
    await this.client.appendToStream(
      this.name(`snapshot-${snapshot.streamId}`),
      jsonEvent({
        type: 'Snapshot',
        data: {
          version: snapshot.version,
          schemaVersion: snapshot.schemaVersion,
          state: snapshot.state as never,
        },
      }),
    );
  }

  async loadSnapshot(
    streamId: string,
    options: { schemaVersion: number; atOrBelowVersion?: number },
  ): Promise<Snapshot | undefined> {
    try {
      let best: Snapshot | undefined;
      for await (const resolved of this.client.readStream(this.name(`snapshot-${streamId}`), {
        direction: BACKWARDS,
        fromRevision: END,
      })) {
        const event = resolved.event;
        if (!event) continue;
        const data = event.data as { version: number; schemaVersion: number; state: unknown };
        if (data.schemaVersion !== options.schemaVersion) continue;
        if (options.atOrBelowVersion !== undefined && data.version > options.atOrBelowVersion) continue;
        if (!best || data.version > best.version) {
          best = {
            streamId,
            version: data.version,
            schemaVersion: data.schemaVersion,
            state: data.state,
            takenAt: event.created,
          };
        }
      }
      return best;
    } catch (error) {
      if (error instanceof StreamNotFoundError) return undefined;
      throw error;
    }
  }

  async close(): Promise<void> {
    await this.client.dispose();
  }

  private toEvent(
    resolved: ResolvedEvent | AllStreamResolvedEvent,
    streamId?: string,
  ): RecordedEvent | undefined {
    const event = resolved.event;
    if (!event || event.type.startsWith('$') || !event.streamId.startsWith(`${this.prefix}.`))
      return undefined;
    const name = streamId ?? event.streamId.slice(this.prefix.length + 1);
    if (name.startsWith('snapshot-')) return undefined;
    const recorded: RecordedEvent = {
      id: event.id,
      streamId: name,
      type: event.type,
      version: Number(event.revision),
      position: Number(event.position?.commit ?? 0),
      data: event.data,
      metadata: event.metadata as RecordedEvent['metadata'],
      recordedAt: event.created,
    };
    return this.schemas ? this.schemas.decode(recorded) : recorded;
  }
}
