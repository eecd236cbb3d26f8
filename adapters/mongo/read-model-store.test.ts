import { Collection, Db, MongoClient } from 'mongodb';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { isolatedName, testUrls } from '../../infra/test-infra/isolation.ts';
import type { Change } from '../../projections/model.ts';
import { accountsProjection, readModelStoreContract } from '../shared/read-model-store-contract.ts';
import { MongoReadModelStore } from './read-model-store.ts';

const url = testUrls().mongoUrl;
const client = await new MongoClient(url).connect();
const databases: string[] = [];
afterAll(async () => {
  for (const database of databases) await client.db(database).dropDatabase();
  await client.close();
});

readModelStoreContract('Mongo', {
  async create() {
    const database = isolatedName('rm');
    databases.push(database);
    const store = MongoReadModelStore.open({ client, database });
    // A second handle with its own connection, as a second projector process would have.
    return { store, reopen: () => MongoReadModelStore.connect(url, database) };
  },
});

describe('Mongo store: documents carry the last applied position', () => {
  const open = async () => {
    const database = isolatedName('rm');
    databases.push(database);
    const store = MongoReadModelStore.open({ client, database });
    const projection = accountsProjection();
    await store.prepare(projection, 'live');
    const [balances, ledger] = projection.tables.map((table) => table.name) as [string, string];
    return { store, projection, balances, ledger, db: client.db(database) };
  };

  it('applies the events a crashed batch already wrote once, when the batch runs again wider', async () => {
    const { store, projection, balances, db } = await open();
    const deposit = (position: number, amount: number): Change => ({
      kind: 'upsert',
      table: balances,
      key: { account: 'a' },
      insert: { first_seen: new Date(position * 1000) },
      set: { last_position: position },
      add: { balance: amount, deposits: 1 },
      min: { smallest: amount },
      position,
    });
    const close = (position: number): Change => ({
      kind: 'delete',
      table: balances,
      key: { account: 'a' },
      position,
    });
    const history = [deposit(1, 10), deposit(2, 20), close(3), deposit(4, 40), deposit(5, 50)];
    expect(await store.applyBatch(projection, 'live', history.slice(0, 4), 0, 4)).toBe(true);
    // The process died after its writes, before the checkpoint moved: the checkpoint is back at 0.
    await db
      .collection<{ _id: string }>('checkpoints')
      .updateOne({ _id: `${projection.name}:live` }, { $set: { position: 0 } });
    expect(await store.applyBatch(projection, 'live', history, 0, 5)).toBe(true);
    const [row] = await store.find(projection, balances);
    expect(row).toMatchObject({ balance: 90, deposits: 2, smallest: 40, last_position: 5 });
    expect(row!.first_seen).toEqual(new Date(4000));
  });

  it('applies two changes of one event to one document, and treats a null as absent', async () => {
    const { store, projection, balances } = await open();
    const changes: Change[] = [
      { kind: 'upsert', table: balances, key: { account: 'a' }, add: { balance: 5 }, position: 1 },
      { kind: 'upsert', table: balances, key: { account: 'a' }, add: { balance: 7 }, position: 1 },
      {
        kind: 'upsert',
        table: balances,
        key: { account: 'b' },
        set: { balance: 3, tags: ['x'] },
        position: 1,
      },
      {
        kind: 'upsert',
        table: balances,
        key: { account: 'b' },
        set: { balance: null, tags: null },
        position: 2,
      },
      {
        kind: 'upsert',
        table: balances,
        key: { account: 'b' },
        add: { balance: 4 },
        min: { smallest: 9 },
        position: 3,
      },
    ];
    expect(await store.applyBatch(projection, 'live', changes, 0, 3)).toBe(true);
    const rows = await store.find(projection, balances);
    expect(rows.map((row) => [row.account, row.balance, row.smallest, row.tags])).toEqual([
      ['a', 12, null, null],
      ['b', 4, 9, null],
    ]);
    expect(await store.find(projection, balances, { where: { tags: null }, limit: 0 })).toEqual([]);
    expect((await store.find(projection, balances, { where: { largest: null } })).length).toBe(2);
  });

  it('recovers from a crash half-way through a promote by following again', async () => {
    const { store, projection, balances, ledger } = await open();
    const deposit = (position: number): Change[] => [
      { kind: 'upsert', table: balances, key: { account: 'a' }, add: { balance: 1 }, position },
      { kind: 'upsert', table: ledger, key: { account: 'a', position }, set: { amount: 1 }, position },
    ];
    expect(await store.applyBatch(projection, 'live', [1, 2, 3].flatMap(deposit), 0, 3)).toBe(true);
    await store.prepare(projection, 'rebuild');
    expect(await store.applyBatch(projection, 'rebuild', [1, 2].flatMap(deposit), 0, 2)).toBe(true);
    // The process dies after renaming the first table (balances, at 2) over the live one (at 3).
    const renameCollection = Db.prototype.renameCollection;
    let renames = 0;
    vi.spyOn(Db.prototype, 'renameCollection').mockImplementation(async function (
      this: Db,
      ...args: Parameters<Db['renameCollection']>
    ) {
      if (++renames === 2) throw new Error('killed mid-promote');
      return renameCollection.apply(this, args);
    });
    await expect(store.promoteRebuild(projection)).rejects.toThrow('killed mid-promote');
    vi.restoreAllMocks();
    const from = await store.checkpoint(projection.name, 'live');
    expect(from).toBe(2);
    expect(await store.applyBatch(projection, 'live', [3].flatMap(deposit), from, 3)).toBe(true);
    expect((await store.find(projection, balances))[0]!.balance).toBe(3);
    expect((await store.find(projection, ledger)).map((row) => row.position)).toEqual([1, 2, 3]);
  });

  it('makes a batch that began before a rebuild was promoted lose its checkpoint race', async () => {
    const { store, projection, balances } = await open();
    const change: Change = { kind: 'upsert', table: balances, key: { account: 'a' }, add: { balance: 1 } };
    expect(await store.applyBatch(projection, 'live', [{ ...change, position: 1 }], 0, 1)).toBe(true);
    await store.prepare(projection, 'rebuild');
    expect(await store.applyBatch(projection, 'rebuild', [{ ...change, position: 1 }], 0, 1)).toBe(true);
    // A live instance checks the checkpoint (1), then the rebuild (also at 1) is swapped in under it.
    const bulkWrite = Collection.prototype.bulkWrite;
    vi.spyOn(Collection.prototype, 'bulkWrite').mockImplementationOnce(async function (
      this: Collection,
      ...args: Parameters<Collection['bulkWrite']>
    ) {
      await store.promoteRebuild(projection);
      return bulkWrite.apply(this, args);
    });
    expect(await store.applyBatch(projection, 'live', [{ ...change, position: 2 }], 1, 2)).toBe(false);
    vi.restoreAllMocks();
    expect(await store.checkpoint(projection.name, 'live')).toBe(1);
    expect(await store.checkpoint(projection.name, 'rebuild')).toBe(0);
    expect(await store.builtVersion(projection.name)).toBe(projection.version);
    // Its projector starts again from the checkpoint: the event it wrote into the swapped-in
    // collection is not applied twice.
    expect(await store.applyBatch(projection, 'live', [{ ...change, position: 2 }], 1, 2)).toBe(true);
    expect((await store.find(projection, balances))[0]!.balance).toBe(2);
  });
});
