import type { EventSchemas } from '../../domain/shared/event-schemas.ts';
import { SqlEventStore } from '../postgres/event-store.ts';
import { pgliteClient } from './client.ts';

/** The embedded event store: PGlite persisted in `dataDir` (in memory when absent), same SQL as Postgres. */
export async function openPgliteEventStore(options: {
  dataDir?: string;
  schema: string;
  schemas?: EventSchemas;
}): Promise<SqlEventStore> {
  const client = await pgliteClient(options.dataDir);
  return SqlEventStore.open({
    client,
    schema: options.schema,
    schemas: options.schemas,
    label: 'pglite',
    ownsClient: true,
    notifyOtherProcesses: false,
    exclusiveWriter: true,
  });
}
