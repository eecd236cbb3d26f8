import type { ProcessedEvents } from '../kafka/consumer.ts';
import type { SqlClient, SqlQuery } from '../shared/sql-client.ts';
import { assertSchemaName, positionLockKey } from './event-store-schema.ts';

/**
 * Event ids a consumer has applied, in a `processed_events` table of `schema` (pg or PGlite):
 * the consumer's effect runs in the same transaction as the insert, so both commit or neither.
 * One table serves several consumers, each under its own name.
 */
export class SqlProcessedEvents implements ProcessedEvents<SqlQuery> {
  private constructor(
    private readonly client: SqlClient,
    private readonly table: string,
    private readonly consumer: string,
  ) {}

  static async open(options: {
    client: SqlClient;
    schema: string;
    consumer: string;
  }): Promise<SqlProcessedEvents> {
    const schema = assertSchemaName(options.schema);
    const table = `${schema}.processed_events`;
    await options.client.exec(`
      SELECT pg_advisory_xact_lock(${positionLockKey(`processed.${schema}`)});
      CREATE SCHEMA IF NOT EXISTS ${schema};
      CREATE TABLE IF NOT EXISTS ${table} (
        consumer     text NOT NULL,
        event_id     text NOT NULL,
        processed_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (consumer, event_id)
      );`);
    return new SqlProcessedEvents(options.client, table, options.consumer);
  }

  unit<T>(work: (tx: SqlQuery) => Promise<T>): Promise<T> {
    return this.client.transaction(work);
  }

  async seen(tx: SqlQuery, eventId: string): Promise<boolean> {
    const rows = await tx.query(`SELECT 1 FROM ${this.table} WHERE consumer = $1 AND event_id = $2`, [
      this.consumer,
      eventId,
    ]);
    return rows.length > 0;
  }

  // A plain INSERT: a second member applying the same message concurrently fails on the key
  // and rolls its effect back.
  async remember(tx: SqlQuery, eventId: string): Promise<void> {
    await tx.query(`INSERT INTO ${this.table} (consumer, event_id) VALUES ($1, $2)`, [
      this.consumer,
      eventId,
    ]);
  }
}
