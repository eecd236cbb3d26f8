import type { EventSchemas } from '../../domain/shared/event-schemas.ts';
import { SqlEventStore } from '../postgres/event-store.ts';
import { pgliteClient } from './client.ts';
import { pgliteWorkerClient } from './worker-client.ts';

/**
 * The embedded event store: PGlite persisted in `dataDir` (in memory when absent), same SQL as
 * Postgres. `thread: 'worker'` runs the database in a worker thread (needs `dataDir`).
 */
export async function openPgliteEventStore(options: {
  dataDir?: string;
  schema: string;
  schemas?: EventSchemas;
  thread?: 'main' | 'worker';
}): Promise<SqlEventStore> {
  const client =
    options.thread === 'worker' && options.dataDir
      ? await pgliteWorkerClient(options.dataDir)
      : await pgliteClient(options.dataDir);
  try {
    return await SqlEventStore.open({
      client,
      schema: options.schema,
      schemas: options.schemas,
      label: 'pglite',
      ownsClient: true,
      notifyOtherProcesses: false,
      exclusiveWriter: true,
    });
  } catch (error) {
    await client.close().catch(() => undefined);
    throw error;
  }
}
