import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { SqlClient, SqlQuery } from '../shared/sql-client.ts';
import { inlineParameters, normaliseRow } from './client.ts';

type Failure = { message: string; code?: string };
type Reply = {
  id: number;
  rows?: unknown[];
  results?: Array<{ applied?: boolean; error?: Failure }>;
  error?: Failure;
};

/** A read model's batch waiting for its turn: its guard and statements as SQL text. */
interface GuardedBatch {
  guard: string;
  statements: string[];
  settle: (applied: boolean) => void;
  fail: (error: Error) => void;
}

const failureOf = (error: Failure) => Object.assign(new Error(error.message), error);

/** What every PGlite of the process can share: its WASM compiled, its file bundle read. */
interface PgliteAssets {
  pgliteWasmModule: WebAssembly.Module;
  fsBundle: Blob;
}
let assets: Promise<PgliteAssets | undefined> | undefined;
/** Node's own WebAssembly, which the ES2023 library declares as types only. */
declare const WebAssembly: { compile(bytes: Uint8Array): Promise<WebAssembly.Module> };

/**
 * PGlite's WASM compiled once and its file bundle read once per process, handed to each worker
 * (a compiled module crosses to a worker without being compiled again): the embedded mode opens
 * three databases at every start and CLI command, and each compiling its own cost 0.3 s of CPU more
 * per command (five alternating runs of `projections status`). Undefined if PGlite's files are not
 * where this version keeps them: each worker then loads its own, as PGlite does by default.
 */
export function pgliteAssets(): Promise<PgliteAssets | undefined> {
  assets ??= (async () => {
    const dist = dirname(createRequire(import.meta.url).resolve('@electric-sql/pglite'));
    const [wasm, bundle] = await Promise.all([
      readFile(join(dist, 'pglite.wasm')),
      readFile(join(dist, 'pglite.data')),
    ]);
    return { pgliteWasmModule: await WebAssembly.compile(wasm), fsBundle: new Blob([bundle]) };
  })().catch(() => undefined);
  return assets;
}

/**
 * PGlite in `dataDir`, run in a worker thread (adapters/pglite/worker.mjs). The embedded mode's
 * databases do most of an order's work in PGlite's WASM; on the main thread that work and the
 * HTTP API, the order process and the engine take turns on one core, while in a worker it has a
 * core of its own. Each statement crosses as SQL text (parameters written as literals, as
 * `pgliteClient` does) and its rows come back by structured clone.
 *
 * One connection: a transaction holds it from BEGIN to COMMIT, and statements from outside the
 * transaction wait their turn (`exclusive`). Every exchange with the worker costs the main thread
 * a message each way, and every commit costs the database a WAL flush: so a read model's batch
 * goes as one message (`guardedTransaction`), and the batches that read models hand in while the
 * connection is busy (the projectors of one store all wake on the same appends) go together, in
 * one transaction, each in a savepoint of its own.
 */
export async function pgliteWorkerClient(dataDir: string): Promise<SqlClient> {
  const worker = new Worker(new URL('./worker.mjs', import.meta.url), {
    workerData: { dataDir, assets: await pgliteAssets() },
  });
  const pending = new Map<number, { resolve: (reply: Reply) => void; reject: (error: Error) => void }>();
  const listeners = new Map<string, (payload: string) => void>();
  let nextId = 0;
  let failure: Error | undefined;

  // The worker keeps the process alive only while it owes an answer.
  const settle = (id: number) => {
    pending.delete(id);
    if (pending.size === 0) worker.unref();
  };
  const failAll = (error: Error) => {
    failure ??= error;
    for (const [id, waiting] of pending) {
      settle(id);
      waiting.reject(error);
    }
  };
  await new Promise<void>((resolve, reject) => {
    worker.once('message', () => resolve());
    worker.once('error', reject);
    worker.once('exit', (code) =>
      reject(new Error(`PGlite worker for ${dataDir} exited (${code}) before it was ready`)),
    );
  });
  worker.on('message', (message: Reply & { notify?: string; payload?: string }) => {
    if (message.notify !== undefined) {
      listeners.get(message.notify)?.(message.payload ?? '');
      return;
    }
    const waiting = pending.get(message.id);
    if (!waiting) return;
    settle(message.id);
    if (message.error) waiting.reject(failureOf(message.error));
    else waiting.resolve(message);
  });
  worker.on('error', failAll);
  worker.on('exit', () => failAll(new Error(`PGlite worker for ${dataDir} has stopped`)));
  worker.unref();

  const ask = (request: Record<string, unknown>): Promise<Reply> => {
    if (failure) return Promise.reject(failure);
    const id = ++nextId;
    return new Promise((resolve, reject) => {
      if (pending.size === 0) worker.ref();
      pending.set(id, { resolve, reject });
      worker.postMessage({ id, ...request });
    });
  };
  const run = async <Row>(text: string, params?: unknown[]): Promise<Row[]> =>
    ((await ask({ sql: inlineParameters(text, params) })).rows ?? []).map(normaliseRow) as Row[];

  // Statements one after another, a transaction's all together: the connection's turn.
  let turn: Promise<unknown> = Promise.resolve();
  const exclusive = <T>(work: () => Promise<T>): Promise<T> => {
    const mine = turn.then(work);
    turn = mine.catch(() => undefined);
    return mine;
  };
  const inTransaction = async <T>(work: (tx: SqlQuery) => Promise<T>): Promise<T> => {
    await run('BEGIN');
    try {
      const result = await work({ query: run });
      await run('COMMIT');
      return result;
    } catch (error) {
      await run('ROLLBACK').catch(() => undefined);
      throw error;
    }
  };

  // Batches handed in while the connection is busy: they go out together at its next turn.
  let waitingBatches: GuardedBatch[] = [];
  const sendBatches = async () => {
    const batches = waitingBatches;
    waitingBatches = [];
    try {
      const { results = [] } = await ask({
        batches: batches.map(({ guard, statements }) => ({ guard, statements })),
      });
      batches.forEach((batch, index) => {
        const result = results[index];
        if (result?.error) batch.fail(failureOf(result.error));
        else batch.settle(result?.applied === true);
      });
    } catch (error) {
      for (const batch of batches) batch.fail(error as Error);
    }
  };

  return {
    query: (text, params) => exclusive(() => run(text, params)),
    transaction: (work) => exclusive(() => inTransaction(work)),
    guardedTransaction: (guard, statements) =>
      new Promise<boolean>((settle, fail) => {
        waitingBatches.push({
          guard: inlineParameters(guard.text, guard.params),
          statements: statements.map((statement) => inlineParameters(statement.text, statement.params)),
          settle,
          fail,
        });
        if (waitingBatches.length === 1) void exclusive(sendBatches);
      }),
    exec: (text) => exclusive(() => inTransaction(async (tx) => void (await tx.query(text)))),
    async listen(channel, onNotify) {
      listeners.set(channel, onNotify);
      await exclusive(() => ask({ listen: channel }));
      return async () => {
        listeners.delete(channel);
        await exclusive(() => ask({ unlisten: channel }));
      };
    },
    async close() {
      await exclusive(() => ask({ close: true }));
      await worker.terminate();
    },
  };
}
