import { createHash } from 'node:crypto';
import mysql, {
  type Pool,
  type PoolConnection,
  type ResultSetHeader,
  type RowDataPacket,
} from 'mysql2/promise';
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
  type Column,
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

/** MySQL and MariaDB cap identifiers at 64 characters. */
const MAX_IDENTIFIER_LENGTH = 64;

/**
 * A multi-row statement stops growing at this size: far below max_allowed_packet (4 MiB on the
 * oldest servers, 16 MiB on MariaDB, 64 MiB on MySQL 8), and large enough that a batch of
 * thousands of rows costs a handful of round trips.
 */
const MAX_STATEMENT_BYTES = 1_000_000;

/** How long prepare and promoteRebuild wait for another process holding the projection's lock. */
const LOCK_TIMEOUT_SECONDS = 60;

/**
 * Read models in a MySQL 8 or MariaDB database, through mysql2. The same design as the Postgres
 * store: each projection's checkpoint is a one-row table beside its tables, moved
 * compare-and-set in the transaction that writes the rows; a rebuild fills `<table>__rebuild`
 * tables, swapped in with one multi-table RENAME (MySQL DDL commits on its own, so the single
 * statement is what makes the swap atomic).
 */
export class MysqlReadModelStore implements ReadModelStore {
  readonly kind = 'mysql';
  /** What each rebuild this store prepared has written (see `RebuildRows`); absent: upsert every row. */
  private readonly rebuildRows = new Map<string, RebuildRows>();

  private constructor(
    private readonly pool: Pool,
    private readonly database: string,
    private readonly collation: string,
    private readonly jsonEquality: JsonEquality,
    private readonly ownsPool: boolean,
  ) {}

  /**
   * Opens a store on the database named in `url` (`mysql://user:password@host:3306/database`),
   * or on a pool the caller owns.
   */
  static async open(
    options: { url: string; connectionLimit?: number } | { pool: Pool },
  ): Promise<MysqlReadModelStore> {
    const ownsPool = !('pool' in options);
    const pool = 'pool' in options ? options.pool : mysqlPool(options.url, options.connectionLimit);
    try {
      const [[selected]] = await pool.query<RowDataPacket[]>('SELECT DATABASE() AS name');
      const database = selected?.name as string | null;
      if (!database) throw new Error('the MySQL URL of a read-model store must name a database');
      return new MysqlReadModelStore(
        pool,
        database,
        await binaryCollation(pool),
        await jsonEquality(pool),
        ownsPool,
      );
    } catch (error) {
      if (ownsPool) await pool.end();
      throw error;
    }
  }

  private table(name: string, target: Target): string {
    return `${name}${target === 'rebuild' ? '__rebuild' : ''}`;
  }

  private checkpointTable(projection: string, target: Target): string {
    return this.table(`${projection}__checkpoint`, target);
  }

  async prepare(projection: ProjectionDefinition, target: Target): Promise<void> {
    assertNames(projection);
    await this.withLock(projection.name, async (connection) => {
      const checkpoint = this.checkpointTable(projection.name, target);
      if (target === 'rebuild') {
        const stale = [...projection.tables.map((table) => this.table(table.name, target)), checkpoint];
        await connection.query(`DROP TABLE IF EXISTS ${stale.map(identifier).join(', ')}`);
      }
      // A rebuild's tables get their secondary indexes when promoted: built once over the loaded
      // rows, they cost a fraction of what keeping them up to date row by row does (`orders` has
      // six, and every status change moves its row in two).
      for (const table of projection.tables)
        await connection.query(
          createTable(this.table(table.name, target), table, this.collation, target === 'live'),
        );
      await connection.query(
        `CREATE TABLE IF NOT EXISTS ${identifier(checkpoint)} (
           id INT NOT NULL PRIMARY KEY, position BIGINT NOT NULL, version INT NOT NULL, updated_at DATETIME(3) NOT NULL
         ) ENGINE=InnoDB`,
      );
      await connection.query(
        `INSERT INTO ${identifier(checkpoint)} (id, position, version, updated_at)
         VALUES (1, 0, ${integer(projection.version)}, ${dateLiteral(new Date())})
         ON DUPLICATE KEY UPDATE id = id`,
      );
    });
    if (target === 'rebuild') this.rebuildRows.set(projection.name, new RebuildRows());
  }

  async checkpoint(projectionName: string, target: Target): Promise<number> {
    const row = await this.checkpointRow(this.checkpointTable(projectionName, target));
    return Number(row?.position ?? 0);
  }

  async builtVersion(projectionName: string): Promise<number | undefined> {
    const row = await this.checkpointRow(this.checkpointTable(projectionName, 'live'));
    return row ? Number(row.version) : undefined;
  }

  private async checkpointRow(table: string): Promise<RowDataPacket | undefined> {
    try {
      const [rows] = await this.pool.query<RowDataPacket[]>(
        `SELECT position, version FROM ${identifier(table)} WHERE id = 1`,
      );
      return rows[0];
    } catch (error) {
      if (isMissingTable(error)) return undefined;
      throw error;
    }
  }

  applyBatch(
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
    return {
      add: (changes) => plan.add(changes),
      apply: (from, to) => this.applyWaves(projection, target, plan.waves(), from, to),
    };
  }

  private async applyWaves(
    projection: ProjectionDefinition,
    target: Target,
    waves: Wave[],
    from: number,
    to: number,
  ): Promise<boolean> {
    const tables = new Map(projection.tables.map((table) => [table.name, table]));
    return this.transaction(async (connection) => {
      // affectedRows counts matched rows (the FOUND_ROWS flag), so a batch from N to N still moves.
      const moving = connection.query<ResultSetHeader>(
        `UPDATE ${identifier(this.checkpointTable(projection.name, target))}
            SET position = ${integer(to)}, updated_at = ${dateLiteral(new Date())}
          WHERE id = 1 AND position = ${integer(from)}`,
      );
      moving.catch(() => {});
      // The batch's first statement is written while the server moves the checkpoint; then each
      // statement is queued on the connection as soon as it is written, so
      // the server runs one while the next is being written.
      const written = target === 'rebuild' ? this.rebuildRows.get(projection.name) : undefined;
      if (written?.full) this.rebuildRows.delete(projection.name);
      const statements = batchStatements(
        tables,
        waves,
        {
          deletes: (table, keys) => this.deleteStatements(table, target, keys),
          upserts: (table, upserts, mayExist) => this.upsertStatements(table, target, upserts, mayExist),
        },
        written,
      );
      let next = statements.next();
      const [moved] = await moving;
      if (moved.affectedRows === 0) return false;
      const sent: Promise<unknown>[] = [];
      for (; !next.done; next = statements.next()) {
        const query = connection.query(next.value);
        query.catch(() => {});
        sent.push(query);
      }
      await Promise.all(sent);
      return true;
    });
  }

  private *deleteStatements(table: TableDefinition, target: Target, keys: Row[]): Generator<string, void> {
    const columns = table.primaryKey.map(identifier);
    const keyColumns = columns.length === 1 ? columns[0]! : `(${columns.join(', ')})`;
    const tuples = keys.map((key) => {
      const values = table.primaryKey.map((column) => literal(table, column, key[column] ?? null));
      return values.length === 1 ? values[0]! : `(${values.join(', ')})`;
    });
    for (const chunk of statementChunks(tuples))
      yield `DELETE FROM ${identifier(this.table(table.name, target))} WHERE ${keyColumns} IN (${chunk.join(', ')})`;
  }

  private *upsertStatements(
    table: TableDefinition,
    target: Target,
    upserts: MergedUpsert[],
    mayExist: boolean,
  ): Generator<string, void> {
    // Rows whose columns carry the same operations (the same planned shape) share one multi-row
    // statement.
    const shapes = new Map<Shape, MergedUpsert[]>();
    for (const upsert of upserts) {
      const list = shapes.get(upsert.shape);
      if (list) list.push(upsert);
      else shapes.set(upsert.shape, [upsert]);
    }
    const name = identifier(this.table(table.name, target));
    for (const [shape, group] of shapes) {
      const columns = [...table.primaryKey, ...shape.columns];
      // Each column's type looked up once per shape, not once per value.
      const types = columns.map((column) => columnOf(table, column) && table.columns[column]!.type);
      const keys = table.primaryKey.length;
      const updates = shape.columns
        .map((column, index) => ({ column, op: shape.ops[index]! }))
        .filter(({ op }) => op !== 'insert')
        .map(({ column, op }) => `${identifier(column)} = ${updateExpression(column, op)}`);
      // Only insert-only columns: an existing row stays as it is.
      if (updates.length === 0)
        updates.push(`${identifier(table.primaryKey[0]!)} = ${identifier(table.primaryKey[0]!)}`);
      const tuples = group.map((upsert) => {
        let tuple = '(';
        for (let index = 0; index < keys; index++)
          tuple += `${typedLiteral(types[index], upsert.key[columns[index]!] ?? null)}, `;
        for (let index = keys; index < columns.length; index++)
          tuple += `${typedLiteral(types[index], upsert.values[index - keys] ?? null)}, `;
        return `${tuple.slice(0, -2)})`;
      });
      const head = `INSERT INTO ${name} (${columns.map(identifier).join(', ')}) VALUES `;
      const tail = mayExist ? ` ON DUPLICATE KEY UPDATE ${updates.join(', ')}` : '';
      for (const chunk of statementChunks(tuples)) yield `${head}${chunk.join(', ')}${tail}`;
    }
  }

  async promoteRebuild(projection: ProjectionDefinition): Promise<void> {
    this.rebuildRows.delete(projection.name);
    assertNames(projection);
    const names = [...projection.tables.map((table) => table.name), `${projection.name}__checkpoint`];
    const old = (name: string) => identifier(`${name}__old`);
    await this.withLock(projection.name, async (connection) => {
      // Left behind by a promotion that died between the swap and the drop.
      await connection.query(`DROP TABLE IF EXISTS ${names.map(old).join(', ')}`);
      await this.addIndexes(connection, projection);
      const [existing] = await connection.query<RowDataPacket[]>(
        `SELECT TABLE_NAME AS name FROM information_schema.TABLES
          WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN (${names.map((name) => mysql.escape(name)).join(', ')})`,
      );
      const live = new Set(existing.map((row) => String(row.name)));
      // One statement: readers see the old tables or the new ones, never a mix, and the
      // checkpoint travels with its rows.
      const renames = [
        ...names.filter((name) => live.has(name)).map((name) => `${identifier(name)} TO ${old(name)}`),
        ...names.map((name) => `${identifier(`${name}__rebuild`)} TO ${identifier(name)}`),
      ];
      await connection.query(`RENAME TABLE ${renames.join(', ')}`);
      await connection.query(`DROP TABLE IF EXISTS ${names.map(old).join(', ')}`);
    });
  }

  /**
   * Builds the rebuilt tables' secondary indexes (one ALTER per table, each index sorted once over
   * the loaded rows) before the swap, so the promoted tables have every index. Indexes already
   * there (a promotion that died after this step) are left as they are.
   */
  private async addIndexes(connection: PoolConnection, projection: ProjectionDefinition): Promise<void> {
    for (const table of projection.tables) {
      if (!table.indexes?.length) continue;
      const name = this.table(table.name, 'rebuild');
      const [existing] = await connection.query<RowDataPacket[]>(
        `SELECT DISTINCT INDEX_NAME AS name FROM information_schema.STATISTICS
          WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ${mysql.escape(name)}`,
      );
      const present = new Set(existing.map((row) => String(row.name)));
      const missing = table.indexes
        .map((index) => ({ name: indexName(index), index }))
        .filter((index) => !present.has(index.name));
      if (missing.length === 0) continue;
      await connection.query(
        `ALTER TABLE ${identifier(name)} ${missing
          .map(({ name, index }) => `ADD INDEX ${identifier(name)} (${index.map(identifier).join(', ')})`)
          .join(', ')}`,
      );
    }
  }

  async find(projection: ProjectionDefinition, tableName: string, options: FindOptions = {}): Promise<Row[]> {
    const table = tableOf(new Map(projection.tables.map((t) => [t.name, t])), tableName);
    const conditions: string[] = [];
    const equals = (column: string, value: Value): string => {
      const name = identifier(column);
      if (value === null) return `${name} IS NULL`;
      const text = literal(table, column, value);
      if (table.columns[column]?.type !== 'json') return `${name} = ${text}`;
      if (this.jsonEquality === 'cast') return `${name} = CAST(${text} AS JSON)`;
      // MariaDB's JSON_EQUALS is true, not NULL, for a NULL column inside WHERE (10.11): guard it.
      if (this.jsonEquality === 'json_equals')
        return `(${name} IS NOT NULL AND JSON_EQUALS(${name}, ${text}))`;
      return `${name} = ${text}`;
    };
    for (const [column, value] of Object.entries(options.where ?? {})) {
      columnOf(table, column);
      conditions.push(equals(column, value));
    }
    for (const [column, values] of Object.entries(options.oneOf ?? {})) {
      columnOf(table, column);
      const list = values.map((value) => literal(table, column, value));
      conditions.push(list.length === 0 ? 'FALSE' : `${identifier(column)} IN (${list.join(', ')})`);
    }
    const orderBy =
      options.orderBy ?? table.primaryKey.map((column): [string, 'asc' | 'desc'] => [column, 'asc']);
    for (const [column] of orderBy) columnOf(table, column);
    if (options.after) {
      const after = options.after;
      // Keyset pagination: (a, b) after (x, y) is a > x, or a = x and b > y (directions per column).
      const alternatives = orderBy.map((_, index) => {
        const equal = orderBy.slice(0, index).map(([column], j) => equals(column, after[j] ?? null));
        const [column, direction] = orderBy[index]!;
        const beyond = `${identifier(column)} ${direction === 'asc' ? '>' : '<'} ${literal(table, column, after[index] ?? null)}`;
        return `(${[...equal, beyond].join(' AND ')})`;
      });
      conditions.push(`(${alternatives.join(' OR ')})`);
    }
    const where = conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : '';
    const order = orderBy.map(([column, direction]) => `${identifier(column)} ${direction.toUpperCase()}`);
    const limit = options.limit === undefined ? '' : `LIMIT ${Math.max(0, Math.floor(options.limit))}`;
    const [rows] = await this.pool.query<RowDataPacket[]>(
      `SELECT ${Object.keys(table.columns).map(identifier).join(', ')} FROM ${identifier(table.name)}
       ${where} ORDER BY ${order.join(', ')} ${limit}`,
    );
    return rows.map((row) => decodeRow(table, row));
  }

  async close(): Promise<void> {
    if (this.ownsPool) await this.pool.end();
  }

  /** Runs `work` in one transaction on one pooled connection. */
  /**
   * `work` in one transaction, with autocommit off rather than `START TRANSACTION`: a batch queues
   * its statements on the connection together, and InnoDB ends the whole transaction at a deadlock.
   * Under `START TRANSACTION` the statements queued behind the one that failed would then run in
   * autocommit and commit, and the retry from the old checkpoint would apply them twice; with
   * autocommit off they open a new transaction, which the rollback discards.
   */
  private async transaction<T>(work: (connection: PoolConnection) => Promise<T>): Promise<T> {
    const connection = await this.pool.getConnection();
    let reusable = true;
    try {
      await connection.query('SET autocommit = 0');
      const result = await work(connection);
      await connection.commit();
      return result;
    } catch (error) {
      await connection.rollback().catch(() => {
        reusable = false;
      });
      throw error;
    } finally {
      // The pool's other users read in autocommit.
      if (reusable) await connection.query('SET autocommit = 1').catch(() => (reusable = false));
      if (reusable) connection.release();
      else connection.destroy();
    }
  }

  /** A named lock's name: server-wide and at most 64 characters, so a digest of database and `what`. */
  private lockName(what: string): string {
    return mysql.escape(
      `tradecore_rm_${createHash('sha256').update(`${this.database}.${what}`).digest('hex').slice(0, 40)}`,
    );
  }

  /**
   * A named lock of its own, taken without waiting, on a connection kept for the rebuild: a second
   * rebuild of the projection, in any process, finds it taken and is refused; the server lets it
   * go with the connection if this process dies.
   */
  async claimRebuild(projection: ProjectionDefinition): Promise<() => Promise<void>> {
    const name = this.lockName(`${projection.name}.rebuild`);
    const connection = await this.pool.getConnection();
    try {
      const [[lock]] = await connection.query<RowDataPacket[]>(`SELECT GET_LOCK(${name}, 0) AS locked`);
      if (Number(lock?.locked) !== 1) throw new RebuildRunning(projection.name);
    } catch (error) {
      connection.release();
      throw error;
    }
    return async () => {
      await connection.query(`SELECT RELEASE_LOCK(${name})`).then(
        () => connection.release(),
        () => connection.destroy(),
      );
    };
  }

  /** Serialises DDL on one projection across processes: a named lock held by one connection. */
  private async withLock(projection: string, work: (connection: PoolConnection) => Promise<void>) {
    const name = this.lockName(projection);
    const connection = await this.pool.getConnection();
    let reusable = true;
    try {
      const [[lock]] = await connection.query<RowDataPacket[]>(
        `SELECT GET_LOCK(${name}, ${LOCK_TIMEOUT_SECONDS}) AS locked`,
      );
      if (Number(lock?.locked) !== 1)
        throw new Error(`read model ${projection}: timed out waiting for another process's schema change`);
      try {
        await work(connection);
      } finally {
        // A connection that cannot release the lock is closed instead: the server releases it then.
        await connection.query(`SELECT RELEASE_LOCK(${name})`).catch(() => {
          reusable = false;
        });
      }
    } finally {
      if (reusable) connection.release();
      else connection.destroy();
    }
  }
}

/** A mysql2 pool as the store needs it: UTC dates, JSON as text, matched-row counts, statements sent as written. */
export function mysqlPool(url: string, connectionLimit = 10): Pool {
  return mysql.createPool({
    uri: url,
    connectionLimit,
    // DATETIME values are UTC: read back as Dates in UTC.
    timezone: 'Z',
    // MySQL 8 parses JSON columns and MariaDB (JSON is LONGTEXT there) does not: text from both, parsed here.
    jsonStrings: true,
    // UPDATE reports the rows it matched, not only those it changed: the checkpoint compare-and-set needs it.
    flags: ['FOUND_ROWS'],
    enableKeepAlive: true,
    // The store's statements carry literals and no values: mysql2 would still scan each one (up
    // to a megabyte) for placeholders it then leaves as they are. Statements with values are
    // formatted as mysql2 does by default.
    queryFormat: (sql: string, values: Parameters<typeof mysql.format>[1]) =>
      Array.isArray(values) && values.length === 0 ? sql : mysql.format(sql, values, false, 'Z'),
  });
}

/**
 * A binary collation, so that keys compare and sort exactly as Postgres compares them ('A' and
 * 'a' are two accounts); a NO PAD one where the server has it, so trailing spaces count too.
 */
async function binaryCollation(pool: Pool): Promise<string> {
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT COLLATION_NAME AS name FROM information_schema.COLLATIONS
      WHERE COLLATION_NAME IN ('utf8mb4_0900_bin', 'utf8mb4_nopad_bin')`,
  );
  return rows[0] ? String(rows[0].name) : 'utf8mb4_bin';
}

/**
 * How `where` compares a JSON column with a value as JSON (key order and spacing aside): MySQL 8
 * compares JSON with JSON, MariaDB stores JSON as text and has JSON_EQUALS from 10.7 on.
 */
type JsonEquality = 'cast' | 'json_equals' | 'text';

async function jsonEquality(pool: Pool): Promise<JsonEquality> {
  const [[row]] = await pool.query<RowDataPacket[]>('SELECT VERSION() AS version');
  const version = String(row?.version ?? '');
  const [major = 0, minor = 0] = version.split(/[.-]/).map(Number);
  if (!/mariadb/i.test(version)) return 'cast';
  return major > 10 || (major === 10 && minor >= 7) ? 'json_equals' : 'text';
}

function createTable(name: string, table: TableDefinition, collation: string, withIndexes: boolean): string {
  // InnoDB indexes TEXT only through a prefix: key and indexed text columns are VARCHAR(191),
  // which fits the index limit of utf8mb4 on every server.
  const indexed = new Set([...table.primaryKey, ...(table.indexes ?? []).flat()]);
  const keys = new Set(table.primaryKey);
  const columns = Object.entries(table.columns).map(
    ([column, definition]) =>
      // Columns a change does not name are null, so only key columns are NOT NULL.
      `${identifier(column)} ${sqlType(definition, indexed.has(column))} ${keys.has(column) ? 'NOT NULL' : 'NULL'}`,
  );
  const indexes = (withIndexes ? (table.indexes ?? []) : []).map(
    (index) => `INDEX ${identifier(indexName(index))} (${index.map(identifier).join(', ')})`,
  );
  return `CREATE TABLE IF NOT EXISTS ${identifier(name)} (
    ${[...columns, `PRIMARY KEY (${table.primaryKey.map(identifier).join(', ')})`, ...indexes].join(',\n    ')}
  ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=${collation}`;
}

/** Index names belong to their table in MySQL: the same name before and after the swap. */
function indexName(index: string[]): string {
  return `${index.join('_')}_idx`;
}

function sqlType(column: Column, indexed: boolean): string {
  switch (column.type) {
    case 'text':
      return indexed ? 'VARCHAR(191)' : 'TEXT';
    case 'int':
      return 'INT';
    case 'bigint':
      return 'BIGINT';
    case 'boolean':
      return 'BOOLEAN';
    case 'timestamp':
      return 'DATETIME(3)';
    case 'json':
      return 'JSON';
  }
}

/**
 * The value a column takes when the row exists. Unqualified names are the row's current values,
 * VALUES(column) the incoming ones. GREATEST and LEAST are NULL when either side is: COALESCE
 * keeps the other side, as Postgres does.
 */
function updateExpression(column: string, op: string): string {
  const current = identifier(column);
  const incoming = `VALUES(${current})`;
  switch (op) {
    case 'add':
      return `COALESCE(${current}, 0) + ${incoming}`;
    case 'max':
      return `COALESCE(GREATEST(${current}, ${incoming}), ${current}, ${incoming})`;
    case 'min':
      return `COALESCE(LEAST(${current}, ${incoming}), ${current}, ${incoming})`;
    default:
      return incoming;
  }
}

/** Groups rows into statements below MAX_STATEMENT_BYTES. */
function* statementChunks(tuples: string[]): Generator<string[]> {
  let chunk: string[] = [];
  let size = 0;
  for (const tuple of tuples) {
    if (chunk.length > 0 && size + tuple.length > MAX_STATEMENT_BYTES) {
      yield chunk;
      chunk = [];
      size = 0;
    }
    chunk.push(tuple);
    size += tuple.length + 2;
  }
  if (chunk.length > 0) yield chunk;
}

/** A value as a SQL literal for its column: statements carry no parameters, so they can be measured. */
function literal(table: TableDefinition, column: string, value: Value | undefined): string {
  return typedLiteral(table.columns[column]?.type, value);
}

/** `literal` for a column of type `type`. */
function typedLiteral(type: ColumnType | undefined, value: Value | undefined): string {
  if (value === null || value === undefined) return 'NULL';
  switch (type) {
    case 'json':
      return mysql.escape(JSON.stringify(value));
    case 'timestamp':
      return dateLiteral(value instanceof Date ? value : new Date(value as string | number));
    case 'boolean':
      return value ? 'TRUE' : 'FALSE';
    case 'int':
    case 'bigint':
      return integer(Number(value));
    default:
      return mysql.escape(value instanceof Date ? value.toISOString() : (value as string | number | boolean));
  }
}

/**
 * A UTC DATETIME(3) literal, whatever the connection's time zone: the ISO text without its `Z`
 * (MySQL and MariaDB take a `T` between date and time), one slice per date written.
 */
function dateLiteral(date: Date): string {
  if (Number.isNaN(date.getTime())) throw new Error('invalid date in a read-model change');
  return `'${date.toISOString().slice(0, 23)}'`;
}

function integer(value: number): string {
  if (!Number.isSafeInteger(value)) throw new Error(`not an integer a read model can store: ${value}`);
  return String(value);
}

function decodeRow(table: TableDefinition, row: RowDataPacket): Row {
  const decoded: Row = {};
  for (const [column, definition] of Object.entries(table.columns)) {
    const value = row[column] as unknown;
    if (value === null || value === undefined) {
      decoded[column] = null;
      continue;
    }
    switch (definition.type) {
      case 'int':
      case 'bigint':
        decoded[column] = Number(value);
        break;
      case 'boolean':
        decoded[column] = Number(value) !== 0;
        break;
      case 'timestamp':
        decoded[column] = value instanceof Date ? value : new Date(`${String(value).replace(' ', 'T')}Z`);
        break;
      case 'json':
        decoded[column] = (typeof value === 'string' ? JSON.parse(value) : value) as Value;
        break;
      default:
        decoded[column] = String(value);
    }
  }
  return decoded;
}

function identifier(name: string): string {
  if (!/^[a-z_][a-z0-9_]*$/.test(name) || name.length > MAX_IDENTIFIER_LENGTH)
    throw new Error(`not a MySQL read-model name (a-z, 0-9, _, at most 64 characters): "${name}"`);
  return `\`${name}\``;
}

/** Every table a projection can need, with its longest suffix, must be a valid name. */
function assertNames(projection: ProjectionDefinition): void {
  identifier(`${projection.name}__checkpoint__rebuild`);
  for (const table of projection.tables) {
    identifier(`${table.name}__rebuild`);
    for (const column of Object.keys(table.columns)) identifier(column);
  }
}

function isMissingTable(error: unknown): boolean {
  return typeof error === 'object' && error !== null && 'code' in error && error.code === 'ER_NO_SUCH_TABLE';
}
