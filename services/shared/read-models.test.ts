/**
 * The read models on the real stores (PGlite, Postgres, MariaDB, Mongo wire): after a random
 * trading workload of real domain events, followed live, every table equals a rebuild from
 * scratch row for row, and equals the pure projection folded in memory; the read side pages
 * through it; and the state of an aggregate at version N equals what the read model showed at N.
 */
import { MongoClient } from 'mongodb';
import mysql from 'mysql2/promise';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { MemoryEventStore } from '../../adapters/memory/event-store.ts';
import { MongoReadModelStore } from '../../adapters/mongo/read-model-store.ts';
import { MysqlReadModelStore } from '../../adapters/mysql/read-model-store.ts';
import { pgliteClient } from '../../adapters/pglite/client.ts';
import { pgClient } from '../../adapters/postgres/client.ts';
import { SqlReadModelStore } from '../../adapters/postgres/read-model-store.ts';
import { b3EventDefinitions } from '../../domain/b3/book-events.ts';
import { quoteEventDefinitions } from '../../domain/b3/quote-events.ts';
import { brokerEvents } from '../../domain/broker/events.ts';
import type { WalletEvent } from '../../domain/broker/wallet/events.ts';
import { initialWallet, evolve as walletEvolve } from '../../domain/broker/wallet/wallet.ts';
import { loadAggregate } from '../../domain/shared/aggregate.ts';
import { EventSchemas } from '../../domain/shared/event-schemas.ts';
import type { EventStore } from '../../domain/shared/event-store.ts';
import { isolatedName, testUrls } from '../../infra/test-infra/isolation.ts';
import type { Row } from '../../projections/model.ts';
import { readModelProjections } from '../../projections/read-models/index.ts';
import { createReadModels, type ReadModels } from '../../projections/read-models/queries.ts';
import { MemoryTables } from '../../projections/read-models/testing.ts';
import {
  appendWorkload,
  tradingWorkload,
  type WorkloadEvent,
} from '../../projections/read-models/workload.ts';
import type { ReadModelStore } from '../../projections/store.ts';
import { projectionsReadiness, startProjections } from './read-models.ts';

const urls = testUrls();
const cleanups: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
});

const stores: Record<string, () => Promise<ReadModelStore>> = {
  async PGlite() {
    const client = await pgliteClient();
    cleanups.push(() => client.close());
    return SqlReadModelStore.open({ client, schema: 'readmodels', kind: 'pglite' });
  },
  async Postgres() {
    const client = pgClient(urls.databaseUrl);
    const schema = isolatedName('rm');
    cleanups.push(async () => {
      await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await client.close();
    });
    return SqlReadModelStore.open({ client, schema });
  },
  async MariaDB() {
    const database = isolatedName('rm');
    const admin = await mysql.createConnection(urls.mysqlUrl);
    await admin.query(`CREATE DATABASE \`${database}\``);
    const url = new URL(urls.mysqlUrl);
    url.pathname = `/${database}`;
    const store = await MysqlReadModelStore.open({ url: url.toString() });
    cleanups.push(async () => {
      await store.close();
      await admin.query(`DROP DATABASE IF EXISTS \`${database}\``);
      await admin.end();
    });
    return store;
  },
  async Mongo() {
    const database = isolatedName('rm');
    const store = await MongoReadModelStore.connect(urls.mongoUrl, database);
    cleanups.push(async () => {
      const client = await new MongoClient(urls.mongoUrl).connect();
      await client.db(database).dropDatabase();
      await client.close();
      await store.close();
    });
    return store;
  },
};

async function allRows(store: ReadModelStore): Promise<Record<string, Row[]>> {
  const result: Record<string, Row[]> = {};
  for (const projection of readModelProjections)
    for (const table of projection.tables) result[table.name] = await store.find(projection, table.name);
  return result;
}

/** The pure projections folded in memory: what every store must hold. */
const schemaVersions = new Map<string, number>(
  [...brokerEvents, ...b3EventDefinitions, ...quoteEventDefinitions].map((definition) => [
    definition.type,
    definition.version,
  ]),
);

function expectedRows(workload: WorkloadEvent[], positions: Map<string, number>): MemoryTables {
  const tables = new MemoryTables();
  const versions = new Map<string, number>();
  for (const item of workload) {
    const version = (versions.get(item.streamId) ?? -1) + 1;
    versions.set(item.streamId, version);
    const event = {
      ...item.event,
      streamId: item.streamId,
      version,
      position: positions.get(item.event.id)!,
      // Stamped as the store stamps it: the type's current schema version.
      metadata: { schemaVersion: schemaVersions.get(item.event.type) ?? 1, ...item.event.metadata },
      recordedAt: new Date(0),
    } as Parameters<(typeof readModelProjections)[number]['project']>[0];
    for (const projection of readModelProjections)
      if (projection.source === item.store) tables.apply(projection.project(event));
  }
  return tables;
}

async function until(condition: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`not caught up within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

for (const [name, open] of Object.entries(stores)) {
  describe(`read models on ${name}`, () => {
    it('live projection equals a rebuild from scratch, row for row, and the state at version N matches', async () => {
      const store = await open();
      const broker = new MemoryEventStore({ schemas: new EventSchemas(brokerEvents) });
      const b3 = new MemoryEventStore({
        schemas: new EventSchemas([...b3EventDefinitions, ...quoteEventDefinitions]),
      });
      const readModelStores = { mysql: store, postgres: store, mongo: store };
      const registry = await startProjections({
        eventStores: { broker, b3 },
        readModelStores,
        batchSize: 300,
      });
      const readModels = createReadModels(readModelStores);
      const seed = Math.floor(Math.random() * 1_000_000);
      const workload = [
        ...tradingWorkload({ seed, requests: 250, accounts: 6, symbols: ['PETR4', 'VALE3'] }),
      ];
      const caughtUp = async () =>
        (await registry.status()).every((status) => status.lagPositions === 0 && status.state === 'running');

      // Append in chunks while the projectors follow, and note what the read side shows on the way.
      const seen: Array<{
        accountId: string;
        version: number;
        cash: { available: number; reserved: number };
      }> = [];
      const accountId = workload
        .find((item) => item.streamId.startsWith('wallet-'))!
        .streamId.slice('wallet-'.length);
      for (let start = 0; start < workload.length; start += 700) {
        await appendWorkload({ broker, b3 }, workload.slice(start, start + 700));
        await until(caughtUp);
        const wallet = await readModels.wallet(accountId);
        if (wallet?.version != null) seen.push({ accountId, version: wallet.version, cash: wallet.cash });
      }

      const positions = new Map<string, number>();
      for (const source of [broker, b3] as EventStore[])
        for (const event of await source.readAll({ limit: 1_000_000 }))
          positions.set(event.id, event.position);
      const live = await allRows(store);
      const expected = expectedRows(workload, positions);
      for (const [table, rows] of Object.entries(live))
        expect(normalise(rows), `${name} ${table} equals the pure projection`).toEqual(
          normalise(expected.rows(table)),
        );
      expect(live.orders!.length).toBeGreaterThan(100);
      expect(live.trades!.length).toBeGreaterThan(10);
      // The catalogue: both symbols listed, repriced after the session, one halted, one resumed.
      expect(live.instruments!.length).toBe(2);

      // Asked twice, one pass runs: the second call joins the first, each model rebuilt once.
      const rebuilds = [...registry.projectors.values()].map((projector) => vi.spyOn(projector, 'rebuild'));
      // Progress comes page by page (300 events here), though the whole history is one window.
      const reported = new Map<string, number>();
      const first = registry.rebuild('all', (progress) =>
        reported.set(progress.projection, (reported.get(progress.projection) ?? 0) + 1),
      );
      const again = registry.rebuild('all');
      expect(again).toBe(first);
      await Promise.all([first, again]);
      for (const rebuild of rebuilds) expect(rebuild).toHaveBeenCalledTimes(1);
      const brokerPages = Math.ceil((await broker.headPosition()) / 300);
      expect(brokerPages).toBeGreaterThan(2);
      // The first report, one per page, the last.
      expect(reported.get('orders')).toBe(brokerPages + 2);
      expect(await allRows(store), `${name}: rebuild equals live`).toEqual(live);
      await registry.stop();

      // The state at version N, rebuilt from the stream, is what the read model showed at N.
      expect(seen.length).toBeGreaterThan(1);
      for (const { version, cash } of seen) {
        const loaded = await loadAggregate(
          broker,
          `wallet-${accountId}`,
          {
            initial: initialWallet,
            evolve: (state, event) => walletEvolve(state, event as unknown as WalletEvent),
          },
          { version },
        );
        expect(loaded.version).toBe(version);
        expect(loaded.state.cash).toEqual(cash);
      }

      await pagesThrough(readModels, live);
    });
  });
}

/**
 * Rows in a comparable form: instants as ISO strings, absent columns as null, object keys sorted
 * (jsonb reorders them). `recorded_at` is the store's clock, which the pure fold does not know.
 */
function normalise(rows: Row[]): string[] {
  const canonical = (value: unknown): unknown => {
    if (value instanceof Date) return value.toISOString();
    if (Array.isArray(value)) return value.map(canonical);
    if (value && typeof value === 'object')
      return Object.keys(value)
        .sort()
        .filter((key) => key !== 'recorded_at')
        .filter(
          (key) =>
            (value as Record<string, unknown>)[key] !== null &&
            (value as Record<string, unknown>)[key] !== undefined,
        )
        .map((key) => [key, canonical((value as Record<string, unknown>)[key])]);
    return value;
  };
  return rows.map((row) => JSON.stringify(canonical(row))).sort();
}

/** Keyset pages add up to the whole table, without repeats, newest first. */
async function pagesThrough(readModels: ReadModels, live: Record<string, Row[]>): Promise<void> {
  const ids: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await readModels.orders({ limit: 37, cursor });
    ids.push(...page.items.map((order) => order.orderId));
    cursor = page.nextCursor;
  } while (cursor);
  expect(new Set(ids).size).toBe(live.orders!.length);
  expect(ids.length).toBe(live.orders!.length);

  const order = live.orders!.find((row) => Number(row.filled_quantity) > 0)!;
  const detail = await readModels.order(String(order.order_id));
  expect(detail?.executions.length).toBeGreaterThan(0);
  expect(detail?.filledQuantity).toBe(
    detail?.executions.reduce((sum, execution) => sum + execution.quantity, 0),
  );

  const trades = await readModels.trades({ symbol: 'PETR4', limit: 5 });
  expect(trades.items.length).toBeGreaterThan(0);
  expect(trades.items.every((trade) => trade.symbol === 'PETR4')).toBe(true);
  const book = await readModels.book('PETR4', 5);
  expect(book.status).toBe('OPEN');
  expect(book.bids.length + book.asks.length).toBeGreaterThan(0);
  const candles = await readModels.candles('PETR4', '1m', new Date(0), new Date(Date.UTC(2030, 0)));
  expect(candles.reduce((sum, candle) => sum + candle.trades, 0)).toBe(
    live.trades!.filter((trade) => trade.symbol === 'PETR4').length,
  );
  expect((await readModels.quote('PETR4'))?.symbol).toBe('PETR4');

  // The catalogue by ticker, one to a page, and by status.
  const symbols: string[] = [];
  cursor = undefined;
  do {
    const page = await readModels.instruments({ limit: 1, cursor });
    symbols.push(...page.items.map((instrument) => instrument.symbol));
    cursor = page.nextCursor;
  } while (cursor);
  expect(symbols).toEqual(['PETR4', 'VALE3']);
  const halted = await readModels.instruments({ status: 'HALTED', limit: 10 });
  expect(halted).toEqual({
    items: [
      {
        symbol: 'PETR4',
        name: 'PETR4 workload',
        lotSize: 100,
        tickSize: 1,
        fractionalSymbol: 'PETR4F',
        referencePrice: Number(live.instruments!.find((row) => row.symbol === 'PETR4')!.reference_price),
        status: 'HALTED',
        haltReason: 'corporate event pending',
      },
    ],
  });
  expect((await readModels.instruments({ status: 'OPEN', limit: 10 })).items).toMatchObject([
    { symbol: 'VALE3', status: 'OPEN', haltReason: null },
  ]);
  const trace = await readModels.trace(
    String(trades.items[0] ? live.audit_events_broker![0]!.correlation_id : ''),
  );
  expect(trace.length).toBeGreaterThan(0);
}

describe('projectionsReadiness', () => {
  it('says why it cannot tell how far the read models are when their event store is out', async () => {
    const ready = projectionsReadiness({
      status: async () => {
        throw new Error('database "b3" is not currently accepting connections');
      },
    });
    await expect(ready()).rejects.toThrow(
      'cannot tell how far the read models are: database "b3" is not currently accepting connections',
    );
  });
});
