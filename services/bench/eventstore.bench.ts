/**
 * `npm run bench -- eventstore`: the tradecore event store on Postgres and on PGlite, Emmett's
 * PostgreSQL event store, and the limit — the same rows written by a bare INSERT per transaction
 * into a plain table — all on one fixed workload. The stores take turns: each throughput row runs
 * in rounds whose order rotates, so the drift of a shared machine's disk and CPU hits all of them.
 *
 * 1. warm-up: single appends, batches and a read, untimed;
 * 2. single-event appends by 1 writer, then by 16 concurrent writers (each on its own 10 streams);
 * 3. 10-event batch appends by 1 writer;
 * 4. subscriber latency: appends paced every 5 ms while a subscription follows all events, timed
 *    from the append call to the subscriber's handler;
 * 5. a read of all events in pages of 1,000, after an untimed fill up to a fixed event count:
 *    one untimed pass, then the median of five timed passes (a bare SELECT for the limit).
 *
 * Every store gets a fresh schema (tradecore, the limit), database (Emmett) or data folder (PGlite),
 * dropped at the end, and at most 16 connections. The events are the same shape everywhere: a small
 * JSON payload and the full tradecore metadata (correlation, causation, actor, time, schema version).
 * Events are appended without a schema registry: the row measures the store, not zod.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dumbo } from '@event-driven-io/dumbo';
import { getPostgreSQLEventStore, readMessagesBatch } from '@event-driven-io/emmett-postgresql';
import pg from 'pg';
import { openPgliteEventStore } from '../../adapters/pglite/event-store.ts';
import { openPostgresEventStore } from '../../adapters/postgres/index.ts';
import type { NewEvent } from '../../domain/shared/event-store.ts';
import { isolatedName, testUrls } from '../../infra/test-infra/isolation.ts';
import type { BenchOptions } from './main.ts';
import { type BenchRow, compared } from './report.ts';

const POOL_SIZE = 16;
const PAGE_SIZE = 1000;
const STREAMS_PER_WRITER = 10;
const LATENCY_INTERVAL_MS = 5;
const READ_PASSES = 5;

interface Workload {
  warmupAppends: number;
  singleAppends: number;
  perWriterAppends: number;
  batches: number;
  latencySamples: number;
  /** The event count a read of all events covers (the store is filled up to it, untimed). */
  readEvents: number;
}

const FULL: Workload = {
  warmupAppends: 300,
  singleAppends: 2_000,
  perWriterAppends: 250,
  batches: 400,
  latencySamples: 200,
  readEvents: 50_000,
};
const QUICK: Workload = {
  warmupAppends: 50,
  singleAppends: 300,
  perWriterAppends: 40,
  batches: 60,
  latencySamples: 50,
  readEvents: 10_000,
};

/** One event as every store receives it. */
interface BenchEvent {
  id: string;
  type: string;
  data: { accountId: string; amount: number; currency: string };
  metadata: { correlationId: string; causationId: string; actor: string; occurredAt: string };
}

/** What the benchmark needs from a store; each adapter below maps it to the store's own API. */
interface BenchStore {
  append(stream: string, events: BenchEvent[]): Promise<void>;
  /** Reads every event in pages of `pageSize`, in the store's read-all order; answers the count. */
  readAll(pageSize: number): Promise<number>;
  /** Calls `onEvent` with each new event's id from now on; resolves once following. Absent for the limit. */
  follow?(onEvent: (id: string) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

function newEvent(index: number): BenchEvent {
  const id = randomUUID();
  return {
    id,
    type: 'CashDeposited',
    data: { accountId: `acc-${index % 1000}`, amount: 10_000 + index, currency: 'BRL' },
    metadata: {
      correlationId: id,
      causationId: id,
      actor: 'bench',
      occurredAt: new Date().toISOString(),
    },
  };
}

const eventsOf = (count: number, start = 0) => Array.from({ length: count }, (_, i) => newEvent(start + i));

const toNewEvent = (event: BenchEvent): NewEvent => event;

async function tradecorePostgres(url: string): Promise<BenchStore> {
  const schema = isolatedName('bench_tc');
  const store = await openPostgresEventStore({ url, schema, poolSize: POOL_SIZE });
  return {
    async append(stream, events) {
      await store.append(stream, events.map(toNewEvent));
    },
    readAll: (pageSize) => readAllPaged((after) => store.readAll({ after, limit: pageSize }), pageSize),
    follow: (onEvent) => followTradecore(store, onEvent),
    async close() {
      await store.close();
      await dropSchema(url, schema);
    },
  };
}

async function tradecorePglite(): Promise<BenchStore> {
  // A data folder like the embedded default, not an in-memory database.
  const dataDir = await mkdtemp(join(tmpdir(), 'tradecore-bench-'));
  const store = await openPgliteEventStore({ dataDir, schema: 'broker' });
  return {
    async append(stream, events) {
      await store.append(stream, events.map(toNewEvent));
    },
    readAll: (pageSize) => readAllPaged((after) => store.readAll({ after, limit: pageSize }), pageSize),
    follow: (onEvent) => followTradecore(store, onEvent),
    async close() {
      await store.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

async function readAllPaged(
  readPage: (after: number) => Promise<{ position: number }[]>,
  pageSize: number,
): Promise<number> {
  let after = 0;
  let count = 0;
  for (;;) {
    const page = await readPage(after);
    count += page.length;
    if (page.length < pageSize) return count;
    after = page.at(-1)!.position;
  }
}

async function followTradecore(
  store: Awaited<ReturnType<typeof openPostgresEventStore>>,
  onEvent: (id: string) => void,
): Promise<() => Promise<void>> {
  const after = await store.headPosition();
  let caughtUp!: () => void;
  const following = new Promise<void>((resolve) => {
    caughtUp = resolve;
  });
  const subscription = store.subscribeToAll({
    after,
    onEvent: (event) => onEvent(event.id),
    onCaughtUp: caughtUp,
  });
  await following;
  return () => subscription.stop();
}

/**
 * Emmett in its own database: its tables (`emt_messages`, `emt_streams`, …) live in the connection's
 * default schema and have no schema option. It gets a pg pool of the same size as ours.
 */
async function emmett(serverUrl: string): Promise<BenchStore> {
  const database = isolatedName('bench_emmett');
  await adminQuery(serverUrl, `CREATE DATABASE ${database}`);
  const url = withDatabase(serverUrl, database);
  const pool = new pg.Pool({ connectionString: url, max: POOL_SIZE });
  pool.on('error', () => {});
  const connection = dumbo({ connectionString: url, pool });
  const store = getPostgreSQLEventStore(url, { connectionOptions: { dumbo: connection } });
  await store.schema.migrate();
  return {
    async append(stream, events) {
      await store.appendToStream(
        stream,
        events.map((event) => ({
          type: event.type,
          data: event.data,
          metadata: { ...event.metadata, messageId: event.id, schemaVersion: 1 },
        })),
      );
    },
    // Emmett's event store has no read-all method; `readMessagesBatch` is the exported function its
    // consumers page through the global log with (ordered by transaction id, then position).
    async readAll(pageSize) {
      let after = 0n;
      let count = 0;
      for (;;) {
        const batch = await readMessagesBatch(connection.execute, { after, batchSize: pageSize });
        count += batch.messages.length;
        if (!batch.areMessagesLeft) return count;
        after = batch.currentGlobalPosition;
      }
    },
    // Emmett has no push subscription: a consumer polls with `readMessagesBatch`, every
    // `pullingFrequencyInMs` while it finds full batches and with a back-off up to 1 s otherwise.
    async follow(onEvent) {
      const consumer = store.consumer({ pulling: { batchSize: 100, pullingFrequencyInMs: 1 } });
      consumer.reactor({
        processorId: isolatedName('bench_latency'),
        startFrom: 'END',
        eachMessage: (message) => {
          onEvent(String((message.metadata as { messageId: string }).messageId));
        },
      });
      void consumer.start();
      return () => consumer.stop();
    },
    async close() {
      await store.close();
      await pool.end();
      await adminQuery(serverUrl, `DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    },
  };
}

/**
 * The limit: the same columns, keys and values as tradecore's `events` table, each append one
 * plain INSERT in its own transaction (a multi-row INSERT for a batch), the stream version kept by
 * the writer in memory. No stream table, no expected-version check, no idempotency, no ordering
 * guarantee for readers. The read is a bare keyset-paged SELECT of the same columns.
 */
async function bareInsert(url: string): Promise<BenchStore> {
  const schema = isolatedName('bench_bare');
  const pool = new pg.Pool({ connectionString: url, max: POOL_SIZE });
  pool.on('error', () => {});
  await pool.query(`
    CREATE SCHEMA ${schema};
    CREATE TABLE ${schema}.events (
      position       bigserial PRIMARY KEY,
      transaction_id xid8 NOT NULL DEFAULT pg_current_xact_id(),
      stream_id      text NOT NULL,
      version        bigint NOT NULL,
      event_id       uuid NOT NULL UNIQUE,
      type           text NOT NULL,
      data           jsonb NOT NULL,
      metadata       jsonb NOT NULL,
      recorded_at    timestamptz NOT NULL DEFAULT date_trunc('milliseconds', clock_timestamp()),
      UNIQUE (stream_id, version)
    );`);
  const versions = new Map<string, number>();
  return {
    async append(stream, events) {
      const first = (versions.get(stream) ?? -1) + 1;
      versions.set(stream, first + events.length - 1);
      const values: unknown[] = [];
      const rows = events.map((event, index) => {
        const base = index * 6;
        values.push(
          stream,
          first + index,
          event.id,
          event.type,
          JSON.stringify(event.data),
          JSON.stringify({ ...event.metadata, schemaVersion: 1 }),
        );
        return `($${base + 1}, $${base + 2}, $${base + 3}, $${base + 4}, $${base + 5}, $${base + 6})`;
      });
      await pool.query(
        `INSERT INTO ${schema}.events (stream_id, version, event_id, type, data, metadata) VALUES ${rows.join(', ')}`,
        values,
      );
    },
    readAll: (pageSize) =>
      readAllPaged(
        async (after) =>
          (
            await pool.query<{ position: number }>(
              `SELECT position, stream_id, version, event_id, type, data, metadata, recorded_at
                 FROM ${schema}.events WHERE position > $1 ORDER BY position LIMIT $2`,
              [after, pageSize],
            )
          ).rows,
        pageSize,
      ),
    async close() {
      await pool.query(`DROP SCHEMA ${schema} CASCADE`);
      await pool.end();
    },
  };
}

async function adminQuery(url: string, text: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

const dropSchema = (url: string, schema: string) =>
  adminQuery(url, `DROP SCHEMA IF EXISTS ${schema} CASCADE`);

function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

/** `writers` concurrent writers, each appending `appends` times `batchSize` events to its own streams. */
async function appendBurst(
  store: BenchStore,
  phase: string,
  writers: number,
  appends: number,
  batchSize: number,
): Promise<{ events: number; seconds: number }> {
  const started = performance.now();
  await Promise.all(
    Array.from({ length: writers }, async (_, writer) => {
      for (let index = 0; index < appends; index++) {
        const stream = `account-${phase}w${writer}s${index % STREAMS_PER_WRITER}`;
        await store.append(stream, eventsOf(batchSize, index * batchSize));
      }
    }),
  );
  return { events: writers * appends * batchSize, seconds: (performance.now() - started) / 1000 };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Appends paced every few ms; each sample is the time from the append call to the subscriber's handler. */
async function subscriberLatency(store: BenchStore, samples: number): Promise<{ p50: number; p99: number }> {
  const sent = new Map<string, number>();
  const latencies: number[] = [];
  let arrived: (() => void) | undefined;
  const stop = await store.follow!((id) => {
    const at = sent.get(id);
    if (at === undefined) return;
    latencies.push(performance.now() - at);
    sent.delete(id);
    if (sent.size === 0) arrived?.();
  });
  try {
    // Untimed: the first events reach a subscriber that is surely following.
    for (let index = 0; index < 3; index++) await roundTrip(store, sent, () => latencies.pop());
    const start = performance.now();
    for (let index = 0; index < samples; index++) {
      const event = newEvent(index);
      sent.set(event.id, performance.now());
      await store.append(`account-latency${index % STREAMS_PER_WRITER}`, [event]);
      const next = start + (index + 1) * LATENCY_INTERVAL_MS;
      if (next > performance.now()) await sleep(next - performance.now());
    }
    if (sent.size > 0) {
      await Promise.race([
        new Promise<void>((resolve) => {
          arrived = resolve;
        }),
        sleep(15_000).then(() => {
          throw new Error(`subscriber latency: ${sent.size} events never arrived`);
        }),
      ]);
    }
  } finally {
    await stop();
  }
  latencies.sort((a, b) => a - b);
  return { p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99) };

  async function roundTrip(target: BenchStore, pending: Map<string, number>, discard: () => void) {
    const event = newEvent(0);
    pending.set(event.id, performance.now());
    await target.append('account-latency-warmup', [event]);
    const deadline = performance.now() + 5_000;
    while (pending.has(event.id) && performance.now() < deadline) await sleep(1);
    if (pending.has(event.id)) throw new Error('subscriber latency: the warm-up event never arrived');
    discard();
  }
}

function percentile(sorted: number[], fraction: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1)]!;
}

/** Node-postgres type parsers are process-wide; each contender runs with its own driver's set. */
type Parsers = (readonly [number, (value: string) => unknown])[];
const PARSED_TYPES = [20, 114, 3802];
const captureParsers = (): Parsers =>
  PARSED_TYPES.map((oid) => [oid, pg.types.getTypeParser(oid, 'text')] as const);
function installParsers(parsers: Parsers): void {
  for (const [oid, parser] of parsers) pg.types.setTypeParser(oid, parser);
}

interface Contender {
  name: string;
  store: BenchStore;
  parsers: Parsers;
}

/**
 * Runs `step` for every contender, `rounds` times, in an order that rotates each round: the disk
 * and CPU of a shared machine drift over a run, and interleaving spreads the drift over everyone.
 */
async function interleaved(
  contenders: Contender[],
  rounds: number,
  step: (contender: Contender, round: number) => Promise<{ events: number; seconds: number }>,
): Promise<Map<Contender, number[]>> {
  const rates = new Map(contenders.map((contender) => [contender, [] as number[]]));
  const totals = new Map(contenders.map((contender) => [contender, { events: 0, seconds: 0 }]));
  for (let round = 0; round < rounds; round++) {
    for (let turn = 0; turn < contenders.length; turn++) {
      const contender = contenders[(round + turn) % contenders.length]!;
      installParsers(contender.parsers);
      const result = await step(contender, round);
      const total = totals.get(contender)!;
      total.events += result.events;
      total.seconds += result.seconds;
      rates.get(contender)!.push(result.events / result.seconds);
    }
  }
  for (const [contender, total] of totals) rates.get(contender)!.push(total.events / total.seconds);
  return rates;
}

/** Events per second over all rounds together. */
const overall = (rates: number[]) => rates.at(-1)!;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function readPass(store: BenchStore): Promise<{ events: number; seconds: number }> {
  const started = performance.now();
  const events = await store.readAll(PAGE_SIZE);
  return { events, seconds: (performance.now() - started) / 1000 };
}

interface Results {
  append1: number;
  append16: number;
  batch10: number;
  readAll: number;
  p50: number;
  p99: number;
}

async function runWorkload(contenders: Contender[], workload: Workload, log: (line: string) => void) {
  const rounds = 4;
  let started = performance.now();
  const lap = (what: string) => {
    log(`${what}: ${((performance.now() - started) / 1000).toFixed(1)} s`);
    started = performance.now();
  };
  for (const contender of contenders) {
    installParsers(contender.parsers);
    await appendBurst(contender.store, 'warm', 4, workload.warmupAppends / 4, 1);
    await appendBurst(contender.store, 'warmbatch', 1, workload.warmupAppends / 10, 10);
    await contender.store.readAll(PAGE_SIZE);
  }
  lap('warm-up');
  const append1 = await interleaved(contenders, rounds, ({ store }) =>
    appendBurst(store, 'one', 1, workload.singleAppends / rounds, 1),
  );
  lap('append, 1 writer');
  const append16 = await interleaved(contenders, rounds, ({ store }) =>
    appendBurst(store, 'many', 16, workload.perWriterAppends / rounds, 1),
  );
  lap('append, 16 writers');
  const batch10 = await interleaved(contenders, rounds, ({ store }) =>
    appendBurst(store, 'batch', 1, workload.batches / rounds, 10),
  );
  lap('append, 10-event batches');
  const latencies = new Map<Contender, { p50: number; p99: number }>();
  for (const contender of contenders) {
    if (!contender.store.follow) continue;
    installParsers(contender.parsers);
    latencies.set(contender, await subscriberLatency(contender.store, workload.latencySamples));
  }
  lap('subscriber latency');
  const appended =
    workload.warmupAppends * 2 +
    workload.singleAppends +
    16 * workload.perWriterAppends +
    10 * workload.batches;
  for (const contender of contenders) {
    installParsers(contender.parsers);
    const fill = Math.max(
      0,
      workload.readEvents - appended - (latencies.has(contender) ? workload.latencySamples + 3 : 0),
    );
    for (let index = 0; index < Math.ceil(fill / 100); index++) {
      await contender.store.append(`account-fill${index % 100}`, eventsOf(Math.min(100, fill - index * 100)));
    }
    await contender.store.readAll(PAGE_SIZE);
  }
  lap('fill for the read');
  const reads = await interleaved(contenders, READ_PASSES, ({ store }) => readPass(store));
  lap('read all');
  return new Map(
    contenders.map((contender): [string, Results] => [
      contender.name,
      {
        append1: overall(append1.get(contender)!),
        append16: overall(append16.get(contender)!),
        batch10: overall(batch10.get(contender)!),
        // The median pass, the last entry being the overall rate.
        readAll: median(reads.get(contender)!.slice(0, -1)),
        p50: latencies.get(contender)?.p50 ?? Number.NaN,
        p99: latencies.get(contender)?.p99 ?? Number.NaN,
      },
    ]),
  );
}

export default {
  title: 'Event store: tradecore (Postgres, PGlite) vs Emmett PostgreSQL vs bare INSERT (events/s, ms)',
  async run(options: BenchOptions): Promise<BenchRow[]> {
    const workload = options.quick ? QUICK : FULL;
    const url = testUrls().databaseUrl;
    const log = (line: string) => console.error(line);

    const contenders: Contender[] = [];
    try {
      const ours = captureParsers();
      contenders.push({ name: 'limit', store: await bareInsert(url), parsers: ours });
      contenders.push({ name: 'postgres', store: await tradecorePostgres(url), parsers: ours });
      // Emmett's driver (dumbo) installs its own process-wide parsers when it connects (int8 as
      // BigInt, JSON through its reviver): Emmett runs with those, everyone else with ours.
      const peer = await emmett(url);
      contenders.push({ name: 'emmett', store: peer, parsers: captureParsers() });
      installParsers(ours);
      contenders.push({ name: 'pglite', store: await tradecorePglite(), parsers: ours });

      const results = await runWorkload(contenders, workload, log);
      return rows(results);
    } finally {
      for (const contender of contenders) {
        installParsers(contender.parsers);
        await contender.store.close();
      }
    }
  },
};

function rows(results: Map<string, Results>): BenchRow[] {
  const EMMETT = 'emmett postgresql';
  const LIMIT = 'bare insert';
  const peer = results.get('emmett')!;
  const limit = results.get('limit')!;
  const rows: BenchRow[] = [];
  for (const label of ['postgres', 'pglite']) {
    const ours = results.get(label)!;
    rows.push(
      compared(`${label} append 1 writer`, ours.append1, 'events/s', EMMETT, peer.append1),
      compared(`${label} append 16 writers`, ours.append16, 'events/s', EMMETT, peer.append16),
      compared(`${label} append 10-event batches`, ours.batch10, 'events/s', EMMETT, peer.batch10),
      compared(`${label} read all`, ours.readAll, 'events/s', EMMETT, peer.readAll),
      compared(`${label} subscriber latency p50`, ours.p50, 'ms', EMMETT, peer.p50, false),
      compared(`${label} subscriber latency p99`, ours.p99, 'ms', EMMETT, peer.p99, false),
    );
    if (label === 'postgres') {
      rows.push(
        compared('postgres append 1 writer vs limit', ours.append1, 'events/s', LIMIT, limit.append1),
        compared('postgres append 16 writers vs limit', ours.append16, 'events/s', LIMIT, limit.append16),
        compared('postgres append 10-event batches vs limit', ours.batch10, 'events/s', LIMIT, limit.batch10),
        compared('postgres read all vs bare select', ours.readAll, 'events/s', 'bare select', limit.readAll),
      );
    }
  }
  return rows;
}
