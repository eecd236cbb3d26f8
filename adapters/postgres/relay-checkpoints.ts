import type { RelayCheckpoints } from '../../projections/relay.ts';
import type { SqlClient } from '../shared/sql-client.ts';
import { assertSchemaName, positionLockKey } from './event-store-schema.ts';

/**
 * Relay checkpoints in a `relay_checkpoints` table of `schema`, on pg or PGlite: one row per
 * relay. A save never moves a checkpoint backwards, so a stale relay instance finishing late
 * cannot make the live one publish everything again.
 */
export class SqlRelayCheckpoints implements RelayCheckpoints {
  private constructor(
    private readonly client: SqlClient,
    private readonly table: string,
  ) {}

  static async open(options: { client: SqlClient; schema: string }): Promise<SqlRelayCheckpoints> {
    const schema = assertSchemaName(options.schema);
    const table = `${schema}.relay_checkpoints`;
    // Serialised: CREATE … IF NOT EXISTS can still collide when two processes start together.
    await options.client.exec(`
      SELECT pg_advisory_xact_lock(${positionLockKey(`relays.${schema}`)});
      CREATE SCHEMA IF NOT EXISTS ${schema};
      CREATE TABLE IF NOT EXISTS ${table} (
        name       text PRIMARY KEY,
        position   bigint NOT NULL CHECK (position >= 0),
        updated_at timestamptz NOT NULL DEFAULT now()
      );`);
    return new SqlRelayCheckpoints(options.client, table);
  }

  async load(name: string): Promise<number> {
    const rows = await this.client.query<{ position: number }>(
      `SELECT position FROM ${this.table} WHERE name = $1`,
      [name],
    );
    return Number(rows[0]?.position ?? 0);
  }

  async save(name: string, position: number): Promise<void> {
    if (!Number.isSafeInteger(position) || position < 0) {
      throw new RangeError(`relay ${name}: checkpoint must be a non-negative integer, got ${position}`);
    }
    await this.client.query(
      `INSERT INTO ${this.table} (name, position) VALUES ($1, $2)
       ON CONFLICT (name) DO UPDATE
         SET position = GREATEST(${this.table}.position, EXCLUDED.position), updated_at = now()`,
      [name, position],
    );
  }
}
