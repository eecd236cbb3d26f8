import { Collection, type CommandStartedEvent, Db, type Document, MongoClient } from 'mongodb';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { isolatedName, testUrls } from '../../infra/test-infra/isolation.ts';
import type { Change } from '../../projections/model.ts';
import { Projector, type RebuildProgress } from '../../projections/projector.ts';
import { brokerAuditProjection } from '../../projections/read-models/audit.ts';
import { LATEST_QUOTES, QUOTES, quotesProjection } from '../../projections/read-models/quotes.ts';
import { recorded } from '../../projections/read-models/testing.ts';
import { MemoryEventStore } from '../memory/event-store.ts';
import {
  accountEvent,
  accountsProjection,
  readModelStoreContract,
} from '../shared/read-model-store-contract.ts';
import { MongoReadModelStore } from './read-model-store.ts';

const url = testUrls().mongoUrl;
const client = await new MongoClient(url).connect();
const databases: string[] = [];
afterAll(async () => {
  for (const database of databases) await client.db(database).dropDatabase();
  await client.close();
});

readModelStoreContract('Mongo', {
  shared: true,
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

describe('Mongo store: the quote history and audit timeline are written by _id, whatever their size', () => {
  // mongo-java-server implements no secondary index: a filter naming anything besides `_id` scans
  // the collection. What is asserted is what is sent, never how long it takes.
  const monitored = async () => {
    const database = isolatedName('rm');
    databases.push(database);
    const watched = await new MongoClient(url, { monitorCommands: true }).connect();
    const commands: CommandStartedEvent[] = [];
    watched.on('commandStarted', (event) => commands.push(event));
    const store = MongoReadModelStore.open({ client: watched, database, ownsClient: true });
    afterAll(() => store.close());
    return { store, commands, db: client.db(database) };
  };
  const quotes = (count: number) =>
    Array.from({ length: count }, (_, i) =>
      recorded(`quotes-${i % 2 === 0 ? 'PETR4' : 'VALE3'}`, 'QuoteReceived', {
        symbol: i % 2 === 0 ? 'PETR4' : 'VALE3',
        bid: 3_240 + i,
        ask: 3_260 + i,
        bidSize: 100,
        askSize: 200,
        last: i % 3 === 0 ? null : 3_250,
        volume: 5_000 + i,
        source: 'b3-engine',
        at: 1_795_000_000_000 + i,
      }),
    );
  const changesOf = (events: ReturnType<typeof quotes>) =>
    events.flatMap((event) =>
      quotesProjection.project(event).map((change) => ({ ...change, position: event.position })),
    );
  /** Each command of the store's writes, as `<name> <collection>` and the filters it sends. */
  const written = (commands: CommandStartedEvent[]) =>
    commands
      .filter((event) => ['insert', 'update', 'delete'].includes(event.commandName))
      .map((event) => ({
        command: `${event.commandName} ${event.command[event.commandName]}`,
        filters: ((event.command.updates ?? event.command.deletes ?? []) as Document[]).map((s) => s.q),
      }));

  it('inserts quotes, updates only the latest quote per symbol, and sends the same commands at any size', async () => {
    const { store, commands, db } = await monitored();
    await store.prepare(quotesProjection, 'live');
    let from = 0;
    const apply = async (events: ReturnType<typeof quotes>) => {
      const to = events.at(-1)!.position;
      expect(await store.applyBatch(quotesProjection, 'live', changesOf(events), from, to)).toBe(true);
      from = to;
    };
    await apply(quotes(1)); // the first batch creates the checkpoint's document and the collections
    commands.length = 0;
    await apply(quotes(10));
    const small = written(commands);
    await apply(quotes(2_000));
    commands.length = 0;
    await apply(quotes(10));
    const large = written(commands);

    expect(await db.collection(QUOTES).countDocuments()).toBe(2_021);
    expect(large.map((write) => write.command)).toEqual(small.map((write) => write.command));
    expect(large.map((write) => write.command)).toEqual([
      `insert ${QUOTES}`,
      `update ${LATEST_QUOTES}`,
      'update checkpoints',
    ]);
    // The latest quotes, one document per symbol: made sure of by `_id`, then updated under their
    // position guard (a filter beside `_id`, so a scan of those few documents on this server).
    for (const filter of large[1]!.filters) expect(Object.keys(filter)[0]).toBe('_id');

    commands.length = 0;
    const [latest] = await store.find(quotesProjection, LATEST_QUOTES, { where: { symbol: 'PETR4' } });
    expect(latest).toMatchObject({ symbol: 'PETR4', volume: 5_008 });
    const [read] = commands.filter((event) => event.commandName === 'find');
    expect(read!.command.filter).toEqual({ _id: 'PETR4' });
  });

  it('treats a quote inserted twice as applied once, when a batch runs again after a crash', async () => {
    const { store, db } = await monitored();
    await store.prepare(quotesProjection, 'live');
    const events = quotes(20);
    const to = events.at(-1)!.position;
    expect(await store.applyBatch(quotesProjection, 'live', changesOf(events.slice(0, 12)), 0, to)).toBe(
      true,
    );
    const before = await store.find(quotesProjection, QUOTES);
    // The process died after its writes, before the checkpoint moved: the checkpoint is back at 0.
    await db
      .collection<{ _id: string }>('checkpoints')
      .updateOne({ _id: `${quotesProjection.name}:live` }, { $set: { position: 0 } });
    expect(await store.applyBatch(quotesProjection, 'live', changesOf(events), 0, to)).toBe(true);
    const after = await store.find(quotesProjection, QUOTES);
    expect(after).toHaveLength(20);
    const key = (row: Document) => `${row.symbol}:${row.sequence}`;
    expect(after.filter((row) => before.some((old) => key(old) === key(row)))).toEqual(before);
    expect(after.filter((row) => row.last === null)).toHaveLength(7);
    const [latest] = await store.find(quotesProjection, LATEST_QUOTES, { where: { symbol: 'VALE3' } });
    expect(latest).toMatchObject({
      sequence: events.at(-1)!.version,
      bid: (events.at(-1)!.data as { bid: number }).bid,
    });
  });

  it('inserts the audit timeline, one document per event', async () => {
    const { store, commands } = await monitored();
    await store.prepare(brokerAuditProjection, 'live');
    const events = quotes(30);
    const changes = events.flatMap((event) =>
      brokerAuditProjection.project(event).map((change) => ({ ...change, position: event.position })),
    );
    commands.length = 0;
    expect(await store.applyBatch(brokerAuditProjection, 'live', changes, 0, events.at(-1)!.position)).toBe(
      true,
    );
    expect(written(commands).map((write) => write.command)).toEqual([
      'insert audit_events_broker',
      'update checkpoints',
    ]);
    expect(await store.find(brokerAuditProjection, 'audit_events_broker')).toHaveLength(30);
  });
});

describe('Mongo store: a rebuild reports its progress', () => {
  it('reports each page written, not only the end, while the rebuilt collections fill', async () => {
    const database = isolatedName('rm');
    databases.push(database);
    const store = MongoReadModelStore.open({ client, database });
    const projection = accountsProjection();
    const source = new MemoryEventStore();
    // 1,200 events, 2,400 changes: one default window of 20,000 changes would hold them all.
    for (let i = 0; i < 12; i++)
      await source.append(
        `wallet-${i}`,
        Array.from({ length: 100 }, () => accountEvent('Deposited', { account: `a${i}`, amount: 1 })),
      );
    const projector = new Projector({ projection, source, store, batchSize: 250 });
    const reports: RebuildProgress[] = [];
    await projector.rebuild((progress) => reports.push(progress));
    // The first report is the start, the last one the promotion; in between, one per page written
    // (before, one window held the whole history: 0 until the end).
    const written = [0, 250, 500, 750, 1_000, 1_200, 1_200];
    expect(reports.map((progress) => progress.position)).toEqual(written);
    expect(reports.map((progress) => progress.events)).toEqual(written);
    expect(reports.every((progress) => progress.head === 1_200)).toBe(true);
    expect(await store.checkpoint(projection.name, 'live')).toBe(1_200);
  });
});
