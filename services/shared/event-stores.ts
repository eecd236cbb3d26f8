import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { openPgliteEventStore } from '../../adapters/pglite/event-store.ts';
import { b3EventDefinitions } from '../../domain/b3/book-events.ts';
import { quoteEventDefinitions } from '../../domain/b3/quote-events.ts';
import { EventSchemas } from '../../domain/shared/event-schemas.ts';
import type { EventStore } from '../../domain/shared/event-store.ts';
import { withTimeout } from '../../projections/deadline.ts';
import { brokerStoreSchemas } from '../api/api-events.ts';
import { b3DatabaseVariable, type Config, EMBEDDED_DATABASES, reaching, redact } from './config.ts';
import { type ServiceLogger, silentLogger } from './service-logger.ts';

export interface EventStores {
  broker: EventStore;
  b3: EventStore;
  /** Where the events live, for people: "PGlite in ./.tradecore", "Postgres at …". */
  description: string;
  close(): Promise<void>;
}

/**
 * What each store accepts: the broker's domain events and the API's own (usernames, idempotency
 * keys) in the broker store; the book, trade and quote events in the B3 store. Strict: an event of
 * another type, or whose data fails its type's schema, is refused before it is written.
 */
export function storeSchemas(): { broker: EventSchemas; b3: EventSchemas } {
  return {
    broker: brokerStoreSchemas(),
    b3: new EventSchemas([...b3EventDefinitions, ...quoteEventDefinitions]),
  };
}

/**
 * The broker and B3 event stores, kept apart (the domain isolation of the original design):
 * EventStoreDB when ESDB_URL is set, else Postgres when DATABASE_URL is set, else PGlite
 * databases in the data folder. They validate with `storeSchemas()` unless a test narrows them,
 * so whatever opens them this way cannot write an event the projections would choke on.
 */
export async function connectEventStores(
  config: Config,
  overrides: { broker?: EventSchemas; b3?: EventSchemas } = {},
  /** Where a start's warnings about the configuration go. */
  log: Pick<ServiceLogger, 'warn'> = silentLogger,
): Promise<EventStores> {
  const schemas = { ...storeSchemas(), ...overrides };
  let broker: EventStore;
  let b3: EventStore;
  let description: string;
  if (config.esdbUrl) {
    const esdbUrl = config.esdbUrl;
    // ESDB_URL wins (docs/operations.md): said at start, not left to be found out.
    if (config.databaseUrl)
      log.warn(
        {},
        config.b3DatabaseUrl
          ? 'ESDB_URL and DATABASE_URL are both set: the event stores are on EventStoreDB, and DATABASE_URL is not used'
          : 'ESDB_URL and DATABASE_URL are both set: the event stores are on EventStoreDB; DATABASE_URL holds only the trades, depth and candles read models',
      );
    // Each server's client is loaded only where its URL is set: an embedded start or CLI command
    // does not pay for loading gRPC, pg, mysql2, mongodb, kafkajs, amqplib and ioredis.
    const { EventStoreDbEventStore } = await import('../../adapters/eventstoredb/event-store.ts');
    // The client connects lazily, at the first call: ask the server now, so that a start fails
    // here naming ESDB_URL rather than at its first append, or never (a readiness failing forever).
    const opened = await reaching('ESDB_URL', esdbUrl, async () => {
      const stores = {
        broker: EventStoreDbEventStore.connect({ url: esdbUrl, prefix: 'broker', schemas: schemas.broker }),
        b3: EventStoreDbEventStore.connect({ url: esdbUrl, prefix: 'b3', schemas: schemas.b3 }),
      };
      try {
        // One server for both: one question is enough.
        await withTimeout(stores.broker.headPosition(), 10_000);
        return stores;
      } catch (error) {
        void stores.broker.close().catch(() => {});
        void stores.b3.close().catch(() => {});
        throw error;
      }
    });
    broker = opened.broker;
    b3 = opened.b3;
    description = `EventStoreDB at ${redact(esdbUrl)}`;
  } else if (config.databaseUrl) {
    const b3Url = config.b3DatabaseUrl ?? config.databaseUrl;
    const databaseUrl = config.databaseUrl;
    const { openPostgresEventStore } = await import('../../adapters/postgres/index.ts');
    broker = await reaching('DATABASE_URL', databaseUrl, () =>
      openPostgresEventStore({
        url: databaseUrl,
        schema: 'broker',
        schemas: schemas.broker,
        poolSize: config.databasePoolSize,
      }),
    );
    b3 = await reaching(b3DatabaseVariable(config), b3Url, () =>
      openPostgresEventStore({
        url: b3Url,
        schema: 'b3',
        schemas: schemas.b3,
        poolSize: config.databasePoolSize,
      }),
    );
    description = `Postgres at ${redact(config.databaseUrl)} (broker) and ${redact(b3Url)} (b3)`;
  } else {
    await mkdir(config.dataDir, { recursive: true });
    broker = await openPgliteEventStore({
      dataDir: join(config.dataDir, EMBEDDED_DATABASES.brokerEvents),
      schema: 'broker',
      schemas: schemas.broker,
      thread: 'worker',
    });
    b3 = await openPgliteEventStore({
      dataDir: join(config.dataDir, EMBEDDED_DATABASES.b3Events),
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
