/**
 * A live projector against a real store that goes away for a few seconds (a TCP proxy in front of
 * MariaDB or Mongo, stopped and started again): it retries from its checkpoint by itself, says so
 * in its status and readiness meanwhile, applies every event exactly once, and its lag gauge keeps
 * growing while it applies nothing. An event the projection cannot apply still stops it for good.
 */
import { randomUUID } from 'node:crypto';
import { MongoClient } from 'mongodb';
import mysql from 'mysql2/promise';
import { register } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryEventStore } from '../adapters/memory/event-store.ts';
import { MongoReadModelStore } from '../adapters/mongo/read-model-store.ts';
import { MysqlReadModelStore } from '../adapters/mysql/read-model-store.ts';
import { pgliteClient } from '../adapters/pglite/client.ts';
import { SqlReadModelStore } from '../adapters/postgres/read-model-store.ts';
import { accountsProjection } from '../adapters/shared/read-model-store-contract.ts';
import type { NewEvent } from '../domain/shared/event-store.ts';
import { isolatedName, testUrls } from '../infra/test-infra/isolation.ts';
import { TcpProxy } from '../infra/test-infra/tcp-proxy.ts';
import {
  projectionsReadiness,
  readModelStoresReadiness,
  startProjections,
} from '../services/shared/read-models.ts';
import type { ProjectionDefinition } from './model.ts';
import { Projector, type ProjectorStatus, RebuildStopped } from './projector.ts';
import type { ReadModelStore } from './store.ts';

const urls = testUrls();
const cleanups: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
});

const deposited = (account: string, amount: number): NewEvent => ({
  id: randomUUID(),
  type: 'Deposited',
  data: { account, amount },
  metadata: {
    correlationId: randomUUID(),
    causationId: randomUUID(),
    actor: 'test',
    occurredAt: new Date().toISOString(),
    schemaVersion: 1,
  },
});

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function target(url: string): { host: string; port: number } {
  const parsed = new URL(url);
  return { host: parsed.hostname, port: Number(parsed.port) };
}

/** A store reached through a proxy, and a second handle on the same storage that is not. */
const stores: Record<
  string,
  () => Promise<{ proxy: TcpProxy; store: ReadModelStore; direct: ReadModelStore }>
> = {
  async MariaDB() {
    const database = isolatedName('outage');
    const admin = await mysql.createConnection(urls.mysqlUrl);
    await admin.query(`CREATE DATABASE \`${database}\``);
    const url = new URL(urls.mysqlUrl);
    url.pathname = `/${database}`;
    const proxy = await TcpProxy.start(target(urls.mysqlUrl));
    const store = await MysqlReadModelStore.open({ url: proxy.rewrite(url.toString()) });
    const direct = await MysqlReadModelStore.open({ url: url.toString() });
    cleanups.push(async () => {
      await proxy.stop();
      await store.close().catch(() => {});
      await direct.close();
      await admin.query(`DROP DATABASE IF EXISTS \`${database}\``);
      await admin.end();
    });
    return { proxy, store, direct };
  },
  async Mongo() {
    const database = isolatedName('outage');
    const proxy = await TcpProxy.start(target(urls.mongoUrl));
    const viaProxy = new URL(proxy.rewrite(urls.mongoUrl));
    // Give up on an unreachable server in a second or two, not the driver's default 30 s.
    viaProxy.searchParams.set('serverSelectionTimeoutMS', '1500');
    viaProxy.searchParams.set('connectTimeoutMS', '1500');
    viaProxy.searchParams.set('directConnection', 'true');
    const store = await MongoReadModelStore.connect(viaProxy.toString(), database);
    const direct = await MongoReadModelStore.connect(urls.mongoUrl, database);
    cleanups.push(async () => {
      await proxy.stop();
      await store.close().catch(() => {});
      await direct.close();
      const client = await new MongoClient(urls.mongoUrl).connect();
      await client.db(database).dropDatabase();
      await client.close();
    });
    return { proxy, store, direct };
  },
};

function lagGauge(projection: string): Promise<number | undefined> {
  const gauge = register.getSingleMetric('tradecore_projection_lag_positions');
  return Promise.resolve(gauge?.get()).then(
    (metric) => metric?.values.find((value) => value.labels.projection === projection)?.value,
  );
}

describe.each(Object.keys(stores))('a live projector on %s through an outage', (kind) => {
  it('retries from its checkpoint, not ready meanwhile, and applies every event once', async () => {
    const { proxy, store, direct } = await stores[kind]!();
    const source = new MemoryEventStore();
    const projection = accountsProjection();
    const projector = new Projector({
      projection,
      source,
      store,
      batchSize: 5,
      retryDelayMs: 100,
      maxRetryDelayMs: 1_000,
      lagRefreshMs: 200,
    });
    cleanups.push(() => projector.stop());
    const ready = projectionsReadiness({ status: async () => [await projector.status()] });
    await projector.start();

    for (let index = 0; index < 10; index++)
      await source.append(`account-a${index % 3}`, [deposited(`a${index % 3}`, 100)]);
    await until('the first events applied', async () =>
      (await projector.status()).checkpoint === 10 ? true : undefined,
    );
    await ready();

    await proxy.stop();
    for (let index = 0; index < 20; index++)
      await source.append(`account-a${index % 3}`, [deposited(`a${index % 3}`, 1)]);
    const retrying = await until('the projector retrying', async () => {
      const status = await projector.status();
      return status.state === 'retrying' ? status : undefined;
    });
    expect(retrying.error).toBeTruthy();
    await expect(ready()).rejects.toThrow(new RegExp(`read model ${projection.name} retrying`));
    // Stuck at 10 while the head moves on to 35: the gauge follows, though nothing is applied
    // and nothing here asks for the status.
    for (let index = 0; index < 5; index++) await source.append('account-a9', [deposited('a9', 2)]);
    await until('the lag gauge at 25', async () =>
      (await lagGauge(projection.name)) === 25 ? true : undefined,
    );
    // A few seconds down, several attempts failed meanwhile.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    expect((await projector.status()).state).toBe('retrying');

    await proxy.start();
    const caughtUp = await until('the projector caught up', async () => {
      const status: ProjectorStatus = await projector.status();
      return status.state === 'running' && status.checkpoint === 35 ? status : undefined;
    });
    expect(caughtUp.error).toBeUndefined();
    await ready();
    await until('the lag gauge at 0', async () =>
      (await lagGauge(projection.name)) === 0 ? true : undefined,
    );

    const [balances, ledger] = projection.tables.map((table) => table.name);
    const rows = await direct.find(projection, balances!);
    expect(Object.fromEntries(rows.map((row) => [row.account, [row.balance, row.deposits]]))).toEqual({
      a0: [4 * 100 + 7, 11],
      a1: [3 * 100 + 7, 10],
      a2: [3 * 100 + 6, 9],
      a9: [10, 5],
    });
    expect(await direct.find(projection, ledger!)).toHaveLength(35);
    expect(await direct.checkpoint(projection.name, 'live')).toBe(35);
  }, 120_000);
});

describe('a live projector and an event it cannot apply', () => {
  it('stops for good, failed, naming it: the same event would fail again', async () => {
    const { store } = await stores.MariaDB!();
    const source = new MemoryEventStore();
    const accounts = accountsProjection();
    const projection: ProjectionDefinition = {
      ...accounts,
      project: (event) => {
        if (event.type === 'Poison') throw new Error(`cannot apply ${event.type}`);
        return accounts.project(event);
      },
    };
    const projector = new Projector({ projection, source, store, retryDelayMs: 50, maxRetryDelayMs: 100 });
    cleanups.push(() => projector.stop());
    const ready = projectionsReadiness({ status: async () => [await projector.status()] });
    await projector.start();
    await source.append('account-a', [deposited('a', 5)]);
    await source.append('account-a', [{ ...deposited('a', 5), type: 'Poison' }]);
    const failed = await until('the projector failed', async () => {
      const status = await projector.status();
      return status.state === 'failed' ? status : undefined;
    });
    expect(failed.error).toBe('cannot apply Poison');
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect((await projector.status()).state).toBe('failed');
    await expect(ready()).rejects.toThrow(`read model ${projection.name} failed: cannot apply Poison`);
  });
});

describe('a failed projector and a rebuild in another process', () => {
  it('follows again once the rebuilt tables are past the event that failed it (tradecore projections rebuild)', async () => {
    const { store, direct } = await stores.MariaDB!();
    const source = new MemoryEventStore();
    const accounts = accountsProjection();
    // What failed it (a bug since fixed, a row since removed) is gone by the time of the rebuild.
    let broken = true;
    const projection: ProjectionDefinition = {
      ...accounts,
      project: (event) => {
        if (broken && event.type === 'Poison') throw new Error(`cannot apply ${event.type}`);
        return event.type === 'Poison' ? [] : accounts.project(event);
      },
    };
    const projector = new Projector({ projection, source, store, lagRefreshMs: 100 });
    cleanups.push(() => projector.stop());
    await projector.start();
    await source.append('account-a', [deposited('a', 5)]);
    await source.append('account-a', [{ ...deposited('a', 5), type: 'Poison' }]);
    await source.append('account-a', [deposited('a', 7)]);
    await until('the projector failed', async () =>
      (await projector.status()).state === 'failed' ? true : undefined,
    );
    // Nothing moved its checkpoint: it stays failed, though it looks.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect((await projector.status()).state).toBe('failed');

    broken = false;
    // The CLI's: a projector of its own that does not follow, on the same store, rebuilt.
    const rebuilder = new Projector({ projection, source, store: direct });
    await rebuilder.rebuild();
    await rebuilder.stop();

    await source.append('account-a', [deposited('a', 11)]);
    const following = await until(
      'the projector following again',
      async () => {
        const status = await projector.status();
        return status.state === 'running' && status.checkpoint === 4 ? status : undefined;
      },
      20_000,
    );
    expect(following.error).toBeUndefined();
    const [balances] = projection.tables.map((table) => table.name);
    expect((await direct.find(projection, balances!)).map((row) => [row.account, row.balance])).toEqual([
      ['a', 23],
    ]);
  }, 60_000);
});

describe('a rebuild that fails', () => {
  it('leaves the live read model following, and says the rebuild failed', async () => {
    const { store, direct } = await stores.MariaDB!();
    const source = new MemoryEventStore();
    const accounts = accountsProjection();
    // Only the rebuild meets an event it cannot project (a bug in the new version, say).
    let rebuilding = false;
    const projection: ProjectionDefinition = {
      ...accounts,
      project: (event) => {
        if (rebuilding) throw new Error('cannot project this history');
        return accounts.project(event);
      },
    };
    const projector = new Projector({ projection, source, store });
    cleanups.push(() => projector.stop());
    await projector.start();
    await source.append('account-a', [deposited('a', 5)]);
    await projector.whenApplied(1);

    rebuilding = true;
    await expect(projector.rebuild()).rejects.toThrow('cannot project this history');
    rebuilding = false;
    const status = await projector.status();
    expect(status.state).toBe('running');
    expect(status.error).toBe('rebuild failed: cannot project this history');
    expect(status.rebuild).toBeUndefined();

    await source.append('account-a', [deposited('a', 7)]);
    await projector.whenApplied(2);
    const [balances] = projection.tables.map((table) => table.name);
    expect((await direct.find(projection, balances!)).map((row) => [row.account, row.balance])).toEqual([
      ['a', 12],
    ]);
  }, 60_000);
});

describe('stopping the projections while their store hangs', () => {
  it('gives up after the deadline, naming the projection cut', async () => {
    const { proxy, store } = await stores.Mongo!();
    const source = new MemoryEventStore();
    const projection: ProjectionDefinition = { ...accountsProjection(), store: 'mongo' };
    const logged: string[] = [];
    const logger = {
      info: () => {},
      warn: () => {},
      error: (_object: object, message: string) => void logged.push(message),
    };
    const registry = await startProjections({
      eventStores: { broker: source, b3: source },
      readModelStores: { mongo: store, mysql: store, postgres: store },
      projections: [projection],
      pacingMs: 0,
      stopDeadlineMs: 1_000,
      logger,
    });
    cleanups.push(() => registry.stop());
    await source.append('account-a', [deposited('a', 1)]);
    await until('the first event applied', async () =>
      (await registry.status())[0]!.checkpoint === 1 ? true : undefined,
    );
    // The server stops answering, with a batch on its way to it.
    proxy.stall();
    await source.append('account-a', [deposited('a', 2)]);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const started = Date.now();
    await registry.stop();
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(logged.join('\n')).toContain(`projections not stopped within 1000 ms, cut: ${projection.name}`);
  });
});

describe('the readiness of the read-model stores', () => {
  it('reads a store that hangs as down, naming it, within its deadline', async () => {
    const mongo = await stores.Mongo!();
    const maria = await stores.MariaDB!();
    const ready = readModelStoresReadiness(
      { mysql: maria.direct, postgres: maria.direct, mongo: mongo.store },
      500,
    );
    await ready();
    mongo.proxy.stall();
    const started = Date.now();
    await expect(ready()).rejects.toThrow('mongo: no answer within 500 ms');
    expect(Date.now() - started).toBeLessThan(2_000);
  });
});

describe('a live projector whose store stops answering mid-batch', () => {
  it('is reported stalled once its checkpoint has not moved for the bound while behind, and not ready', async () => {
    const { proxy, store } = await stores.Mongo!();
    const source = new MemoryEventStore();
    const projection: ProjectionDefinition = { ...accountsProjection(), store: 'mongo' };
    const logged: Array<{ level: string; message: string }> = [];
    const logger = {
      info: (_details: object, message: string) => void logged.push({ level: 'info', message }),
      warn: (_details: object, message: string) => void logged.push({ level: 'warn', message }),
      error: (_details: object, message: string) => void logged.push({ level: 'error', message }),
    };
    const projector = new Projector({
      projection,
      source,
      store,
      stallAfterMs: 500,
      lagRefreshMs: 100,
      logger,
    });
    // Stopped with the proxy's connections cut: a stalled batch never finishes on its own.
    cleanups.push(async () => {
      await proxy.stop();
      await projector.stop();
    });
    const ready = projectionsReadiness({ status: async () => [await projector.status()] });
    await projector.start();
    await source.append('account-a', [deposited('a', 1)]);
    await until('the first event applied', async () =>
      (await projector.status()).checkpoint === 1 ? true : undefined,
    );
    // Idle and caught up for longer than the bound: not stalled.
    await new Promise((resolve) => setTimeout(resolve, 700));
    expect(await projector.status()).toMatchObject({ state: 'running', lagPositions: 0 });
    expect((await projector.status()).stalledSeconds).toBeUndefined();
    await ready();

    proxy.stall();
    await source.append('account-a', [deposited('a', 2)]);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect((await projector.status()).state).toBe('running');
    const stalled = await until('the projector stalled', async () => {
      const status = await projector.status();
      return status.state === 'stalled' ? status : undefined;
    });
    expect(stalled).toMatchObject({ checkpoint: 1, head: 2, lagPositions: 1, stalledSeconds: 0 });
    await expect(ready()).rejects.toThrow(
      `read model ${projection.name} stalled: checkpoint 1 has not moved for 0 s, head at 2`,
    );
    // Said once in the log, however often the status is asked.
    await projector.status();
    expect(logged.filter(({ level }) => level === 'error')).toEqual([
      { level: 'error', message: 'projection stalled: its checkpoint has not moved while events wait' },
    ]);
    // The lag in time is how long the waiting event has waited, not the age of the last one
    // applied, which was idle before it.
    const [first, waiting] = await source.readAll();
    const lag = (await register.getSingleMetric('tradecore_projection_lag_seconds')!.get()).values.find(
      ({ labels }) => labels.projection === projection.name,
    )!.value;
    expect(lag).toBeGreaterThanOrEqual(0.4);
    expect(lag).toBeLessThanOrEqual((Date.now() - waiting!.recordedAt.getTime()) / 1000);
    expect(lag).toBeLessThan((Date.now() - first!.recordedAt.getTime()) / 1000 - 0.6);
  });
});

describe('the status of a stopped projector while its store hangs', () => {
  it('answers within seconds with the checkpoint last known, saying the store did not answer', async () => {
    const { proxy, store } = await stores.Mongo!();
    const source = new MemoryEventStore();
    const projection: ProjectionDefinition = { ...accountsProjection(), store: 'mongo' };
    // The CLI's: created without following, so its status asks the store for the checkpoint.
    const projector = new Projector({ projection, source, store });
    cleanups.push(() => projector.stop());
    await source.append('account-a', [deposited('a', 1)]);
    expect(await projector.status()).toMatchObject({ state: 'stopped', checkpoint: 0, head: 1 });
    proxy.stall();
    const started = Date.now();
    const status = await projector.status();
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(status).toMatchObject({
      state: 'stopped',
      checkpoint: 0,
      error: 'its store did not answer for its checkpoint: no answer within 2000 ms',
    });
  });
});

describe('stopping a projector in the middle of a rebuild', () => {
  it('abandons the rebuild, waits for it, and leaves the live read model as it was, with no error', async () => {
    const client = await pgliteClient();
    const store = await SqlReadModelStore.open({ client, schema: 'readmodels', kind: 'pglite' });
    cleanups.push(async () => {
      await store.close();
      await client.close();
    });
    const source = new MemoryEventStore();
    for (let page = 0; page < 20; page++)
      await source.append(
        `account-${page}`,
        Array.from({ length: 50 }, () => deposited(`a${page}`, 1)),
      );
    const errors: unknown[] = [];
    const logger = { info: () => {}, warn: () => {}, error: (...args: unknown[]) => errors.push(args) };
    const projection = accountsProjection();
    const projector = new Projector({ projection, source, store, logger, batchSize: 10, rebuildWindow: 10 });
    await projector.start();
    await projector.whenApplied(1_000);

    let stopping: Promise<void> | undefined;
    const rebuild = projector.rebuild((progress) => {
      if (progress.position > 100) stopping ??= projector.stop();
    });
    await expect(rebuild).rejects.toBeInstanceOf(RebuildStopped);
    await stopping;
    expect(errors).toEqual([]);
    expect((await projector.status()).state).toBe('stopped');
    const [balances] = projection.tables.map((table) => table.name);
    const rows = await store.find(projection, balances!);
    expect(rows).toHaveLength(20);
    expect(rows.every((row) => row.balance === 50)).toBe(true);
    // The abandoned rebuild never became the live model: its checkpoint is still the live one's.
    expect(await store.checkpoint(projection.name, 'live')).toBe(1_000);
  }, 60_000);
});
