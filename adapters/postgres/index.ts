import type { EventSchemas } from '../../domain/shared/event-schemas.ts';
import { pgClient } from './client.ts';
import { SqlEventStore } from './event-store.ts';

/** An event store in schema `schema` of the Postgres database at `url`. */
export async function openPostgresEventStore(options: {
  url: string;
  schema: string;
  schemas?: EventSchemas;
  poolSize?: number;
}): Promise<SqlEventStore> {
  const client = pgClient(options.url, { max: options.poolSize });
  return SqlEventStore.open({ client, schema: options.schema, schemas: options.schemas, ownsClient: true });
}
