import type { RecordedEvent } from '../domain/shared/event-store.ts';

/**
 * The store-neutral language of read models. A projection is a pure definition — tables and a
 * function from one event to row changes — that every read-model store (Postgres, PGlite,
 * MySQL, Mongo) runs the same way.
 */

/** `bigint` holds integer cents and shares (always within 2^53); `timestamp` is a Date. */
export type ColumnType = 'text' | 'int' | 'bigint' | 'boolean' | 'timestamp' | 'json';

export interface Column {
  type: ColumnType;
  nullable?: boolean;
}

export interface TableDefinition {
  /** The logical name; stores may prefix it. Lowercase letters, digits, underscores. */
  name: string;
  columns: Record<string, Column>;
  primaryKey: string[];
  /** Secondary indexes, each a list of columns, for the queries the read model serves. */
  indexes?: string[][];
  /**
   * A tape: each row is created by one upsert and never changed nor deleted afterwards. A rebuild
   * may then load the rows in bulk (COPY) without planning them; a second change to a row of the
   * table fails that rebuild.
   */
  appendOnly?: boolean;
}

export type Value =
  | string
  | number
  | boolean
  | Date
  | null
  | readonly unknown[]
  | { readonly [key: string]: unknown };
export type Row = Record<string, Value>;

/**
 * One change to one row, found by its primary key.
 *
 * `upsert`: when the row is missing, it is created from `key`, `insert`, `set`, `add`, `max`
 * and `min` (columns not named are null); when it exists, `set` overwrites, `add` increments,
 * `max` and `min` keep the greater or smaller value, and `insert` is ignored. Increments make
 * most projections pure: a running total needs no read of the row first.
 *
 * `position` is the position of the event that made the change, stamped by the projector
 * (projections leave it out). Stores without transactions (Mongo) use it to apply each event to
 * a row at most once; SQL stores ignore it.
 */
export type Change =
  | {
      kind: 'upsert';
      table: string;
      key: Row;
      insert?: Row;
      set?: Row;
      add?: Record<string, number>;
      max?: Row;
      min?: Row;
      position?: number;
    }
  | { kind: 'delete'; table: string; key: Row; position?: number };

export interface ProjectionDefinition {
  /** Unique; names the checkpoint and appears in metrics, the CLI and the admin API. */
  name: string;
  /** Bump when tables or the projection function change: the store then needs a rebuild. */
  version: number;
  /** Which event store the projection follows. */
  source: 'broker' | 'b3';
  /** Which kind of store serves it in connected mode (embedded mode puts every model in PGlite). */
  store: 'mysql' | 'postgres' | 'mongo';
  tables: TableDefinition[];
  /** Pure: the changes one event makes. Events a projection does not care about give []. */
  project(event: RecordedEvent): Change[];
}

/** Keyset pagination: rows after `after` (values of the `orderBy` columns of the last row seen). */
export interface FindOptions {
  where?: Row;
  /** Rows whose column holds one of the values (none: no row), for each column named. Not for json columns. */
  oneOf?: Record<string, Value[]>;
  /** Columns and directions; the last one should make the order unique (a key column). */
  orderBy?: Array<[column: string, direction: 'asc' | 'desc']>;
  limit?: number;
  after?: Value[];
}

/** The table of that name, or an error naming it: store adapters look tables up by change. */
export function tableOf(tables: ReadonlyMap<string, TableDefinition>, name: string): TableDefinition {
  const table = tables.get(name);
  if (!table) throw new Error(`read model has no table ${name}`);
  return table;
}

/** Asserts the column exists (a query or change naming another is a bug, not data). */
export function columnOf(table: TableDefinition, column: string): true {
  if (!(column in table.columns)) throw new Error(`table ${table.name} has no column ${column}`);
  return true;
}
