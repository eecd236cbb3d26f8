import {
  BatchPlan,
  batchStatements,
  type MergedUpsert,
  RebuildRows,
  type Shape,
  type Wave,
} from '../../projections/batch.ts';
import {
  type Change,
  type ColumnType,
  columnOf,
  type FindOptions,
  type ProjectionDefinition,
  type Row,
  type TableDefinition,
  tableOf,
  type Value,
} from '../../projections/model.ts';
import { type OpenBatch, type ReadModelStore, RebuildRunning, type Target } from '../../projections/store.ts';
import { type SqlClient, sqlState } from '../shared/sql-client.ts';
import { assertSchemaName, positionLockKey } from './event-store-schema.ts';

const sqlTypes: Record<ColumnType, string> = {
  text: 'text',
  int: 'integer',
  bigint: 'bigint',
  boolean: 'boolean',
  timestamp: 'timestamptz',
  json: 'jsonb',
};

/**
 * A statement and its parameters, written before the batch's transaction begins; `copy` is the
 * input of a `COPY … FROM STDIN` (only for a client that `copies`).
 */
interface Statement {
  text: string;
  params?: string[];
  copy?: string;
}

/** Rows per statement: a batch's rows go in one statement per table and shape, up to this many. */
const MAX_ROWS = 20_000;

/**
 * Read models in a Postgres schema, on pg or PGlite. Each projection's checkpoint is a one-row
 * table beside its tables, written in the same transaction as the rows; a rebuild fills
 * `<table>__rebuild` tables that are renamed over the live ones in one transaction.
 */
export class SqlReadModelStore implements ReadModelStore {
  /** What each rebuild this store prepared has written (see `RebuildRows`); absent: upsert every row. */
  private readonly rebuildRows = new Map<string, RebuildRows>();

  private constructor(
    private readonly client: SqlClient,
    private readonly schema: string,
    readonly kind: string,
    private readonly ownsClient: boolean,
  ) {}

  static async open(options: {
    client: SqlClient;
    schema: string;
    kind?: string;
    ownsClient?: boolean;
  }): Promise<SqlReadModelStore> {
    const schema = assertSchemaName(options.schema);
    await options.client.exec(
      `SELECT pg_advisory_xact_lock(${positionLockKey(`readmodels.${schema}`)}); CREATE SCHEMA IF NOT EXISTS ${schema};`,
    );
    return new SqlReadModelStore(
      options.client,
      schema,
      options.kind ?? 'postgres',
      options.ownsClient ?? false,
    );
  }

  private table(name: string, target: Target): string {
    return `${name}${target === 'rebuild' ? '__rebuild' : ''}`;
  }

  private checkpointTable(projection: string, target: Target): string {
    return this.table(`${projection}__checkpoint`, target);
  }

  async prepare(projection: ProjectionDefinition, target: Target): Promise<void> {
    const s = this.schema;
    const statements = [
      `SELECT pg_advisory_xact_lock(${positionLockKey(`readmodels.${s}.${projection.name}`)});`,
    ];
    const checkpoint = this.checkpointTable(projection.name, target);
    if (target === 'rebuild') {
      for (const table of projection.tables)
        statements.push(`DROP TABLE IF EXISTS ${s}.${this.table(table.name, target)};`);
      statements.push(`DROP TABLE IF EXISTS ${s}.${checkpoint};`);
    }
    // A rebuild's tables get their secondary indexes when promoted: built once over the loaded
    // rows, they cost a fraction of what keeping them up to date row by row does. So does the
    // primary key of a table loaded in bulk, which no upsert of the rebuild needs.
    for (const table of projection.tables)
      statements.push(
        createTable(s, this.table(table.name, target), table, {
          indexes: target === 'live',
          primaryKey: !this.loadsInBulk(target, table),
        }),
      );
    statements.push(
      `CREATE TABLE IF NOT EXISTS ${s}.${checkpoint} (id integer CONSTRAINT ${checkpoint}_pkey PRIMARY KEY, position bigint NOT NULL, version integer NOT NULL, updated_at timestamptz NOT NULL DEFAULT now());`,
      `INSERT INTO ${s}.${checkpoint} (id, position, version) VALUES (1, 0, ${Number(projection.version)}) ON CONFLICT (id) DO NOTHING;`,
    );
    await this.client.exec(statements.join('\n'));
    if (target === 'rebuild') this.rebuildRows.set(projection.name, new RebuildRows());
  }

  /** Whether `target`'s rows of `table` go in with COPY (`BulkLoad`). */
  private loadsInBulk(target: Target, table: TableDefinition): boolean {
    return target === 'rebuild' && this.client.copies === true && table.appendOnly === true;
  }

  async checkpoint(projectionName: string, target: Target): Promise<number> {
    try {
      const rows = await this.client.query<{ position: number }>(
        `SELECT position FROM ${this.schema}.${this.checkpointTable(projectionName, target)} WHERE id = 1`,
      );
      return Number(rows[0]?.position ?? 0);
    } catch (error) {
      if (sqlState(error) === '42P01') return 0;
      throw error;
    }
  }

  async builtVersion(projectionName: string): Promise<number | undefined> {
    try {
      const rows = await this.client.query<{ version: number }>(
        `SELECT version FROM ${this.schema}.${this.checkpointTable(projectionName, 'live')} WHERE id = 1`,
      );
      return rows[0] ? Number(rows[0].version) : undefined;
    } catch (error) {
      if (sqlState(error) === '42P01') return undefined;
      throw error;
    }
  }

  async applyBatch(
    projection: ProjectionDefinition,
    target: Target,
    changes: Change[],
    from: number,
    to: number,
  ): Promise<boolean> {
    const batch = this.openBatch(projection, target);
    batch.add(changes);
    return batch.apply(from, to);
  }

  openBatch(projection: ProjectionDefinition, target: Target): OpenBatch {
    const plan = new BatchPlan();
    // A rebuild's append-only tables skip the plan: their rows are written as COPY input at once.
    const bulk = BulkLoad.of(projection.tables.filter((table) => this.loadsInBulk(target, table)));
    return {
      add: (changes) => plan.add(bulk ? bulk.take(changes) : changes),
      apply: (from, to) => this.applyWaves(projection, target, plan.waves(), from, to, bulk),
    };
  }

  private async applyWaves(
    projection: ProjectionDefinition,
    target: Target,
    waves: Wave[],
    from: number,
    to: number,
    bulk?: BulkLoad,
  ): Promise<boolean> {
    const tables = new Map(projection.tables.map((table) => [table.name, table]));
    // Planned and written before the transaction begins: during a rebuild the transaction's
    // statements then follow one another as fast as the server answers, while the projector
    // reads and projects the next window between them.
    const written = target === 'rebuild' ? this.rebuildRows.get(projection.name) : undefined;
    // Append-only rows touch no row of the waves: loaded first, in any order.
    const statements = [
      ...(bulk?.statements((table) => `${this.schema}.${this.table(table, target)}`) ?? []),
      ...batchStatements(
        tables,
        waves,
        {
          deletes: (table, keys) => this.deleteStatements(table, target, keys),
          upserts: (table, upserts, mayExist) => this.upsertStatements(table, target, upserts, mayExist),
        },
        written,
      ),
    ];
    if (written?.full) this.rebuildRows.delete(projection.name);
    const moveCheckpoint = {
      text: `UPDATE ${this.schema}.${this.checkpointTable(projection.name, target)}
                SET position = $2, updated_at = now() WHERE id = 1 AND position = $1 RETURNING id`,
      params: [from, to],
    };
    if (this.client.guardedTransaction) return this.client.guardedTransaction(moveCheckpoint, statements);
    return this.client.transaction(async (tx) => {
      const moved = await tx.query(moveCheckpoint.text, moveCheckpoint.params);
      if (moved.length === 0) return false;
      // A rebuild's windows need not wait for their WAL to reach the disk: the tables serve no
      // one until the promotion, whose commit (synchronous) flushes everything written before it.
      if (target === 'rebuild') await tx.query('SET LOCAL synchronous_commit = off');
      for (const { text, params, copy } of statements) {
        if (copy === undefined) await tx.query(text, params);
        else await tx.copyFrom!(text, copy);
      }
      return true;
    });
  }

  private *deleteStatements(table: TableDefinition, target: Target, keys: Row[]): Generator<Statement, void> {
    const name = `${this.schema}.${this.table(table.name, target)}`;
    // A join on the unnested key arrays, not `(a, b) IN ((…), (…))`: the IN list becomes a deep
    // OR tree that exhausts PGlite's (WASM) stack at a few hundred keys.
    const match = table.primaryKey.map((column) => `t.${column} = k.${column}`).join(' AND ');
    const text = `DELETE FROM ${name} AS t USING ${unnest(table, table.primaryKey)} WHERE ${match}`;
    for (const chunk of chunks(keys, MAX_ROWS)) {
      const params = table.primaryKey.map((column) =>
        arrayLiteral(table, column, chunk.length, (row) => chunk[row]![column]),
      );
      yield { text, params };
    }
  }

  private *upsertStatements(
    table: TableDefinition,
    target: Target,
    upserts: MergedUpsert[],
    mayExist: boolean,
  ): Generator<Statement, void> {
    // Rows whose columns carry the same operations (the same planned shape) share one statement.
    const shapes = new Map<Shape, MergedUpsert[]>();
    for (const upsert of upserts) {
      const list = shapes.get(upsert.shape);
      if (list) list.push(upsert);
      else shapes.set(upsert.shape, [upsert]);
    }
    const name = `${this.schema}.${this.table(table.name, target)}`;
    for (const [shape, group] of shapes) {
      for (const column of shape.columns) columnOf(table, column);
      const columns = [...table.primaryKey, ...shape.columns];
      const updates = shape.columns
        .map((column, index) => ({ column, op: shape.ops[index]! }))
        .filter(({ op }) => op !== 'insert')
        .map(({ column, op }) => `${column} = ${updateExpression(column, op)}`);
      const conflict = !mayExist
        ? ''
        : `ON CONFLICT (${table.primaryKey.join(', ')}) ${updates.length > 0 ? `DO UPDATE SET ${updates.join(', ')}` : 'DO NOTHING'}`;
      // One array parameter per column, unnested into rows: the statement stays a few hundred
      // bytes whatever the number of rows, so the server parses and plans it in no time, and the
      // driver sends a handful of strings instead of one parameter per value.
      const text = `INSERT INTO ${name} AS t (${columns.join(', ')}) SELECT * FROM ${unnest(table, columns)} ${conflict}`;
      for (const chunk of chunks(group, MAX_ROWS)) {
        const params = [
          ...table.primaryKey.map((column) =>
            arrayLiteral(table, column, chunk.length, (row) => chunk[row]!.key[column]),
          ),
          ...shape.columns.map((column, index) =>
            arrayLiteral(table, column, chunk.length, (row) => chunk[row]!.values[index]),
          ),
        ];
        yield { text, params };
      }
    }
  }

  /**
   * Holds a transaction open for the rebuild, with an advisory lock of its own: a second rebuild
   * of the projection, in any process, finds it taken and is refused; the lock goes with the
   * transaction when released, or with the connection if this process dies. Embedded (PGlite,
   * one connection, one process behind the data folder's lock), there is nobody to refuse.
   */
  async claimRebuild(projection: ProjectionDefinition): Promise<() => Promise<void>> {
    if (this.kind === 'pglite') return async () => {};
    const key = positionLockKey(`readmodels.${this.schema}.${projection.name}.rebuild`);
    let release = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let answer: (claimed: boolean) => void = () => {};
    const claimed = new Promise<boolean>((resolve) => {
      answer = resolve;
    });
    let failure: unknown;
    const held = this.client
      .transaction(async (tx) => {
        const [row] = await tx.query<{ claimed: boolean }>(
          `SELECT pg_try_advisory_xact_lock(${key}) AS claimed`,
        );
        answer(row?.claimed === true);
        if (row?.claimed === true) await released;
      })
      .catch((error: unknown) => {
        failure = error;
        answer(false);
      });
    if (!(await claimed)) {
      await held;
      throw failure ?? new RebuildRunning(projection.name);
    }
    return async () => {
      release();
      await held;
    };
  }

  async promoteRebuild(projection: ProjectionDefinition): Promise<void> {
    this.rebuildRows.delete(projection.name);
    const s = this.schema;
    const statements = [
      `SELECT pg_advisory_xact_lock(${positionLockKey(`readmodels.${s}.${projection.name}`)});`,
    ];
    const renames = [
      ...projection.tables.map((table) => ({ name: table.name, indexes: table.indexes ?? [] })),
      { name: `${projection.name}__checkpoint`, indexes: [] },
    ];
    // The rebuilt tables were loaded without their secondary indexes (and a bulk-loaded one
    // without the unique index of its primary key, which now checks that no row came twice):
    // build them before the swap, so readers of the promoted tables never see one missing. Each
    // in a transaction of its own, all at once: index builds do not block one another, and a pg
    // pool runs them on several connections (and cores) while readers still use the live tables.
    const bulkLoaded = projection.tables.filter((table) => this.loadsInBulk('rebuild', table));
    await Promise.all(
      projection.tables
        .flatMap((table) => {
          const name = this.table(table.name, 'rebuild');
          const builds = createIndexes(s, name, table);
          if (bulkLoaded.includes(table))
            builds.push(`CREATE UNIQUE INDEX ${name}_pkey ON ${s}.${name} (${table.primaryKey.join(', ')});`);
          return builds;
        })
        .map((build) => this.client.exec(build)),
    );
    for (const table of bulkLoaded) {
      const name = this.table(table.name, 'rebuild');
      statements.push(
        `ALTER TABLE ${s}.${name} ADD CONSTRAINT ${name}_pkey PRIMARY KEY USING INDEX ${name}_pkey;`,
      );
    }
    // Indexes and constraints keep their names through a table rename: give them the live names too,
    // so the next rebuild can create its own.
    for (const { name, indexes } of renames) {
      statements.push(
        `DROP TABLE IF EXISTS ${s}.${name};`,
        `ALTER TABLE ${s}.${name}__rebuild RENAME TO ${name};`,
        `ALTER TABLE ${s}.${name} RENAME CONSTRAINT ${name}__rebuild_pkey TO ${name}_pkey;`,
        ...indexes.map(
          (index) =>
            `ALTER INDEX ${s}.${name}__rebuild_${index.join('_')}_idx RENAME TO ${name}_${index.join('_')}_idx;`,
        ),
      );
    }
    await this.client.exec(statements.join('\n'));
  }

  async find(projection: ProjectionDefinition, tableName: string, options: FindOptions = {}): Promise<Row[]> {
    const table = tableOf(new Map(projection.tables.map((t) => [t.name, t])), tableName);
    const params: unknown[] = [];
    const conditions: string[] = [];
    for (const [column, value] of Object.entries(options.where ?? {})) {
      columnOf(table, column);
      conditions.push(
        value === null ? `${column} IS NULL` : `${column} = ${param(params, encode(table, column, value))}`,
      );
    }
    for (const [column, values] of Object.entries(options.oneOf ?? {})) {
      columnOf(table, column);
      const list = values.map((value) => param(params, encode(table, column, value)));
      conditions.push(list.length === 0 ? 'FALSE' : `${column} IN (${list.join(', ')})`);
    }
    const orderBy =
      options.orderBy ?? table.primaryKey.map((column): [string, 'asc' | 'desc'] => [column, 'asc']);
    if (options.after) {
      // Keyset pagination: (a, b) after (x, y) is a > x, or a = x and b > y (directions per column).
      const alternatives = orderBy.map((_, index) => {
        const equal = orderBy
          .slice(0, index)
          .map(
            ([column], j) => `${column} = ${param(params, encode(table, column, options.after![j] ?? null))}`,
          );
        const [column, direction] = orderBy[index]!;
        const beyond = `${column} ${direction === 'asc' ? '>' : '<'} ${param(params, encode(table, column, options.after![index] ?? null))}`;
        return `(${[...equal, beyond].join(' AND ')})`;
      });
      conditions.push(`(${alternatives.join(' OR ')})`);
    }
    const where = conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : '';
    const order = orderBy.map(
      ([column, direction]) => `${columnOf(table, column) && column} ${direction.toUpperCase()}`,
    );
    const limit = options.limit === undefined ? '' : `LIMIT ${Math.max(0, Math.floor(options.limit))}`;
    const rows = await this.client.query<Row>(
      `SELECT ${Object.keys(table.columns).join(', ')} FROM ${this.schema}.${table.name} ${where} ORDER BY ${order.join(', ')} ${limit}`,
      params,
    );
    return rows.map((row) => decodeRow(table, row));
  }

  async close(): Promise<void> {
    if (this.ownsClient) await this.client.close();
  }
}

/**
 * The rows a rebuild batch gives its append-only tables (`TableDefinition.appendOnly`), written
 * as COPY text as they come: no plan, no change kept, one `COPY … FROM STDIN` per table.
 */
class BulkLoad {
  private constructor(
    private readonly tables: Map<string, { table: TableDefinition; types: ColumnType[]; lines: string[] }>,
  ) {}

  /** For these tables, undefined when there are none. */
  static of(tables: TableDefinition[]): BulkLoad | undefined {
    const entries = tables.map((table) => {
      const types = Object.values(table.columns).map((column) => column.type);
      return [table.name, { table, types, lines: [] as string[] }] as const;
    });
    return entries.length > 0 ? new BulkLoad(new Map(entries)) : undefined;
  }

  /** Encodes the changes to append-only tables, and returns the others. */
  take(changes: readonly Change[]): readonly Change[] {
    let others: Change[] | undefined;
    for (let index = 0; index < changes.length; index++) {
      const change = changes[index]!;
      const target = this.tables.get(change.table);
      if (!target) {
        others?.push(change);
        continue;
      }
      others ??= changes.slice(0, index);
      target.lines.push(copyLine(target.table, target.types, change));
    }
    return others ?? changes;
  }

  *statements(tableName: (table: string) => string): Generator<Statement, void> {
    for (const { table, lines } of this.tables.values()) {
      if (lines.length === 0) continue;
      const columns = Object.keys(table.columns).join(', ');
      yield { text: `COPY ${tableName(table.name)} (${columns}) FROM STDIN`, copy: lines.join('') };
    }
  }
}

/** One row of COPY's text format: the table's columns in order, tab-separated, `\N` for null. */
function copyLine(table: TableDefinition, types: ColumnType[], change: Change): string {
  if (change.kind === 'delete')
    throw new Error(`table ${table.name} is append-only: a change deletes one of its rows`);
  // Columns are read by the table's names below: one the table lacks would be dropped unseen.
  knownColumns(table, change.key);
  knownColumns(table, change.insert);
  knownColumns(table, change.set);
  knownColumns(table, change.add);
  knownColumns(table, change.max);
  knownColumns(table, change.min);
  let line = '';
  let index = 0;
  for (const column in table.columns) {
    const value =
      change.key[column] ??
      change.insert?.[column] ??
      change.set?.[column] ??
      change.add?.[column] ??
      change.max?.[column] ??
      change.min?.[column];
    if (index > 0) line += '\t';
    line += copyField(types[index]!, value);
    index++;
  }
  return `${line}\n`;
}

function knownColumns(table: TableDefinition, row: object | undefined): void {
  for (const column in row) columnOf(table, column);
}

/** A value as COPY's text format reads it, written as `arrayLiteral` writes an element. */
function copyField(type: ColumnType, value: Value | undefined): string {
  if (value === null || value === undefined) return '\\N';
  switch (type) {
    case 'json':
      return copyEscaped(JSON.stringify(value));
    case 'boolean':
      return value ? 't' : 'f';
    case 'timestamp':
      return value instanceof Date ? dateElement(value) : copyEscaped(String(value));
    default:
      if (typeof value === 'number') return String(value);
      return copyEscaped(value instanceof Date ? value.toISOString() : String(value));
  }
}

/** Backslash, tab, newline and carriage return escaped, as COPY's text format reads them. */
function copyEscaped(text: string): string {
  return /[\\\t\n\r]/.test(text) ? text.replace(/[\\\t\n\r]/g, (char) => copyEscapes[char]!) : text;
}

const copyEscapes: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

function createTable(
  schema: string,
  name: string,
  table: TableDefinition,
  options: { indexes: boolean; primaryKey: boolean },
): string {
  // Columns a change does not name are null, so only key columns are NOT NULL (said here for a
  // table created without its primary key). Text compares byte by byte ("C"): ids and symbols
  // need no locale, and indexes build and search faster.
  const definitions = Object.entries(table.columns).map(
    ([column, definition]) =>
      `${column} ${sqlTypes[definition.type]}${definition.type === 'text' ? ' COLLATE "C"' : ''}${table.primaryKey.includes(column) ? ' NOT NULL' : ''}`,
  );
  if (options.primaryKey) definitions.push(primaryKey(name, table));
  return [
    `CREATE TABLE IF NOT EXISTS ${schema}.${name} (${definitions.join(', ')});`,
    ...(options.indexes ? createIndexes(schema, name, table) : []),
  ].join('\n');
}

function primaryKey(name: string, table: TableDefinition): string {
  return `CONSTRAINT ${name}_pkey PRIMARY KEY (${table.primaryKey.join(', ')})`;
}

function createIndexes(schema: string, name: string, table: TableDefinition): string[] {
  return (table.indexes ?? []).map(
    (index) =>
      `CREATE INDEX IF NOT EXISTS ${name}_${index.join('_')}_idx ON ${schema}.${name} (${index.join(', ')});`,
  );
}

function updateExpression(column: string, op: string): string {
  switch (op) {
    case 'add':
      return `COALESCE(t.${column}, 0) + EXCLUDED.${column}`;
    case 'max':
      return `GREATEST(t.${column}, EXCLUDED.${column})`;
    case 'min':
      return `LEAST(t.${column}, EXCLUDED.${column})`;
    default:
      return `EXCLUDED.${column}`;
  }
}

/** `unnest($1::text[], $2::bigint[], …) AS k (a, b, …)`: the array parameters as rows. */
function unnest(table: TableDefinition, columns: string[]): string {
  const arrays = columns.map((column, index) => `$${index + 1}::${sqlTypes[table.columns[column]!.type]}[]`);
  return `unnest(${arrays.join(', ')}) AS k (${columns.join(', ')})`;
}

/**
 * A column's values as a Postgres array literal (`{"a","b",NULL}`), written here rather than by
 * the driver: one string per column and batch, with no per-value conversion but the escaping.
 */
function arrayLiteral(
  table: TableDefinition,
  column: string,
  count: number,
  valueAt: (row: number) => Value | undefined,
): string {
  const type = table.columns[column]!.type;
  let literal = '{';
  for (let row = 0; row < count; row++) {
    if (row > 0) literal += ',';
    const value = valueAt(row);
    if (value === null || value === undefined) literal += 'NULL';
    else if (type === 'int' || type === 'bigint') literal += integerElement(value);
    else if (type === 'boolean') literal += value ? 't' : 'f';
    else if (type === 'timestamp' && value instanceof Date) literal += dateElement(value);
    else if (type === 'json') literal += quoted(JSON.stringify(value));
    else literal += quoted(value instanceof Date ? value.toISOString() : String(value));
  }
  return `${literal}}`;
}

function integerElement(value: Value): string {
  // Numbers only: anything else (a numeric string, say) is quoted and left to Postgres to parse.
  return typeof value === 'number' ? String(value) : quoted(String(value));
}

function dateElement(date: Date): string {
  if (Number.isNaN(date.getTime())) throw new Error('invalid date in a read-model change');
  return date.toISOString();
}

/** A quoted array element: backslashes and double quotes escaped. */
function quoted(text: string): string {
  return /["\\]/.test(text) ? `"${text.replace(/["\\]/g, '\\$&')}"` : `"${text}"`;
}

function encode(table: TableDefinition, column: string, value: Value): unknown {
  if (value === null || value === undefined) return null;
  if (table.columns[column]?.type === 'json') return JSON.stringify(value);
  return value;
}

function decodeRow(table: TableDefinition, row: Row): Row {
  for (const [column, definition] of Object.entries(table.columns)) {
    const value = row[column];
    if (value === null || value === undefined) continue;
    if (definition.type === 'bigint' || definition.type === 'int') row[column] = Number(value);
    else if (definition.type === 'timestamp' && !(value instanceof Date))
      row[column] = new Date(value as string);
  }
  return row;
}

function param(params: unknown[], value: unknown): string {
  params.push(value);
  return `$${params.length}`;
}

function* chunks<T>(items: T[], size: number): Generator<T[]> {
  for (let index = 0; index < items.length; index += size) yield items.slice(index, index + size);
}
