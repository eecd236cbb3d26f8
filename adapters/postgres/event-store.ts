import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import type { EventSchemas } from '../../domain/shared/event-schemas.ts';
import {
  type AppendResult,
  DuplicateEventId,
  type EventStore,
  type ExpectedVersion,
  type NewEvent,
  parseExpectedVersion,
  type ReadAllOptions,
  type ReadStreamOptions,
  type RecordedEvent,
  type Snapshot,
  type SubscribeOptions,
  type Subscription,
  WrongExpectedVersion,
} from '../../domain/shared/event-store.ts';
import { appendGroupSize, appendSeconds, readerHoldbackSeconds } from '../shared/event-store-metrics.ts';
import { GroupCommit } from '../shared/group-commit.ts';
import { type PreparedEvent, prepareEvents } from '../shared/prepare-events.ts';
import { type SqlClient, sqlState } from '../shared/sql-client.ts';
import { type BatchRead, followAll, LiveTail, Waker } from '../shared/subscription.ts';
import { assertSchemaName, eventStoreSchema, notifyChannel, positionLockKey } from './event-store-schema.ts';

export interface SqlEventStoreOptions {
  client: SqlClient;
  /** The Postgres schema holding this store's tables: one per side (`broker`, `b3`). */
  schema: string;
  schemas?: EventSchemas;
  /** The kind of store in its metrics' `store` label (`postgres`, `pglite`), before its schema: `pglite:broker`. */
  label?: string;
  /** Close the client with the store. */
  ownsClient?: boolean;
  /**
   * Wake other processes' subscribers with NOTIFY after each append (default true). An embedded
   * PGlite belongs to one process, whose subscribers are woken in memory: it has no one to tell.
   */
  notifyOtherProcesses?: boolean;
  /**
   * This store is the only writer of its database (embedded PGlite): it then remembers each
   * stream's version as its last append or full read found it, so that a cached aggregate needs no
   * read to know it is current.
   */
  exclusiveWriter?: boolean;
}

/** How many streams an exclusive writer remembers the version of (the least recently appended go first). */
const KNOWN_VERSIONS_KEPT = 100_000;

/** How long a NOTIFY waits for more appends to share it: the delay other processes' subscribers see. */
const NOTIFY_COALESCE_MS = 5;

/**
 * How many append statements one store has in flight on a server at once; appends that arrive
 * meanwhile wait and go together in the next. Two keeps the connection busy while a group commits.
 */
const APPEND_GROUPS_IN_FLIGHT = 2;

interface StreamAppend {
  streamId: string;
  expected: string;
  /** The prepared events as JSON, written once: sent as the jsonb parameter, and read back by the tail. */
  eventsJson: string;
  count: number;
  /** When `append` was called, in this store's count: a group's positions follow it. */
  arrival: number;
}

interface AppendRow {
  event_position: number;
  stream_version: number;
  recorded_ms: number;
}

interface BatchOutcome {
  item: number;
  error_state: string | null;
  error_message: string | null;
}

/**
 * `append_events_batch`'s argument, `[{stream, expected, first, events}]`, around each append's
 * events JSON. The group is written in stream order (its locks), but its positions are given in
 * the order the appends were made: `first` is where an append's own start among them, so that
 * trades an engine appends one after another keep that order on the tape.
 */
function appendsJson(group: StreamAppend[]): string {
  const first = new Map<StreamAppend, number>();
  let next = 0;
  for (const append of [...group].sort((a, b) => a.arrival - b.arrival)) {
    first.set(append, next);
    next += append.count;
  }
  const appends = group.map(
    (append) =>
      `{"stream":${JSON.stringify(append.streamId)},"expected":${JSON.stringify(append.expected)},"first":${first.get(append)},"events":${append.eventsJson}}`,
  );
  return `[${appends.join(',')}]`;
}

const numericAppendRow = (row: AppendRow): AppendRow => ({
  event_position: Number(row.event_position),
  stream_version: Number(row.stream_version),
  recorded_ms: Number(row.recorded_ms),
});

interface EventRow {
  position: number;
  settled?: boolean;
  stream_id: string;
  version: number;
  event_id: string;
  type: string;
  data: unknown;
  metadata: RecordedEvent['metadata'];
  /** Milliseconds since the epoch: a number decodes much faster than a timestamptz string. */
  recorded_ms: number;
}

// recorded_at is stored truncated to milliseconds, so its epoch in milliseconds is exact.
const eventColumns =
  'position, stream_id, version, event_id, type, data, metadata, (extract(epoch from recorded_at) * 1000)::int8 AS recorded_ms';

/** The event store on Postgres SQL: the same code serves pg (Postgres) and PGlite (embedded). */
export class SqlEventStore implements EventStore {
  private readonly client: SqlClient;
  private readonly schema: string;
  private readonly label: string;
  private readonly waker = new Waker();
  private unlisten?: () => Promise<void>;
  private readonly subscriptions = new Set<Subscription>();
  /** Reads new events once for every live subscriber (started by the first subscription). */
  private readonly tail: LiveTail;
  /** Where a plain `readAll` was last held back, to measure how long. */
  private holdback?: { position: number; since: number };
  /** The NOTIFY in flight, if any, and whether appends committed since it was sent. */
  private notifying?: Promise<void>;
  private notifyAgain = false;
  private readonly knownVersions = new Map<string, number>();
  /** Sent with this store's NOTIFYs, so that it can tell its own from other processes'. */
  private readonly origin = randomUUID();
  private readonly appends: GroupCommit<StreamAppend, AppendRow[]>;
  private arrivals = 0;

  private constructor(private readonly options: SqlEventStoreOptions) {
    this.client = options.client;
    this.schema = assertSchemaName(options.schema);
    // The kind and the schema: a process's broker and B3 stores are told apart on a dashboard.
    this.label = `${options.label ?? 'postgres'}:${this.schema}`;
    this.tail = new LiveTail(
      (after, limit) => this.readAllBatch(after, limit),
      () => this.headPosition(),
      this.waker,
      { fedByWriter: options.exclusiveWriter },
    );
    // An embedded PGlite runs one statement at a time: a second one in flight would only queue.
    this.appends = new GroupCommit((group) => this.writeAppends(group), {
      inFlight: options.exclusiveWriter ? 1 : APPEND_GROUPS_IN_FLIGHT,
      orderBy: (append) => append.streamId,
      // Appends made in one turn of the event loop (report lanes, engine batches) go as one group.
      gather: true,
    });
  }

  /** Creates the schema's tables and function if needed (safe to run from several processes at once). */
  static async open(options: SqlEventStoreOptions): Promise<SqlEventStore> {
    const store = new SqlEventStore(options);
    await options.client.exec(
      `SELECT pg_advisory_xact_lock(${positionLockKey(`migrate.${store.schema}`)});\n${eventStoreSchema(store.schema)}`,
    );
    // Our own NOTIFYs come back too: this process woke its subscribers when it committed.
    store.unlisten = await options.client.listen(notifyChannel(store.schema), (payload) => {
      if (payload !== store.origin) store.waker.wake();
    });
    return store;
  }

  async append(
    streamId: string,
    events: NewEvent[],
    options: { expectedVersion?: ExpectedVersion } = {},
  ): Promise<AppendResult> {
    const expected = parseExpectedVersion(options.expectedVersion ?? 'any');
    const prepared = prepareEvents(streamId, events, this.options.schemas);
    const stopTimer = appendSeconds.startTimer({ store: this.label });
    try {
      const rows = await this.appends.submit({
        streamId,
        expected: String(expected),
        eventsJson: JSON.stringify(prepared),
        count: prepared.length,
        arrival: this.arrivals++,
      });
      return {
        nextExpectedVersion: rows[0]!.stream_version,
        positions: rows.map((row) => row.event_position),
        idempotent: false,
      };
    } catch (error) {
      const state = sqlState(error);
      if (state === 'TCWEV' || state === '23505') {
        // A retry of events already stored answers their original positions, whatever it expected.
        const retry = await this.storedRetry(
          streamId,
          prepared.map((event) => event.id),
        );
        if (retry) return retry;
      }
      if (state === 'TCWEV')
        throw new WrongExpectedVersion(streamId, expected, Number((error as Error).message));
      throw error;
    } finally {
      stopTimer();
    }
  }

  /**
   * Sends appends to the database: one alone as `append_events`, and those that queued while
   * earlier ones were in flight together as one `append_events_batch`, in one round trip and one
   * commit (group commit). Each append keeps its own outcome.
   */
  private async writeAppends(group: StreamAppend[]): Promise<Array<AppendRow[] | Error>> {
    appendGroupSize.observe({ store: this.label }, group.length);
    if (group.length === 1) {
      const [only] = group;
      const rows = await this.client.query<AppendRow>(
        `SELECT event_position, stream_version, recorded_ms FROM ${this.schema}.append_events($1, $2, $3::jsonb)`,
        [only!.streamId, only!.expected, only!.eventsJson],
      );
      const appended = rows.map(numericAppendRow);
      this.committed(group, [appended]);
      return [appended];
    }
    const rows = await this.client.query<AppendRow & BatchOutcome>(
      `SELECT item, event_position, stream_version, recorded_ms, error_state, error_message
         FROM ${this.schema}.append_events_batch($1::jsonb)`,
      [appendsJson(group)],
    );
    const outcomes: Array<AppendRow[] | Error> = group.map(() => []);
    for (const row of rows) {
      const item = Number(row.item);
      if (row.error_state === null) (outcomes[item] as AppendRow[]).push(numericAppendRow(row));
      else outcomes[item] = Object.assign(new Error(row.error_message ?? ''), { code: row.error_state });
    }
    this.committed(group, outcomes);
    return outcomes;
  }

  /**
   * After a commit: an exclusive writer records each stream's new version and hands what it just
   * wrote to the live tail, which then needs no read to learn it (nobody else writes, and its appends commit in position order);
   * then subscribers here and in other processes are woken.
   */
  private committed(group: StreamAppend[], outcomes: Array<AppendRow[] | Error>): void {
    if (outcomes.every((outcome) => outcome instanceof Error)) return;
    if (this.options.exclusiveWriter) {
      const events: RecordedEvent[] = [];
      group.forEach((append, index) => {
        const rows = outcomes[index];
        if (rows instanceof Error || rows === undefined) return;
        // As a read would give them: what the jsonb columns hold, not the caller's objects.
        const appended = JSON.parse(append.eventsJson) as PreparedEvent[];
        // Known before the followers hear of it: a cache they read through must not trust the
        // version it had (an account read on a PasswordChanged would be the one before it).
        this.remember(append.streamId, rows[0]!.stream_version);
        const first = rows[0]!.stream_version - rows.length + 1;
        rows.forEach((row, offset) => {
          const event = appended[offset]!;
          events.push(
            this.toEvent({
              position: row.event_position,
              stream_id: append.streamId,
              version: first + offset,
              event_id: event.id,
              type: event.type,
              data: event.data ?? null,
              metadata: event.metadata,
              recorded_ms: row.recorded_ms,
            }),
          );
        });
      });
      this.tail.offer(events.sort((a, b) => a.position - b.position));
    }
    this.announce();
  }

  knownVersion(streamId: string): number | undefined {
    return this.knownVersions.get(streamId);
  }

  private remember(streamId: string, version: number): void {
    const known = this.knownVersions.get(streamId);
    if (known !== undefined && known >= version) return;
    this.knownVersions.delete(streamId);
    this.knownVersions.set(streamId, version);
    if (this.knownVersions.size > KNOWN_VERSIONS_KEPT)
      this.knownVersions.delete(this.knownVersions.keys().next().value!);
  }

  /**
   * Wakes this process's subscribers at once, and other processes' through NOTIFY, sent after the
   * append committed and in a transaction of its own: a NOTIFY inside the append would hold
   * Postgres's database-wide notify lock through the append's WAL flush and serialise all writers.
   * At most one NOTIFY is in flight per store, sent NOTIFY_COALESCE_MS after the append that
   * called for it; appends committed meanwhile share it or the next one.
   * A lost NOTIFY only delays other processes' subscribers to their next poll.
   */
  private announce(): void {
    this.waker.wake();
    if (this.options.notifyOtherProcesses === false) return;
    if (this.notifying) {
      this.notifyAgain = true;
      return;
    }
    const channel = notifyChannel(this.schema);
    this.notifying = (async () => {
      do {
        // A few milliseconds' wait lets the appends committing meanwhile share this NOTIFY.
        await delay(NOTIFY_COALESCE_MS);
        this.notifyAgain = false;
        await this.client.query('SELECT pg_notify($1, $2)', [channel, this.origin]).catch(() => {});
      } while (this.notifyAgain);
      this.notifying = undefined;
    })();
  }

  /**
   * When some of the ids are stored: all of them in this stream is a retry, answered with the
   * original positions; anything else is a DuplicateEventId. None stored: undefined.
   */
  private async storedRetry(streamId: string, ids: string[]): Promise<AppendResult | undefined> {
    const rows = await this.client.query<{ event_id: string; position: number; stream_id: string }>(
      `SELECT e.event_id, e.position, e.stream_id
         FROM unnest($1::uuid[]) WITH ORDINALITY AS i(id, ordinal)
         JOIN ${this.schema}.events e ON e.event_id = i.id
        ORDER BY i.ordinal`,
      [ids],
    );
    if (rows.length === 0) return undefined;
    if (rows.length !== ids.length || rows.some((row) => row.stream_id !== streamId)) {
      throw new DuplicateEventId(
        streamId,
        rows.map((row) => row.event_id),
      );
    }
    return {
      nextExpectedVersion: await this.streamVersion(streamId),
      positions: rows.map((row) => Number(row.position)),
      idempotent: true,
    };
  }

  async readStream(streamId: string, options: ReadStreamOptions = {}): Promise<RecordedEvent[]> {
    const limit = options.limit ?? 2_147_483_647;
    if (options.direction === 'backwards') {
      const rows = await this.client.query<EventRow>(
        `SELECT ${eventColumns} FROM ${this.schema}.events
          WHERE stream_id = $1 AND ($2::bigint IS NULL OR version <= $2)
          ORDER BY version DESC LIMIT $3`,
        [streamId, options.fromVersion ?? null, limit],
      );
      return rows.map((row) => this.toEvent(row));
    }
    const rows = await this.client.query<EventRow>(
      `SELECT ${eventColumns} FROM ${this.schema}.events
        WHERE stream_id = $1 AND version >= $2
          AND ($3::bigint IS NULL OR version <= $3)
          AND ($4::timestamptz IS NULL OR recorded_at <= $4)
        ORDER BY version LIMIT $5`,
      [streamId, options.fromVersion ?? 0, options.toVersion ?? null, options.until ?? null, limit],
    );
    const toTheEnd = options.toVersion === undefined && options.until === undefined && rows.length < limit;
    if (this.options.exclusiveWriter && toTheEnd && rows.length > 0)
      this.remember(streamId, Number(rows.at(-1)!.version));
    return rows.map((row) => this.toEvent(row));
  }

  async readAll(options: ReadAllOptions = {}): Promise<RecordedEvent[]> {
    const batch = await this.readAllBatch(options.after ?? 0, options.limit ?? 1000);
    this.holdback = measureHoldback(this.holdback, options.after ?? 0, batch, this.label);
    return batch.events;
  }

  /**
   * Reads in position order, stopping before the first event whose transaction is not older than
   * every transaction still open: such an event may yet have an open neighbour below it.
   */
  private async readAllBatch(after: number, limit: number): Promise<BatchRead> {
    const rows = await this.client.query<EventRow>(
      `SELECT ${eventColumns}, transaction_id < pg_snapshot_xmin(pg_current_snapshot()) AS settled
         FROM ${this.schema}.events WHERE position > $1 ORDER BY position LIMIT $2`,
      [after, limit],
    );
    const events: RecordedEvent[] = [];
    for (const row of rows) {
      if (!row.settled) return { events, heldBack: true };
      events.push(this.toEvent(row));
    }
    return { events, heldBack: false };
  }

  async streamVersion(streamId: string): Promise<number> {
    const rows = await this.client.query<{ version: number }>(
      `SELECT version FROM ${this.schema}.streams WHERE stream_id = $1`,
      [streamId],
    );
    return rows[0] ? Number(rows[0].version) : -1;
  }

  async headPosition(): Promise<number> {
    const rows = await this.client.query<{ head: number | null }>(
      `SELECT max(position) AS head FROM ${this.schema}.events
        WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot())`,
    );
    return Number(rows[0]?.head ?? 0);
  }

  subscribeToAll(options: SubscribeOptions): Subscription {
    let holdback: { position: number; since: number } | undefined;
    let after = options.after;
    const subscription = followAll(
      async (from, limit) => {
        const batch = this.tail.read(from, limit) ?? (await this.readAllBatch(from, limit));
        holdback = measureHoldback(holdback, after, batch, this.label);
        after = batch.events.at(-1)?.position ?? from;
        return batch;
      },
      this.tail.advanced,
      options,
    );
    this.tail.start();
    this.subscriptions.add(subscription);
    void subscription.done.then(() => this.subscriptions.delete(subscription));
    return subscription;
  }

  async saveSnapshot(snapshot: Omit<Snapshot, 'takenAt'>): Promise<void> {
    await this.client.query(
      `INSERT INTO ${this.schema}.snapshots (stream_id, schema_version, version, state)
       VALUES ($1, $2, $3, $4::jsonb)
       ON CONFLICT (stream_id, schema_version, version) DO UPDATE SET state = excluded.state, taken_at = clock_timestamp()`,
      [snapshot.streamId, snapshot.schemaVersion, snapshot.version, JSON.stringify(snapshot.state)],
    );
  }

  async loadSnapshot(
    streamId: string,
    options: { schemaVersion: number; atOrBelowVersion?: number },
  ): Promise<Snapshot | undefined> {
    const rows = await this.client.query<{ version: number; state: unknown; taken_at: Date | string }>(
      `SELECT version, state, taken_at FROM ${this.schema}.snapshots
        WHERE stream_id = $1 AND schema_version = $2 AND ($3::bigint IS NULL OR version <= $3)
        ORDER BY version DESC LIMIT 1`,
      [streamId, options.schemaVersion, options.atOrBelowVersion ?? null],
    );
    const row = rows[0];
    if (!row) return undefined;
    return {
      streamId,
      version: Number(row.version),
      state: row.state,
      schemaVersion: options.schemaVersion,
      takenAt: new Date(row.taken_at),
    };
  }

  async close(): Promise<void> {
    await Promise.all([...this.subscriptions].map((subscription) => subscription.stop()));
    await this.tail.stop();
    await this.unlisten?.();
    await this.notifying;
    if (this.options.ownsClient) await this.client.close();
  }

  private toEvent(row: EventRow): RecordedEvent {
    const event: RecordedEvent = {
      id: row.event_id,
      streamId: row.stream_id,
      type: row.type,
      version: Number(row.version),
      position: Number(row.position),
      data: row.data,
      metadata: row.metadata,
      recordedAt: new Date(Number(row.recorded_ms)),
    };
    return this.options.schemas ? this.options.schemas.decode(event) : event;
  }
}

/** Starts the clock when a reader is first stopped at a position, observes it when the reader passes it. */
function measureHoldback(
  holdback: { position: number; since: number } | undefined,
  after: number,
  batch: BatchRead,
  label: string,
): { position: number; since: number } | undefined {
  const reached = batch.events.at(-1)?.position ?? after;
  if (holdback && (reached > holdback.position || !batch.heldBack)) {
    readerHoldbackSeconds.observe({ store: label }, (performance.now() - holdback.since) / 1000);
    holdback = undefined;
  }
  if (batch.heldBack && !holdback) return { position: reached, since: performance.now() };
  return holdback;
}
