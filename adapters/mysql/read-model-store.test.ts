import mysql from 'mysql2/promise';
import { afterAll, describe, expect, it } from 'vitest';
import { isolatedName, testUrls } from '../../infra/test-infra/isolation.ts';
import type { Change, ProjectionDefinition } from '../../projections/model.ts';
import { accountsProjection, readModelStoreContract } from '../shared/read-model-store-contract.ts';
import { MysqlReadModelStore } from './read-model-store.ts';

const server = testUrls().mysqlUrl;
const admin = await mysql.createConnection(server);
const databases: string[] = [];
const stores: MysqlReadModelStore[] = [];
afterAll(async () => {
  for (const store of stores) await store.close();
  for (const database of databases) await admin.query(`DROP DATABASE IF EXISTS \`${database}\``);
  await admin.end();
});

/** A fresh database on the test server, and the URL of a store on it. */
async function freshDatabase(): Promise<string> {
  const database = isolatedName('rm');
  databases.push(database);
  await admin.query(`CREATE DATABASE \`${database}\``);
  const url = new URL(server);
  url.pathname = `/${database}`;
  return url.toString();
}

async function openStore(url: string): Promise<MysqlReadModelStore> {
  const store = await MysqlReadModelStore.open({ url });
  stores.push(store);
  return store;
}

readModelStoreContract('MySQL', {
  shared: true,
  async create() {
    const url = await freshDatabase();
    const store = await MysqlReadModelStore.open({ url });
    return { store, reopen: () => MysqlReadModelStore.open({ url }) };
  },
});

describe('MySQL read-model store', () => {
  it('applies nothing of a batch whose transaction the server ends mid-way (a deadlock), so the retry applies it once', async () => {
    const url = await freshDatabase();
    const store = await openStore(url);
    const projection = accountsProjection();
    await store.prepare(projection, 'live');
    const [balances, ledger] = projection.tables.map((table) => `\`${table.name}\``) as [string, string];
    const at = new Date('2026-11-28T10:00:00Z');
    const changes: Change[] = [
      {
        kind: 'upsert',
        table: projection.tables[0]!.name,
        key: { account: 'a' },
        insert: { first_seen: at },
        set: { last_position: 1, active: true, tags: null },
        add: { balance: 5, deposits: 1 },
        max: { largest: 5 },
        min: { smallest: 5 },
      },
      {
        kind: 'upsert',
        table: projection.tables[1]!.name,
        key: { account: 'a', position: 1 },
        set: { amount: 5, recorded_at: at },
      },
    ];
    // Another transaction holds the batch's rows, and has written far more than the batch will, so
    // InnoDB makes the batch the deadlock's victim.
    const other = await mysql.createConnection(url);
    await other.query('START TRANSACTION');
    await other.query(
      `INSERT INTO ${balances} (account, balance, deposits, largest, smallest, first_seen, last_position, active)
       VALUES ${Array.from({ length: 200 }, (_, index) => `('other-${index}', 0, 0, 0, 0, NOW(), 0, 1)`).join(', ')}, ('a', 0, 0, 0, 0, NOW(), 0, 1)`,
    );
    await other.query(
      `INSERT INTO ${ledger} (account, position, amount, recorded_at) VALUES ('a', 1, 0, NOW())`,
    );
    const applying = store.applyBatch(projection, 'live', changes, 0, 1);
    applying.catch(() => {});
    // The batch has moved its checkpoint and waits on the rows: the other now waits on the checkpoint.
    for (let waited = 0; ; waited += 20) {
      const [waiting] = await admin.query<mysql.RowDataPacket[]>(
        `SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE state = 'Update' AND info LIKE 'INSERT INTO ${balances}%'`,
      );
      if (Number(waiting[0]!.n) > 0) break;
      if (waited > 10_000) {
        await other.query('ROLLBACK');
        throw new Error('the batch never waited on the rows');
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await other.query(`UPDATE \`${projection.name}__checkpoint\` SET position = position WHERE id = 1`);
    // The statement queued behind the victim waits on the other's ledger row until it ends.
    await other.query('ROLLBACK');
    await other.end();
    await expect(applying).rejects.toMatchObject({ code: 'ER_LOCK_DEADLOCK' });

    const count = async (table: string) =>
      Number(
        (
          await admin.query<mysql.RowDataPacket[]>(
            `SELECT COUNT(*) AS n FROM \`${new URL(url).pathname.slice(1)}\`.${table}`,
          )
        )[0][0]!.n,
      );
    expect([await count(balances), await count(ledger)]).toEqual([0, 0]);
    expect(await store.checkpoint(projection.name, 'live')).toBe(0);

    expect(await store.applyBatch(projection, 'live', changes, 0, 1)).toBe(true);
    expect(await store.find(projection, projection.tables[0]!.name, {})).toMatchObject([
      { account: 'a', balance: 5, deposits: 1 },
    ]);
    expect(await count(ledger)).toBe(1);
  });

  const kinds: ProjectionDefinition = {
    name: 'kinds',
    version: 1,
    source: 'broker',
    store: 'mysql',
    tables: [
      {
        name: 'kinds_rows',
        columns: {
          id: { type: 'text' },
          flag: { type: 'boolean' },
          at: { type: 'timestamp' },
          document: { type: 'json', nullable: true },
          note: { type: 'text', nullable: true },
          count: { type: 'int' },
        },
        primaryKey: ['id'],
        indexes: [['flag', 'at']],
      },
    ],
    project: () => [],
  };

  it('round-trips every column type, with case- and space-sensitive keys', async () => {
    const store = await openStore(await freshDatabase());
    await store.prepare(kinds, 'live');
    const at = new Date('2024-03-01T12:34:56.789Z');
    const rows = [
      { id: 'A', flag: false, at, document: 'just a string', note: 'x'.repeat(5000), count: -3 },
      { id: 'a', flag: true, at, document: { nested: [1, 'two', null] }, note: null, count: 0 },
      { id: 'a ', flag: true, at, document: null, note: 'ünïcødé 🚀', count: 2_000_000_000 },
    ];
    const applied = await store.applyBatch(
      kinds,
      'live',
      rows.map(({ id, ...set }) => ({ kind: 'upsert', table: 'kinds_rows', key: { id }, set })),
      0,
      3,
    );
    expect(applied).toBe(true);
    expect(await store.find(kinds, 'kinds_rows')).toEqual(rows);
    expect(
      await store.find(kinds, 'kinds_rows', { where: { document: { nested: [1, 'two', null] } } }),
    ).toEqual([rows[1]]);
    expect(await store.find(kinds, 'kinds_rows', { where: { flag: true, note: null } })).toEqual([rows[1]]);
  });

  it('moves the checkpoint by compare-and-set even when it stays where it was', async () => {
    const store = await openStore(await freshDatabase());
    await store.prepare(kinds, 'live');
    expect(await store.applyBatch(kinds, 'live', [], 0, 0)).toBe(true);
    expect(await store.applyBatch(kinds, 'live', [], 0, 0)).toBe(true);
    expect(await store.applyBatch(kinds, 'live', [], 1, 2)).toBe(false);
    expect(await store.checkpoint(kinds.name, 'live')).toBe(0);
    expect(await store.builtVersion(kinds.name)).toBe(1);
    expect(await store.builtVersion('never_built')).toBeUndefined();
    expect(await store.checkpoint('never_built', 'rebuild')).toBe(0);
  });

  it('prepares from several processes at once', async () => {
    const url = await freshDatabase();
    const handles = await Promise.all([openStore(url), openStore(url), openStore(url)]);
    const projection = accountsProjection();
    await Promise.all(
      handles.flatMap((store) => [store.prepare(projection, 'live'), store.prepare(projection, 'live')]),
    );
    expect(await handles[0]!.checkpoint(projection.name, 'live')).toBe(0);
    await Promise.all(handles.map((store) => store.prepare(projection, 'rebuild')));
    await handles[1]!.promoteRebuild(projection);
    expect(await handles[2]!.builtVersion(projection.name)).toBe(1);
  });

  it('writes a large batch in a few multi-row statements', async () => {
    const store = await openStore(await freshDatabase());
    const projection = accountsProjection();
    await store.prepare(projection, 'live');
    const [balances, ledger] = projection.tables.map((table) => table.name) as [string, string];
    const changes: Change[] = Array.from({ length: 20_000 }, (_, i): Change[] => [
      {
        kind: 'upsert',
        table: balances,
        key: { account: `acc${i % 500}` },
        add: { balance: 1, deposits: 1 },
        max: { largest: i },
        min: { smallest: i },
        set: { tags: { i }, active: true, last_position: i + 1 },
      },
      {
        kind: 'upsert',
        table: ledger,
        key: { account: `acc${i % 500}`, position: i + 1 },
        set: { amount: i, recorded_at: new Date(1_700_000_000_000 + i) },
      },
    ]).flat();
    const started = performance.now();
    expect(await store.applyBatch(projection, 'live', changes, 0, 20_000)).toBe(true);
    const seconds = (performance.now() - started) / 1000;
    const rows = await store.find(projection, balances, { where: { account: 'acc7' } });
    expect(rows[0]).toMatchObject({ balance: 40, deposits: 40, smallest: 7, largest: 19_507 });
    expect(await store.find(projection, ledger, { limit: 3, orderBy: [['position', 'desc']] })).toHaveLength(
      3,
    );
    expect(seconds).toBeLessThan(10);
  });
});
