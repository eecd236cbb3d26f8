import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SqlEventStore } from '../postgres/event-store.ts';
import { SqlReadModelStore } from '../postgres/read-model-store.ts';
import { eventStoreContract, newEvent, streamName } from '../shared/event-store-contract.ts';
import { readModelStoreContract } from '../shared/read-model-store-contract.ts';
import { openPgliteEventStore } from './event-store.ts';
import { pgliteAssets, pgliteWorkerClient } from './worker-client.ts';

// One database in a worker thread for the file; each store gets its own schema.
const dataDir = await mkdtemp(join(tmpdir(), 'tradecore-pglite-worker-'));
const client = await pgliteWorkerClient(dataDir);
let schemas = 0;
afterAll(async () => {
  await client.close();
  await rm(dataDir, { recursive: true, force: true });
});

eventStoreContract('PGlite in a worker thread, exclusive writer', {
  async create(options) {
    const schema = `contract_${++schemas}`;
    const open = (schemas = options?.schemas) =>
      SqlEventStore.open({ client, schema, schemas, label: 'pglite', exclusiveWriter: true });
    return { store: await open(), reopen: (again) => open(again?.schemas) };
  },
});

readModelStoreContract('PGlite in a worker thread', {
  async create() {
    const schema = `rm_${++schemas}`;
    const store = await SqlReadModelStore.open({ client, schema, kind: 'pglite' });
    return { store, reopen: () => SqlReadModelStore.open({ client, schema, kind: 'pglite' }) };
  },
});

describe('PGlite worker client', () => {
  it('finds PGlite’s WASM and file bundle to share among its workers (else each loads its own)', async () => {
    const assets = await pgliteAssets();
    expect(assets?.pgliteWasmModule.constructor.name).toBe('Module');
    expect(assets?.fsBundle.size).toBeGreaterThan(1_000_000);
    // Shared, not compiled again per worker.
    expect(await pgliteAssets()).toBe(assets);
  });

  it('passes errors on with their SQLSTATE, and rolls a failed transaction back', async () => {
    await client.query('CREATE TABLE IF NOT EXISTS worker_test (id int PRIMARY KEY, note text)');
    await expect(client.query('SELECT * FROM no_such_table')).rejects.toMatchObject({ code: '42P01' });
    await expect(
      client.transaction(async (tx) => {
        await tx.query('INSERT INTO worker_test VALUES ($1, $2)', [1, 'first']);
        await tx.query('INSERT INTO worker_test VALUES ($1, $2)', [1, 'again']);
      }),
    ).rejects.toMatchObject({ code: '23505' });
    expect(await client.query('SELECT * FROM worker_test')).toEqual([]);
  });

  it('keeps a transaction to itself: a statement from outside waits for its end', async () => {
    await client.query('CREATE TABLE IF NOT EXISTS worker_turns (n int)');
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const transaction = client.transaction(async (tx) => {
      await tx.query('INSERT INTO worker_turns VALUES (1)');
      await held;
      await tx.query('INSERT INTO worker_turns VALUES (2)');
    });
    const outside = client.query<{ count: number }>('SELECT count(*)::int AS count FROM worker_turns');
    release();
    await transaction;
    expect(await outside).toEqual([{ count: 2 }]);
  });

  it('applies batches handed in together each on its own: a refused guard or a failure undoes only its batch', async () => {
    await client.query('CREATE TABLE IF NOT EXISTS worker_batches (id int PRIMARY KEY)');
    const insert = (id: number) => ({ text: 'INSERT INTO worker_batches VALUES ($1)', params: [id] });
    const pass = { text: 'SELECT 1' };
    const refuse = { text: 'SELECT 1 WHERE false' };
    const guarded = client.guardedTransaction!;
    // Handed in in one turn of the event loop: they cross to the worker together.
    const outcomes = await Promise.allSettled([
      guarded(pass, [insert(1), insert(2)]),
      guarded(refuse, [insert(3)]),
      guarded(pass, [insert(4), insert(1)]),
      guarded(pass, [insert(5)]),
    ]);
    expect(outcomes.map((outcome) => (outcome.status === 'fulfilled' ? outcome.value : 'failed'))).toEqual([
      true,
      false,
      'failed',
      true,
    ]);
    expect(outcomes[2]).toMatchObject({ reason: { code: '23505' } });
    const rows = await client.query<{ id: number }>('SELECT id FROM worker_batches ORDER BY id');
    expect(rows.map((row) => row.id)).toEqual([1, 2, 5]);
  });

  it('undoes only its own batch when the first guard fails or the last batch does', async () => {
    await client.query('CREATE TABLE IF NOT EXISTS worker_edges (id int PRIMARY KEY)');
    const insert = (id: number) => ({ text: 'INSERT INTO worker_edges VALUES ($1)', params: [id] });
    const guarded = client.guardedTransaction!;
    const outcomes = await Promise.allSettled([
      guarded({ text: 'SELECT * FROM no_such_guard_table' }, [insert(1)]),
      guarded({ text: 'SELECT 1' }, [insert(2)]),
      guarded({ text: 'SELECT 1 WHERE false' }, [insert(3)]),
      guarded({ text: 'SELECT 1' }, [insert(4), insert(4)]),
    ]);
    expect(outcomes.map((outcome) => (outcome.status === 'fulfilled' ? outcome.value : 'failed'))).toEqual([
      'failed',
      true,
      false,
      'failed',
    ]);
    expect(outcomes[0]).toMatchObject({ reason: { code: '42P01' } });
    expect(outcomes[3]).toMatchObject({ reason: { code: '23505' } });
    const rows = await client.query<{ id: number }>('SELECT id FROM worker_edges ORDER BY id');
    expect(rows.map((row) => row.id)).toEqual([2]);
    // The connection is out of the transaction: a statement on its own commits on its own.
    await client.query('INSERT INTO worker_edges VALUES (5)');
    expect(await client.query('SELECT count(*)::int AS n FROM worker_edges')).toEqual([{ n: 2 }]);
  });

  it('fails to open, and says so, when the database cannot start', async () => {
    const file = join(dataDir, 'not-a-folder');
    await writeFile(file, 'a file where the data folder should be');
    await expect(pgliteWorkerClient(join(file, 'pgdata'))).rejects.toThrow();
  });

  it('keeps an embedded event store in its data folder across restarts', async () => {
    const folder = await mkdtemp(join(tmpdir(), 'tradecore-pglite-worker-store-'));
    try {
      const stream = streamName();
      const first = await openPgliteEventStore({ dataDir: folder, schema: 'broker', thread: 'worker' });
      await first.append(stream, [newEvent(), newEvent()]);
      await first.close();
      const second = await openPgliteEventStore({ dataDir: folder, schema: 'broker', thread: 'worker' });
      expect((await second.readStream(stream)).map((event) => event.version)).toEqual([0, 1]);
      await second.close();
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  });
});
