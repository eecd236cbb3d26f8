// The PGlite worker thread: one embedded Postgres, run off the main thread so that its WASM work
// uses a core of its own. Plain JavaScript, so that it loads in any runner without a TypeScript
// loader. It answers messages from adapters/pglite/worker-client.ts, one at a time, in order:
//   { id, sql }              → { id, rows } (the last statement's rows) or { id, error }
//   { id, guard, statements } → { id, applied }: BEGIN; guard; if it gave rows, the statements
//                               and COMMIT (applied: true), else ROLLBACK (applied: false)
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

async function guarded(guard, statements) {
  await db.exec('BEGIN');
  try {
    const [result] = await db.exec(guard);
    if (!result || result.rows.length === 0) {
      await db.exec('ROLLBACK');
      return false;
    }
    for (const statement of statements) await db.exec(statement);
    await db.exec('COMMIT');
    return true;
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
      } else if (message.guard !== undefined) {
        parentPort.postMessage({ id: message.id, applied: await guarded(message.guard, message.statements) });
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
