// The PGlite worker thread: one embedded Postgres, run off the main thread so that its WASM work
// uses a core of its own. Plain JavaScript, so that it loads in any runner without a TypeScript
// loader. It answers messages from adapters/pglite/worker-client.ts, one at a time, in order:
//   { id, sql }              → { id, rows } (the last statement's rows) or { id, error }
//   { id, batches: [{ guard, statements }] } → { id, results: [{ applied } | { error }] }: one
//                               transaction; each batch in a savepoint runs its guard and, when
//                               that gave rows, its statements (applied: true), else it is rolled
//                               back to the savepoint (applied: false), as it is when it fails
//   { id, listen: channel }  → { id } then { notify: channel, payload } for each NOTIFY
//   { id, unlisten: channel} → { id }
//   { id, close: true }      → { id }, after the database is closed
import { parentPort, workerData } from 'node:worker_threads';
import { PGlite } from '@electric-sql/pglite';

// PGlite's compiled WASM and file bundle, when the process hands them over (worker-client.ts).
const db = await PGlite.create(workerData.dataDir, workerData.assets ?? {});
const listening = new Map();

/** What of an error crosses to the main thread: its message and Postgres's fields. */
function describe(error) {
  const described = { message: error instanceof Error ? error.message : String(error) };
  for (const field of ['code', 'detail', 'hint', 'constraint', 'table', 'column', 'schema'])
    if (error && typeof error === 'object' && error[field] !== undefined) described[field] = error[field];
  return described;
}

/**
 * Guarded batches in one transaction and one commit: each is all or nothing on its own (a
 * savepoint), and the others commit whatever one of them did.
 *
 * Every exchange with PGlite costs about 0.1 ms whatever it runs, so a batch takes two: its
 * savepoint with its guard (BEGIN with the first), then its statements with the savepoint's
 * release (COMMIT with the last). A guard that gave no rows changed nothing: its savepoint is
 * left to the commit. When a statement fails, nothing after it in its exchange ran: rolling back
 * to the savepoint undoes the batch; when the COMMIT itself failed, the transaction has gone and
 * so does that rollback, and every batch fails with it.
 */
async function guardedBatches(batches) {
  const results = [];
  let committed = false;
  try {
    for (const [index, { guard, statements }] of batches.entries()) {
      let opened;
      try {
        opened = await db.exec(`${index === 0 ? 'BEGIN;\n' : ''}SAVEPOINT batch;\n${guard}`);
      } catch (error) {
        await db.exec('ROLLBACK TO SAVEPOINT batch');
        results.push({ error: describe(error) });
        continue;
      }
      if (opened.at(-1).rows.length === 0) {
        results.push({ applied: false });
        continue;
      }
      const last = index === batches.length - 1;
      try {
        await db.exec([...statements, 'RELEASE SAVEPOINT batch', ...(last ? ['COMMIT'] : [])].join(';\n'));
        committed = last;
        results.push({ applied: true });
      } catch (error) {
        await db.exec('ROLLBACK TO SAVEPOINT batch');
        results.push({ error: describe(error) });
      }
    }
    if (!committed) await db.exec('COMMIT');
    return results;
  } catch (error) {
    await db.exec('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

let queue = Promise.resolve();
parentPort.on('message', (message) => {
  queue = queue.then(async () => {
    try {
      if (message.sql !== undefined) {
        const results = await db.exec(message.sql);
        parentPort.postMessage({ id: message.id, rows: results.at(-1)?.rows ?? [] });
      } else if (message.batches !== undefined) {
        parentPort.postMessage({ id: message.id, results: await guardedBatches(message.batches) });
      } else if (message.listen !== undefined) {
        const channel = message.listen;
        const unlisten = await db.listen(channel, (payload) =>
          parentPort.postMessage({ notify: channel, payload }),
        );
        listening.set(channel, unlisten);
        parentPort.postMessage({ id: message.id });
      } else if (message.unlisten !== undefined) {
        await listening.get(message.unlisten)?.();
        listening.delete(message.unlisten);
        parentPort.postMessage({ id: message.id });
      } else if (message.close) {
        await db.close();
        parentPort.postMessage({ id: message.id });
        parentPort.close();
      }
    } catch (error) {
      parentPort.postMessage({ id: message.id, error: describe(error) });
    }
  });
});
parentPort.postMessage({ ready: true });
