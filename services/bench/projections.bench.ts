/**
 * `npm run bench -- projections` (`--quick`: 100,000 events instead of 1,000,000; `--stores=PGlite,
 * Postgres,MySQL,Mongo` to run some of the stores; `--models=trades,candles` to rebuild some read
 * models only, logging their source events ÷ the sum of their rebuild times and nothing else):
 * the rebuild of every read model from one deterministic trading workload (real domain events: the B3 side from
 * the matching engine, the broker side following it), on each read-model store — PGlite, Postgres,
 * MySQL (MariaDB here), Mongo (the Mongo wire server here) — beside a naive projector that applies
 * one event per transaction (checkpoint compare-and-set included), in the same run.
 *
 * What is measured is the projector and the store: events come from memory (the workload,
 * generated and recorded before the clock starts), so the event store's read speed is not in the
 * figures (see `npm run bench -- eventstore` for it). Each store gets fresh storage. Every timed
 * run starts after a full garbage collection: the recorded million events fill half a gigabyte
 * of heap that a real rebuild, reading pages from its store, does not hold, and a full collection
 * of it (half a second of marking) would otherwise land in whichever run it happened to. Rates:
 *
 * - `<store>: its read models` — the models that store serves in compose (Postgres: trades,
 *   book_depth, candles over the B3 events; MySQL: orders, wallets, instruments over the broker
 *   events; Mongo: quotes, audit over both), source events ÷ wall time of their rebuilds;
 * - `<store>: its read models, rebuilt concurrently` — the same models rebuilt at once (as the live
 *   projectors run), source events ÷ wall time;
 * - `<store>: every read model` — all nine models rebuilt one after another, workload events ÷ the
 *   total time (each event is projected into every model that reads its store);
 * - naive — the same models, one transaction per event, timed on the first `naiveEvents` events of
 *   each source and extrapolated as a rate: a full naive run of a million events would take hours.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { MongoClient } from 'mongodb';
import mysql from 'mysql2/promise';
import { MongoReadModelStore } from '../../adapters/mongo/read-model-store.ts';
import { MysqlReadModelStore } from '../../adapters/mysql/read-model-store.ts';
import { pgliteClient } from '../../adapters/pglite/client.ts';
import { pgClient } from '../../adapters/postgres/client.ts';
import { SqlReadModelStore } from '../../adapters/postgres/read-model-store.ts';
import type {
  EventStore,
  ReadAllOptions,
  RecordedEvent,
  SubscribeOptions,
  Subscription,
} from '../../domain/shared/event-store.ts';
import { isolatedName, testUrls } from '../../infra/test-infra/isolation.ts';
import type { ProjectionDefinition } from '../../projections/model.ts';
import { Projector } from '../../projections/projector.ts';
import { readModelProjections } from '../../projections/read-models/index.ts';
import { tradingWorkload } from '../../projections/read-models/workload.ts';
import type { ReadModelStore } from '../../projections/store.ts';
import type { BenchOptions } from './main.ts';
import { listOption } from './options.ts';
import { type BenchRow, compared } from './report.ts';

const BATCH_SIZE = 5_000;

setFlagsFromString('--expose-gc');
/** A full garbage collection (see the module comment), outside the timed runs. */
const collectGarbage = runInNewContext('gc') as () => void;

/** The recorded history of one event store, in memory: `readAll` is a slice. */
class RecordedHistory implements Pick<EventStore, 'readAll' | 'headPosition'> {
  readonly events: RecordedEvent[] = [];
  async readAll(options: ReadAllOptions = {}): Promise<RecordedEvent[]> {
    const after = options.after ?? 0;
    return this.events.slice(after, after + (options.limit ?? this.events.length));
  }
  async headPosition(): Promise<number> {
    return this.events.length;
  }
  first(count: number): RecordedHistory {
    const slice = new RecordedHistory();
    slice.events.push(...this.events.slice(0, count));
    return slice;
  }
  asEventStore(): EventStore {
    const unsupported = () => {
      throw new Error('the benchmark history only replays');
    };
    return {
      readAll: (options?: ReadAllOptions) => this.readAll(options),
      headPosition: () => this.headPosition(),
      subscribeToAll: (_: SubscribeOptions): Subscription => unsupported(),
      append: unsupported,
      readStream: unsupported,
      streamVersion: unsupported,
      saveSnapshot: unsupported,
      loadSnapshot: unsupported,
      close: async () => {},
    };
  }
}

function recordWorkload(total: number): { broker: RecordedHistory; b3: RecordedHistory } {
  const histories = { broker: new RecordedHistory(), b3: new RecordedHistory() };
  const versions = new Map<string, number>();
  const recordedAt = new Date(Date.UTC(2026, 0, 5, 13));
  let count = 0;
  for (const item of tradingWorkload({
    seed: 20_260_105,
    requests: Number.MAX_SAFE_INTEGER,
    accounts: 200,
  })) {
    const history = histories[item.store];
    const version = (versions.get(item.streamId) ?? -1) + 1;
    versions.set(item.streamId, version);
    history.events.push({
      id: item.event.id,
      streamId: item.streamId,
      type: item.event.type,
      version,
      position: history.events.length + 1,
      data: item.event.data,
      metadata: { schemaVersion: 1, ...item.event.metadata } as RecordedEvent['metadata'],
      recordedAt,
    });
    if (++count >= total) break;
  }
  return histories;
}

interface StoreUnderTest {
  name: string;
  /** The read models this store serves in compose. */
  serves: ProjectionDefinition['store'][];
  /** Rebuild only the models it serves (not all nine), on at most this many events of each source. */
  only?: { maxEvents: number };
  open(): Promise<{ store: ReadModelStore; drop(): Promise<void> }>;
}

function storesUnderTest(): StoreUnderTest[] {
  const urls = testUrls();
  return [
    {
      name: 'PGlite',
      serves: ['postgres', 'mysql', 'mongo'],
      async open() {
        const client = await pgliteClient();
        const store = await SqlReadModelStore.open({ client, schema: 'readmodels', kind: 'pglite' });
        return { store, drop: () => client.close() };
      },
    },
    {
      name: 'Postgres',
      serves: ['postgres'],
      async open() {
        const client = pgClient(urls.databaseUrl);
        const schema = isolatedName('bench_rm');
        const store = await SqlReadModelStore.open({ client, schema });
        return {
          store,
          async drop() {
            await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
            await client.close();
          },
        };
      },
    },
    {
      name: 'MySQL',
      serves: ['mysql'],
      async open() {
        const database = isolatedName('bench_rm');
        const admin = await mysql.createConnection(urls.mysqlUrl);
        await admin.query(`CREATE DATABASE \`${database}\``);
        const url = new URL(urls.mysqlUrl);
        url.pathname = `/${database}`;
        const store = await MysqlReadModelStore.open({ url: url.toString() });
        return {
          store,
          async drop() {
            await store.close();
            await admin.query(`DROP DATABASE IF EXISTS \`${database}\``);
            await admin.end();
          },
        };
      },
    },
    {
      name: 'Mongo',
      serves: ['mongo'],
      // mongo-java-server (the test server) applies a few thousand writes a second: a million
      // events would take hours, so Mongo rebuilds its own models on a slice of the workload.
      only: { maxEvents: 100_000 },
      async open() {
        const database = isolatedName('bench_rm');
        const store = await MongoReadModelStore.connect(urls.mongoUrl, database);
        return {
          store,
          async drop() {
            const client = await new MongoClient(urls.mongoUrl).connect();
            await client.db(database).dropDatabase();
            await client.close();
            await store.close();
          },
        };
      },
    },
  ];
}

/** One transaction per event: what a projector without batching does. */
async function naiveRebuild(
  projection: ProjectionDefinition,
  store: ReadModelStore,
  history: RecordedHistory,
): Promise<void> {
  await store.prepare(projection, 'rebuild');
  let from = 0;
  for (const event of history.events) {
    const changes = projection.project(event).map((change) => ({ ...change, position: event.position }));
    if (!(await store.applyBatch(projection, 'rebuild', changes, from, event.position)))
      throw new Error('checkpoint moved under the naive projector');
    from = event.position;
  }
  await store.promoteRebuild(projection);
}

async function rebuild(
  projection: ProjectionDefinition,
  store: ReadModelStore,
  history: RecordedHistory,
): Promise<number> {
  const projector = new Projector({
    projection,
    source: history.asEventStore(),
    store,
    batchSize: BATCH_SIZE,
  });
  collectGarbage();
  const started = performance.now();
  await projector.rebuild();
  return (performance.now() - started) / 1000;
}

export default {
  title: 'Projections: rebuild of the read models from history, batched vs one transaction per event',
  async run(options: BenchOptions): Promise<BenchRow[]> {
    const total = options.quick ? 100_000 : 1_000_000;
    const naiveEvents = options.quick ? 1_000 : 4_000;
    const generated = performance.now();
    const histories = recordWorkload(total);
    const log = (line: string) => process.stderr.write(`${line}\n`);
    log(
      `workload: ${total.toLocaleString('en-US')} events (${histories.broker.events.length.toLocaleString('en-US')} broker, ${histories.b3.events.length.toLocaleString('en-US')} B3) generated in ${((performance.now() - generated) / 1000).toFixed(1)} s`,
    );
    const rows: BenchRow[] = [];
    // `--stores=Postgres,MySQL` runs some of the stores only.
    const only = listOption('stores');
    // `--models=trades,candles` rebuilds some of the read models only (and skips the naive runs).
    const models = listOption('models');
    for (const target of storesUnderTest().filter((t) => !only || only.includes(t.name))) {
      let opened: Awaited<ReturnType<StoreUnderTest['open']>>;
      try {
        opened = await target.open();
      } catch (error) {
        log(`${target.name}: skipped, ${error instanceof Error ? error.message : String(error)}`);
        continue;
      }
      try {
        const seconds = new Map<string, number>();
        const own = readModelProjections.filter((p) => target.serves.includes(p.store));
        const sliced = target.only
          ? {
              broker: histories.broker.first(
                Math.round(target.only.maxEvents * (options.quick ? 0.2 : 1) * 0.62),
              ),
              b3: histories.b3.first(Math.round(target.only.maxEvents * (options.quick ? 0.2 : 1) * 0.38)),
            }
          : histories;
        const rebuilt = (target.only ? own : readModelProjections).filter(
          (p) => !models || models.includes(p.name),
        );
        for (const projection of rebuilt) {
          const history = sliced[projection.source];
          const time = await rebuild(projection, opened.store, history);
          seconds.set(projection.name, time);
          log(
            `${target.name} ${projection.name}: ${history.events.length.toLocaleString('en-US')} events in ${time.toFixed(2)} s (${Math.round(history.events.length / time).toLocaleString('en-US')} events/s)`,
          );
        }
        // Its own read models, then all of them; each beside the naive projector on the same models.
        // As the live projectors run: all of the store's models at once, each following its source.
        if (models) {
          // As for a store's own models: source events ÷ the sum of the rebuild times.
          const sources = [...new Set(rebuilt.map((p) => p.source))];
          const events = sources.reduce((sum, source) => sum + sliced[source].events.length, 0);
          const time = rebuilt.reduce((sum, p) => sum + seconds.get(p.name)!, 0);
          log(
            `${target.name} ${models.join(', ')}: ${Math.round(events / time).toLocaleString('en-US')} events/s`,
          );
          continue;
        }
        if (target.serves.length < 3) {
          collectGarbage();
          const started = performance.now();
          await Promise.all(
            own.map((projection) => rebuild(projection, opened.store, sliced[projection.source])),
          );
          const wall = (performance.now() - started) / 1000;
          const events = [...new Set(own.map((p) => p.source))].reduce(
            (sum, source) => sum + sliced[source].events.length,
            0,
          );
          log(
            `${target.name} its read models rebuilt concurrently: ${events.toLocaleString('en-US')} events in ${wall.toFixed(2)} s`,
          );
          rows.push({
            name: `${target.name}: its read models, rebuilt concurrently (${events.toLocaleString('en-US')} events)`,
            value: Math.round(events / wall),
            unit: 'events/s',
          });
        }
        const groups: Array<[string, ProjectionDefinition[]]> = [
          ['its read models', own],
          ['every read model', [...readModelProjections]],
        ];
        if (target.serves.length === 3) groups.shift();
        if (target.only) groups.pop();
        for (const [label, projections] of groups) {
          const sources = [...new Set(projections.map((p) => p.source))];
          const events = sources.reduce((sum, source) => sum + sliced[source].events.length, 0);
          const batchedSeconds = projections.reduce((sum, p) => sum + seconds.get(p.name)!, 0);
          let naiveSeconds = 0;
          let naiveCount = 0;
          for (const source of sources) {
            const slice = sliced[source].first(naiveEvents);
            naiveCount += slice.events.length;
            collectGarbage();
            const started = performance.now();
            for (const projection of projections.filter((p) => p.source === source))
              await naiveRebuild(projection, opened.store, slice);
            naiveSeconds += (performance.now() - started) / 1000;
          }
          const batchedRate = events / batchedSeconds;
          const naiveRate = naiveCount / naiveSeconds;
          log(
            `${target.name} ${label} (${projections.map((p) => p.name).join(', ')}): batched ${Math.round(batchedRate).toLocaleString('en-US')} events/s over ${events.toLocaleString('en-US')} events; naive ${Math.round(naiveRate).toLocaleString('en-US')} events/s over the first ${naiveCount.toLocaleString('en-US')} (extrapolated)`,
          );
          rows.push(
            compared(
              `${target.name}: ${label} (${events.toLocaleString('en-US')} events)`,
              Math.round(batchedRate),
              'events/s',
              `naive, 1 tx/event (first ${naiveCount.toLocaleString('en-US')}, extrapolated)`,
              Math.round(naiveRate),
            ),
          );
        }
      } finally {
        await opened.drop();
      }
    }
    return rows;
  },
};
