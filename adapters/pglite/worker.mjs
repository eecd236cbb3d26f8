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

const db = await PGlite.create(workerData.dataDir);
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
 */
async function guardedBatches(batches) {
  const results = [];
  await db.exec('BEGIN');
  try {
    for (const { guard, statements } of batches) {
      await db.exec('SAVEPOINT batch');
      try {
        const [result] = await db.exec(guard);
        if (!result || result.rows.length === 0) {
          await db.exec('ROLLBACK TO SAVEPOINT batch');
          results.push({ applied: false });
          continue;
        }
        // One exchange with the database for all of them: they return nothing to look at.
        if (statements.length > 0) await db.exec(statements.join(';\n'));
        await db.exec('RELEASE SAVEPOINT batch');
        results.push({ applied: true });
      } catch (error) {
        await db.exec('ROLLBACK TO SAVEPOINT batch');
        results.push({ error: describe(error) });
      }
    }
    await db.exec('COMMIT');
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
