/**
 * The one contract every read-model store passes (Postgres, PGlite, MySQL, Mongo), with the
 * projector runtime on top: each adapter's test file calls `readModelStoreContract`.
 */
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import type { NewEvent, RecordedEvent } from '../../domain/shared/event-store.ts';
import type { Change, FindOptions, ProjectionDefinition, Row } from '../../projections/model.ts';
import { Projector } from '../../projections/projector.ts';
import { type ReadModelStore, RebuildRunning } from '../../projections/store.ts';
import { MemoryEventStore } from '../memory/event-store.ts';
import { newEvent, waitFor } from './event-store-contract.ts';

export interface ReadModelStoreFactory {
  /** A store over fresh, empty storage; `reopen` gives a second handle on the same storage. */
  create(): Promise<{ store: ReadModelStore; reopen(): Promise<ReadModelStore> }>;
  /** A server several processes share (not an embedded PGlite): its rebuilds are claimed. */
  shared?: boolean;
}

/** A small projection exercising every kind of change: balances per account, and a ledger. */
export function accountsProjection(name = `accounts_${randomUUID().slice(0, 8)}`): ProjectionDefinition {
  const balances = `${name}_balances`;
  const ledger = `${name}_ledger`;
  return {
    name,
    version: 1,
    source: 'broker',
    store: 'postgres',
    tables: [
      {
        name: balances,
        columns: {
          account: { type: 'text' },
          balance: { type: 'bigint' },
          deposits: { type: 'int' },
          largest: { type: 'bigint' },
          smallest: { type: 'bigint' },
          first_seen: { type: 'timestamp' },
          last_position: { type: 'bigint' },
          tags: { type: 'json', nullable: true },
          active: { type: 'boolean' },
        },
        primaryKey: ['account'],
        indexes: [['balance']],
      },
      {
        name: ledger,
        columns: {
          account: { type: 'text' },
          position: { type: 'bigint' },
          amount: { type: 'bigint' },
          recorded_at: { type: 'timestamp' },
        },
        primaryKey: ['account', 'position'],
        indexes: [['recorded_at']],
        appendOnly: true,
      },
    ],
    project(event: RecordedEvent): Change[] {
      const data = event.data as { account: string; amount?: number; tags?: string[] };
      switch (event.type) {
        case 'Deposited':
          return [
            {
              kind: 'upsert',
              table: balances,
              key: { account: data.account },
              insert: { first_seen: event.recordedAt },
              set: { last_position: event.position, active: true, tags: data.tags ?? null },
              add: { balance: data.amount!, deposits: 1 },
              max: { largest: data.amount! },
              min: { smallest: data.amount! },
            },
            {
              kind: 'upsert',
              table: ledger,
              key: { account: data.account, position: event.position },
              set: { amount: data.amount!, recorded_at: event.recordedAt },
            },
          ];
        case 'Closed':
          return [{ kind: 'delete', table: balances, key: { account: data.account } }];
        default:
          return [];
      }
    },
  };
}

/** One append-only table with a column of every type, written by hand-made changes. */
export function tapeProjection(name = `tape_${randomUUID().slice(0, 8)}`): ProjectionDefinition {
  return {
    name,
    version: 1,
    source: 'broker',
    store: 'postgres',
    tables: [
      {
        name: `${name}_rows`,
        columns: {
          id: { type: 'text' },
          note: { type: 'text', nullable: true },
          amount: { type: 'bigint', nullable: true },
          flag: { type: 'boolean' },
          at: { type: 'timestamp' },
          details: { type: 'json', nullable: true },
        },
        primaryKey: ['id'],
        indexes: [['at']],
        appendOnly: true,
      },
    ],
    project: () => [],
  };
}

/** `count` rows of the accounts projection's ledger: row i at position i + 1, in `account(i)`. */
function ledgerRows(ledger: string, count: number, account: (i: number) => string): Change[] {
  return Array.from({ length: count }, (_, i) => ({
    kind: 'upsert' as const,
    table: ledger,
    key: { account: account(i), position: i + 1 },
    set: { amount: i, recorded_at: new Date(1_700_000_000_000 + i * 1000) },
  }));
}

let sequence = 0;
export function accountEvent(type: 'Deposited' | 'Closed', data: Record<string, unknown>): NewEvent {
  sequence += 1;
  return {
    id: randomUUID(),
    type,
    data,
    metadata: {
      correlationId: `c${sequence}`,
      causationId: `c${sequence}`,
      actor: 'contract-test',
      occurredAt: new Date().toISOString(),
    },
  };
}

/** What the balances table must hold after `events`, computed the obvious way. */
function expectedBalances(events: RecordedEvent[]): Row[] {
  const rows = new Map<string, Row>();
  for (const event of events) {
    const data = event.data as { account: string; amount: number; tags?: string[] };
    if (event.type === 'Closed') {
      rows.delete(data.account);
      continue;
    }
    const row = rows.get(data.account);
    rows.set(data.account, {
      account: data.account,
      balance: ((row?.balance as number) ?? 0) + data.amount,
      deposits: ((row?.deposits as number) ?? 0) + 1,
      largest: Math.max((row?.largest as number) ?? -Infinity, data.amount),
      smallest: Math.min((row?.smallest as number) ?? Infinity, data.amount),
      first_seen: (row?.first_seen as Date) ?? event.recordedAt,
      last_position: event.position,
      tags: data.tags ?? null,
      active: true,
    });
  }
  return [...rows.values()].sort((a, b) => String(a.account).localeCompare(String(b.account)));
}

const workload = fc.array(
  fc.oneof(
    {
      weight: 6,
      arbitrary: fc.record({
        type: fc.constant('Deposited' as const),
        account: fc.constantFrom('a', 'b', 'c', 'd', 'e'),
        amount: fc.integer({ min: 1, max: 1_000_000 }),
        tags: fc.option(fc.array(fc.constantFrom('x', 'y'), { maxLength: 2 }), { nil: undefined }),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        type: fc.constant('Closed' as const),
        account: fc.constantFrom('a', 'b', 'c', 'd', 'e'),
      }),
    },
  ),
  { minLength: 1, maxLength: 60 },
);

export function readModelStoreContract(name: string, factory: ReadModelStoreFactory): void {
  describe(`read-model store contract: ${name}`, () => {
    const opened: ReadModelStore[] = [];
    const open = async () => {
      const handle = await factory.create();
      opened.push(handle.store);
      return {
        store: handle.store,
        reopen: async () => {
          const store = await handle.reopen();
          opened.push(store);
          return store;
        },
      };
    };
    afterAll(async () => {
      for (const store of opened.reverse()) await store.close();
    });

    const rowsOf = async (store: ReadModelStore, projection: ProjectionDefinition) =>
      store.find(projection, projection.tables[0]!.name, { orderBy: [['account', 'asc']] });

    it('applies upserts, increments, max, min, insert-only columns and deletes, merged within a batch', async () => {
      const { store } = await open();
      const projection = accountsProjection();
      await store.prepare(projection, 'live');
      const source = new MemoryEventStore();
      await source.append('wallet-a', [
        accountEvent('Deposited', { account: 'a', amount: 500, tags: ['x'] }),
        accountEvent('Deposited', { account: 'a', amount: 200 }),
        accountEvent('Deposited', { account: 'b', amount: 7 }),
        accountEvent('Closed', { account: 'b' }),
        accountEvent('Deposited', { account: 'c', amount: 1 }),
        accountEvent('Closed', { account: 'c' }),
        accountEvent('Deposited', { account: 'c', amount: 3 }),
      ]);
      const events = await source.readAll();
      const applied = await store.applyBatch(
        projection,
        'live',
        events.flatMap((e) => projection.project(e)),
        0,
        events.at(-1)!.position,
      );
      expect(applied).toBe(true);
      expect(await rowsOf(store, projection)).toEqual(expectedBalances(events));
      expect(await store.checkpoint(projection.name, 'live')).toBe(7);
      const ledger = await store.find(projection, projection.tables[1]!.name, {
        where: { account: 'a' },
        orderBy: [['position', 'desc']],
      });
      expect(ledger.map((row) => [row.position, row.amount])).toEqual([
        [2, 200],
        [1, 500],
      ]);
    });

    it('refuses a batch whose starting checkpoint is stale, changing nothing', async () => {
      const { store } = await open();
      const projection = accountsProjection();
      await store.prepare(projection, 'live');
      const change: Change[] = [
        { kind: 'upsert', table: projection.tables[0]!.name, key: { account: 'a' }, add: { balance: 5 } },
      ];
      expect(await store.applyBatch(projection, 'live', change, 0, 10)).toBe(true);
      expect(await store.applyBatch(projection, 'live', change, 0, 12)).toBe(false);
      expect(await store.applyBatch(projection, 'live', change, 10, 12)).toBe(true);
      const [row] = await rowsOf(store, projection);
      expect(row!.balance).toBe(10);
      expect(await store.checkpoint(projection.name, 'live')).toBe(12);
    });

    it('pages with a keyset cursor in either direction', async () => {
      const { store } = await open();
      const projection = accountsProjection();
      await store.prepare(projection, 'live');
      const ledger = projection.tables[1]!.name;
      await store.applyBatch(
        projection,
        'live',
        ledgerRows(ledger, 25, (i) => (i % 2 ? 'odd' : 'even')),
        0,
        25,
      );
      const seen: number[] = [];
      let after: Row[string][] | undefined;
      for (;;) {
        const page = await store.find(projection, ledger, {
          where: { account: 'even' },
          orderBy: [
            ['recorded_at', 'desc'],
            ['position', 'desc'],
          ],
          limit: 4,
          after,
        });
        if (page.length === 0) break;
        seen.push(...page.map((row) => row.position as number));
        after = [page.at(-1)!.recorded_at ?? null, page.at(-1)!.position ?? null];
      }
      expect(seen).toEqual([25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1]);
    });

    it('finds the rows whose column holds one of several values', async () => {
      const { store } = await open();
      const projection = accountsProjection();
      await store.prepare(projection, 'live');
      const ledger = projection.tables[1]!.name;
      await store.applyBatch(
        projection,
        'live',
        ledgerRows(ledger, 12, (i) => `acc${i % 4}`),
        0,
        12,
      );
      const positions = async (options: FindOptions) =>
        (await store.find(projection, ledger, { orderBy: [['position', 'asc']], ...options })).map(
          (row) => row.position,
        );
      expect(await positions({ oneOf: { account: ['acc1', 'acc3', 'nobody'] } })).toEqual([
        2, 4, 6, 8, 10, 12,
      ]);
      expect(await positions({ where: { account: 'acc1' }, oneOf: { position: [2, 3, 6, 10] } })).toEqual([
        2, 6, 10,
      ]);
      expect(await positions({ oneOf: { account: [] } })).toEqual([]);
    });

    if (factory.shared)
      it('refuses a second rebuild of a projection while another process holds its claim, and takes it after', async () => {
        const { store, reopen } = await open();
        const other = await reopen();
        const projection = accountsProjection();
        const release = await store.claimRebuild!(projection);
        await expect(other.claimRebuild!(projection)).rejects.toBeInstanceOf(RebuildRunning);
        // Another projection's rebuild is not held back.
        await (await other.claimRebuild!(accountsProjection()))();
        // Nor is a rebuild through the projector: refused before it touches the first one's tables.
        const source = new MemoryEventStore();
        await source.append('w', [accountEvent('Deposited', { account: 'a', amount: 10 })]);
        await expect(new Projector({ projection, source, store: other }).rebuild()).rejects.toBeInstanceOf(
          RebuildRunning,
        );
        await release();
        await (await other.claimRebuild!(projection))();
      });

    it('rebuilds into fresh tables while the live ones serve, then swaps them in; twice', async () => {
      const { store } = await open();
      const projection = accountsProjection();
      const source = new MemoryEventStore();
      await source.append('w', [accountEvent('Deposited', { account: 'a', amount: 10 })]);
      const projector = new Projector({ projection, source, store, batchSize: 2 });
      await projector.start();
      await waitForCheckpoint(store, projection, 1);
      // A live table damaged by hand shows which tables readers see during and after the rebuild.
      await store.applyBatch(
        projection,
        'live',
        [{ kind: 'upsert', table: projection.tables[0]!.name, key: { account: 'zz' }, add: { balance: 1 } }],
        1,
        1,
      );
      await source.append('w', [accountEvent('Deposited', { account: 'b', amount: 5 })]);
      await waitForCheckpoint(store, projection, 2);
      for (let round = 0; round < 2; round++) {
        const progress: number[] = [];
        await projector.rebuild((p) => progress.push(p.position));
        expect(progress.at(-1)).toBe(2);
        const events = await source.readAll();
        expect(await rowsOf(store, projection)).toEqual(expectedBalances(events));
      }
      await source.append('w', [accountEvent('Deposited', { account: 'a', amount: 1 })]);
      await waitForCheckpoint(store, projection, 3);
      expect(await rowsOf(store, projection)).toEqual(expectedBalances(await source.readAll()));
      await projector.stop();
    });

    it('rebuilds an append-only table to the rows live batches wrote, awkward values included', async () => {
      const { store } = await open();
      const projection = tapeProjection();
      const [tape] = projection.tables;
      const notes = [
        'plain',
        'tab\there, newline\nthere, return\r',
        'back\\slash \\N and "quotes", {braces}, commas',
        'ação — 株 🚀',
        '',
        null,
      ];
      const changes: Change[] = notes.map((note, index) => ({
        kind: 'upsert',
        table: tape!.name,
        key: { id: `t${index}` },
        set: {
          note,
          amount: index % 2 ? -index * 1_000_000_007 : null,
          flag: index % 3 === 0,
          at: new Date(Date.UTC(2026, 0, 5, 10, 0, index, 123)),
          details: index === 5 ? null : { note, list: [index, 'x\ty'] },
        },
      }));
      await store.prepare(projection, 'live');
      expect(await store.applyBatch(projection, 'live', changes, 0, notes.length)).toBe(true);
      const read = () => store.find(projection, tape!.name, { orderBy: [['id', 'asc']] });
      const live = await read();
      expect(live.map((row) => row.note)).toEqual(notes);
      await store.prepare(projection, 'rebuild');
      expect(await store.applyBatch(projection, 'rebuild', changes.slice(0, 2), 0, 2)).toBe(true);
      expect(await store.applyBatch(projection, 'rebuild', changes.slice(2), 2, notes.length)).toBe(true);
      await store.promoteRebuild(projection);
      expect(await read()).toEqual(live);
      expect(await store.checkpoint(projection.name, 'live')).toBe(notes.length);
    });

    it('live projection of a random workload equals a rebuild from scratch, row for row', async () => {
      const { store } = await open();
      await fc.assert(
        // A rebuild window of a few changes: the rebuild writes several windows, each while
        // projecting the next.
        fc.asyncProperty(
          workload,
          fc.integer({ min: 1, max: 7 }),
          fc.integer({ min: 1, max: 9 }),
          async (steps, batchSize, rebuildWindow) => {
            const projection = accountsProjection();
            const source = new MemoryEventStore();
            const projector = new Projector({ projection, source, store, batchSize, rebuildWindow });
            await projector.start();
            for (const step of steps) {
              await source.append(`wallet-${step.account}`, [accountEvent(step.type, step)]);
            }
            const head = await source.headPosition();
            await waitForCheckpoint(store, projection, head);
            const live = await rowsOf(store, projection);
            await projector.rebuild();
            const rebuilt = await rowsOf(store, projection);
            await projector.stop();
            expect(live).toEqual(expectedBalances(await source.readAll()));
            expect(rebuilt).toEqual(live);
          },
        ),
        { numRuns: 8 },
      );
    });

    it('two projector instances at once apply every event exactly once', async () => {
      const { store, reopen } = await open();
      const other = await reopen();
      const projection = accountsProjection();
      const source = new MemoryEventStore();
      const first = new Projector({ projection, source, store, batchSize: 3 });
      const second = new Projector({ projection, source, store: other, batchSize: 5 });
      await first.start();
      await second.start();
      const appends = Array.from({ length: 40 }, (_, i) =>
        source.append(`w-${i % 4}`, [accountEvent('Deposited', { account: `acc${i % 4}`, amount: i + 1 })]),
      );
      await Promise.all(appends);
      await waitForCheckpoint(store, projection, 40);
      await new Promise((resolve) => setTimeout(resolve, 50));
      await first.stop();
      await second.stop();
      const rows = await rowsOf(store, projection);
      expect(rows).toEqual(expectedBalances(await source.readAll()));
      expect(rows.reduce((sum, row) => sum + (row.deposits as number), 0)).toBe(40);
    });

    it('writes nothing for events the read model ignores, and still brings the stored checkpoint up', async () => {
      const { store } = await open();
      const projection = accountsProjection();
      const source = new MemoryEventStore();
      await source.append('w', [accountEvent('Deposited', { account: 'a', amount: 10 })]);
      const projector = new Projector({ projection, source, store, batchSize: 10 });
      await projector.start();
      await waitForCheckpoint(store, projection, 1);
      const rowsBefore = await rowsOf(store, projection);
      let writes = 0;
      const applyBatch = store.applyBatch.bind(store);
      store.applyBatch = (...args: Parameters<typeof applyBatch>) => {
        writes += 1;
        return applyBatch(...args);
      };
      for (let i = 0; i < 5; i++) await source.append('noise', [newEvent('Noise', { i })]);
      for (const deadline = Date.now() + 5_000; (await projector.status()).checkpoint !== 6; ) {
        if (Date.now() > deadline) throw new Error('the projector did not pass the ignored events');
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
      expect(writes).toBe(0);
      // Within a second the stored checkpoint follows, in one write.
      await waitForCheckpoint(store, projection, 6);
      expect(writes).toBe(1);
      await projector.stop();
      expect(await rowsOf(store, projection)).toEqual(rowsBefore);
    });

    it('resumes after a crash mid-batch with no row missing and none applied twice', async () => {
      const { store, reopen } = await open();
      const projection = accountsProjection();
      const source = new MemoryEventStore();
      for (let i = 0; i < 30; i++)
        await source.append('w', [accountEvent('Deposited', { account: `a${i % 3}`, amount: 10 })]);
      // The projection dies on its 17th event, half-way through a batch.
      let seen = 0;
      const crashing: ProjectionDefinition = {
        ...projection,
        project: (event) => {
          seen += 1;
          if (seen === 17) throw new Error('killed mid-batch');
          return projection.project(event);
        },
      };
      const doomed = new Projector({ projection: crashing, source, store, batchSize: 10 });
      await doomed.start();
      await waitFor(() => seen >= 17);
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect((await doomed.status()).state).toBe('failed');
      expect(await store.checkpoint(projection.name, 'live')).toBe(10);
      const restarted = new Projector({ projection, source, store: await reopen(), batchSize: 10 });
      await restarted.start();
      await waitForCheckpoint(store, projection, 30);
      await restarted.stop();
      expect(await rowsOf(store, projection)).toEqual(expectedBalances(await source.readAll()));
    });
  });
}

export async function waitForCheckpoint(
  store: ReadModelStore,
  projection: ProjectionDefinition,
  position: number,
): Promise<void> {
  const deadline = Date.now() + 10_000;
  while ((await store.checkpoint(projection.name, 'live')) < position) {
    if (Date.now() > deadline) throw new Error(`${projection.name} did not reach position ${position}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
