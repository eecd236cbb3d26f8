import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { EventStoreDbEventStore } from '../../adapters/eventstoredb/event-store.ts';
import { openPgliteEventStore } from '../../adapters/pglite/event-store.ts';
import { openPostgresEventStore } from '../../adapters/postgres/index.ts';
import type { EventSchemas } from '../../domain/shared/event-schemas.ts';
import type { EventStore } from '../../domain/shared/event-store.ts';
import type { Config } from './config.ts';

export interface EventStores {
  broker: EventStore;
  b3: EventStore;
  /** Where the events live, for people: "PGlite in ./.tradecore", "Postgres at …". */
  description: string;
  close(): Promise<void>;
}

/**
 * The broker and B3 event stores, kept apart (the domain isolation of the original design):
 * EventStoreDB when ESDB_URL is set, else Postgres when DATABASE_URL is set, else PGlite
 * databases in the data folder.
 */
export async function connectEventStores(
  config: Config,
  schemas: { broker?: EventSchemas; b3?: EventSchemas } = {},
): Promise<EventStores> {
  let broker: EventStore;
  let b3: EventStore;
  let description: string;
  if (config.esdbUrl) {
    broker = EventStoreDbEventStore.connect({
      url: config.esdbUrl,
      prefix: 'broker',
      schemas: schemas.broker,
    });
    b3 = EventStoreDbEventStore.connect({ url: config.esdbUrl, prefix: 'b3', schemas: schemas.b3 });
    description = `EventStoreDB at ${redact(config.esdbUrl)}`;
  } else if (config.databaseUrl) {
    const b3Url = config.b3DatabaseUrl ?? config.databaseUrl;
    broker = await openPostgresEventStore({
      url: config.databaseUrl,
      schema: 'broker',
      schemas: schemas.broker,
    });
    b3 = await openPostgresEventStore({ url: b3Url, schema: 'b3', schemas: schemas.b3 });
    description = `Postgres at ${redact(config.databaseUrl)} (broker) and ${redact(b3Url)} (b3)`;
  } else {
    await mkdir(config.dataDir, { recursive: true });
    broker = await openPgliteEventStore({
      dataDir: join(config.dataDir, 'broker-events'),
      schema: 'broker',
      schemas: schemas.broker,
      thread: 'worker',
    });
    b3 = await openPgliteEventStore({
      dataDir: join(config.dataDir, 'b3-events'),
      schema: 'b3',
      schemas: schemas.b3,
      thread: 'worker',
    });
    description = `PGlite in ${config.dataDir}`;
  }
  return {
    broker,
    b3,
    description,
    async close() {
      await Promise.all([broker.close(), b3.close()]);
    },
  };
}

/** A URL without its password, for logs and banners. */
export function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparseable URL)';
  }
}
