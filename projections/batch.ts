import { type Change, type Row, type TableDefinition, tableOf, type Value } from './model.ts';

/**
 * Turns a batch of changes into as few statements as possible: changes to the same row are
 * merged (sets overwrite, increments add up, max/min combine), so a batch of ten thousand
 * events may touch each row once. Changes that cannot be merged start a new wave; waves run in
 * order, in the one transaction of the batch.
 */

export type ColumnOp = 'insert' | 'set' | 'add' | 'max' | 'min';

/**
 * The columns a planned row writes (key columns aside) and each one's operation, in order. Rows
 * with the same columns and operations share one `Shape` object, so a store groups rows into
 * statements by identity, and a row is its shape plus an array of values: no map, no object per
 * column, no shape string per row.
 */
export interface Shape {
  readonly columns: readonly string[];
  readonly ops: readonly ColumnOp[];
  /** Each column's place in `columns`, and in a row's `values`. */
  readonly index: ReadonlyMap<string, number>;
  /** The shapes one more column longer, by the column's operation and name (a trie of shapes). */
  readonly next: Partial<Record<ColumnOp, Map<string, Shape>>>;
}

export interface MergedUpsert {
  table: string;
  key: Row;
  shape: Shape;
  /** The value of each of the shape's columns. */
  values: Value[];
  /** The row is deleted first (a delete came before these upserts in the batch). */
  replace: boolean;
}

export interface Wave {
  /** Keys to delete, by table (rows deleted and not re-created in this wave). */
  deletes: Map<string, Row[]>;
  upserts: Map<string, MergedUpsert[]>;
}

/**
 * A row's identity as one string, for a map of rows by string (the in-memory tables of tests; a
 * plan keeps its rows in a `RowMap`, which builds nothing per change). Values are written as JSON
 * (a string cannot pass for a number, nor a separator for a column boundary) — but numbers and
 * strings without a NUL, nearly every key, are written as they are behind a type letter; dates
 * as their instant.
 */
export function rowKey(table: string, key: Row): string {
  let id = table;
  let previous = '';
  for (const column in key) {
    // Key columns are listed in name order, whatever order the change wrote them in.
    if (column < previous) return rowKeyOf(table, key, Object.keys(key).sort());
    id += keyPart(column, key[column]);
    previous = column;
  }
  return id;
}

function rowKeyOf(table: string, key: Row, columns: string[]): string {
  let id = table;
  for (const column of columns) id += keyPart(column, key[column]);
  return id;
}

function keyPart(column: string, value: Value | undefined): string {
  if (typeof value === 'string' && !value.includes('\u0000')) return `\u0000${column}\u0000s${value}`;
  if (typeof value === 'number') return `\u0000${column}\u0000n${value}`;
  if (value instanceof Date) return `\u0000${column}\u0000D${value.getTime()}`;
  return `\u0000${column}\u0000J${JSON.stringify(value)}`;
}

/** One key column's level of a `RowMap`: the next column's levels (or the rows) by the column's value. */
type Level = Map<unknown, unknown>;

/** A level's keys of its sub-levels holding dates (by instant) and JSON values (by their text). */
const DATES = Symbol('dates');
const JSON_VALUES = Symbol('json');

/** A table's rows keyed by one list of key columns; rows keyed by other columns are in `other`. */
interface KeyTrie {
  /** In the order of the first key seen: the order of the levels. */
  readonly columns: readonly string[];
  readonly root: Level;
  other?: KeyTrie;
}

/**
 * Values by row — table and key — in nested maps, one level per key column: finding a row costs a
 * map lookup per column and builds no string (as `rowKey` would, once per change), and a
 * rebuild's record of the rows it wrote holds no string per row. Strings, numbers, booleans and
 * null are map keys as they are (a map tells 1 from '1'); dates go by their instant and other
 * values by their JSON, each in a map of their own, so no value passes for another. Keys listing
 * the same columns in another order find the same row.
 */
export class RowMap<T> {
  private readonly tables = new Map<string, KeyTrie>();
  private count = 0;
  /** The key's values in its trie's column order, filled by `leaf`. */
  private readonly values: (Value | undefined)[] = [];
  /** The row's key in the level `leaf` returned. */
  private slot: unknown;

  /** How many rows hold a value. */
  get size(): number {
    return this.count;
  }

  get(table: string, key: Row): T | undefined {
    return this.leaf(table, key, false)?.get(this.slot) as T | undefined;
  }

  set(table: string, key: Row, value: T): void {
    const leaf = this.leaf(table, key, true)!;
    if (!leaf.has(this.slot)) this.count++;
    leaf.set(this.slot, value);
  }

  /** The level holding the row's value (at `slot`); undefined when missing and not `create`d. */
  private leaf(table: string, key: Row, create: boolean): Level | undefined {
    let trie = this.tables.get(table);
    if (!trie) {
      if (!create) return undefined;
      trie = { columns: Object.keys(key), root: new Map() };
      this.tables.set(table, trie);
    }
    const { values } = this;
    let count = 0;
    let inOrder = true;
    for (const column in key) {
      if (column !== trie.columns[count]) inOrder = false;
      values[count++] = key[column];
    }
    if (!inOrder || count !== trie.columns.length) {
      const other = otherTrie(trie, key, count, create);
      if (!other) return undefined;
      trie = other;
      for (let index = 0; index < count; index++) values[index] = key[trie.columns[index]!];
    }
    let level = trie.root;
    for (let index = 0; index < count; index++) {
      const holder = this.place(level, values[index], create);
      if (!holder) return undefined;
      if (index === count - 1) return holder;
      let next = holder.get(this.slot) as Level | undefined;
      if (!next) {
        if (!create) return undefined;
        next = new Map();
        holder.set(this.slot, next);
      }
      level = next;
    }
    // A key without columns: the table's one row.
    this.slot = undefined;
    return level;
  }

  /** The map of `level` a value is found in (its own, or one for dates or JSON), with its key in it at `slot`. */
  private place(level: Level, value: Value | undefined, create: boolean): Level | undefined {
    if (typeof value !== 'object' || value === null) {
      this.slot = value;
      return level;
    }
    const kind = value instanceof Date ? DATES : JSON_VALUES;
    this.slot = value instanceof Date ? value.getTime() : JSON.stringify(value);
    let holder = level.get(kind) as Level | undefined;
    if (!holder && create) {
      holder = new Map();
      level.set(kind, holder);
    }
    return holder;
  }
}

/** The trie of `key`'s columns (`count` of them) among the table's, made when missing and `create`. */
function otherTrie(first: KeyTrie, key: Row, count: number, create: boolean): KeyTrie | undefined {
  let trie = first;
  for (;;) {
    if (trie.columns.length === count && trie.columns.every((column) => column in key)) return trie;
    if (!trie.other) break;
    trie = trie.other;
  }
  if (!create) return undefined;
  trie.other = { columns: Object.keys(key), root: new Map() };
  return trie.other;
}

type Upsert = Extract<Change, { kind: 'upsert' }>;

/** The parts of an upsert, in the order their columns are listed. */
const operations = ['insert', 'set', 'add', 'max', 'min'] as const;

function emptyShape(): Shape {
  return { columns: [], ops: [], index: new Map(), next: {} };
}

/** `shape` with `column` and its operation appended, made once per batch plan. */
function extended(shape: Shape, column: string, op: ColumnOp): Shape {
  let byName = shape.next[op];
  if (!byName) {
    byName = new Map();
    shape.next[op] = byName;
  }
  let next = byName.get(column);
  if (!next) {
    next = {
      columns: [...shape.columns, column],
      ops: [...shape.ops, op],
      index: new Map(shape.index).set(column, shape.columns.length),
      next: {},
    };
    byName.set(column, next);
  }
  return next;
}

export function planBatch(changes: Change[]): Wave[] {
  const plan = new BatchPlan();
  plan.add(changes);
  return plan.waves();
}

/**
 * `planBatch`, a page of changes at a time: a rebuild plans each page as it is projected, so the
 * changes of a window die young (merged into rows already planned, or copied into a row's
 * values) instead of living in memory until the whole window is written.
 */
export class BatchPlan {
  private readonly root = emptyShape();
  private readonly planned: Wave[] = [];
  /** The rows of the wave being planned, and the same in the order they came. */
  private pending = new RowMap<PendingRow>();
  private pendingRows: PendingRow[] = [];
  /**
   * `merge`'s work space, reused from one change to the next: the places of the columns a change
   * names, their merged values and operations, and its columns new to the row.
   */
  private readonly merged: { indexes: number[]; values: Value[]; ops: ColumnOp[] } = {
    indexes: [],
    values: [],
    ops: [],
  };
  private readonly added: { columns: string[]; values: Value[]; ops: ColumnOp[] } = {
    columns: [],
    values: [],
    ops: [],
  };
  /** Which merge last named each column place, by its number (`merges`): a column named twice shows. */
  private readonly namedBy: number[] = [];
  private merges = 0;

  add(changes: readonly Change[]): void {
    for (const change of changes) this.addOne(change);
  }

  /** The waves planned; the plan is spent. */
  waves(): Wave[] {
    this.flush();
    return this.planned;
  }

  private addOne(change: Change): void {
    const { root } = this;
    let entry = this.pending.get(change.table, change.key);
    if (change.kind === 'delete') {
      // A delete of a row already re-created in this wave needs the earlier wave applied first.
      if (entry?.upsert?.replace) {
        this.flush();
        entry = undefined;
      }
      if (!entry) this.pend({ table: change.table, key: change.key, deleted: true });
      else {
        entry.key = change.key;
        entry.deleted = true;
        entry.upsert = undefined;
      }
      return;
    }
    if (!entry) entry = this.pend({ table: change.table, key: change.key, deleted: false });
    if (!entry.upsert) {
      entry.upsert = planned(root, change, entry.deleted);
      return;
    }
    if (!this.merge(entry.upsert, change)) {
      this.flush();
      this.pend({
        table: change.table,
        key: change.key,
        deleted: false,
        upsert: planned(root, change, false),
      });
    }
  }

  private pend(entry: PendingRow): PendingRow {
    this.pending.set(entry.table, entry.key, entry);
    this.pendingRows.push(entry);
    return entry;
  }

  /**
   * Merges `change` (later) into `upsert` (earlier, owned by the plan and updated in place); false,
   * leaving `upsert` as it was, when some column cannot be merged. Reads the change's parts once,
   * into the work space, and writes the row only once every column is known to merge: most
   * changes of a batch are merged into a row already planned, so they never get a plan of their own.
   */
  private merge(upsert: MergedUpsert, change: Upsert): boolean {
    const { shape } = upsert;
    const { merged, added, namedBy } = this;
    const number = ++this.merges;
    let count = 0;
    let news = 0;
    for (const op of operations) {
      const row = change[op];
      for (const column in row) {
        const value = row[column] as Value;
        const index = shape.index.get(column);
        if (index === undefined) {
          // Key columns are not in the shape (rows merged share their key columns): skipped.
          if (column in change.key) continue;
          for (let other = 0; other < news; other++)
            if (added.columns[other] === column) throw twoOperations(change, column);
          added.columns[news] = column;
          added.values[news] = value;
          added.ops[news] = op;
          news++;
          continue;
        }
        if (namedBy[index] === number) throw twoOperations(change, column);
        namedBy[index] = number;
        const previous = shape.ops[index]!;
        if (!mergeable(previous, op)) return false;
        merged.indexes[count] = index;
        merged.values[count] = combine(previous, upsert.values[index]!, op, value);
        merged.ops[count] = op;
        count++;
      }
    }
    // Operations only change to `set`, and new columns go last: the values keep their places.
    let ops: ColumnOp[] | undefined;
    for (let at = 0; at < count; at++) {
      const index = merged.indexes[at]!;
      upsert.values[index] = merged.values[at]!;
      if (merged.ops[at] === 'set' && shape.ops[index] !== 'set') {
        ops ??= [...shape.ops];
        ops[index] = 'set';
      }
    }
    if (news === 0 && !ops) return true;
    const current = ops ?? shape.ops;
    let next = this.root;
    for (let index = 0; index < current.length; index++)
      next = extended(next, shape.columns[index]!, current[index]!);
    for (let at = 0; at < news; at++) {
      next = extended(next, added.columns[at]!, added.ops[at]!);
      upsert.values.push(added.values[at]!);
    }
    upsert.shape = next;
    return true;
  }

  private flush(): void {
    if (this.pendingRows.length === 0) return;
    const wave: Wave = { deletes: new Map(), upserts: new Map() };
    for (const entry of this.pendingRows) {
      if (entry.upsert) push(wave.upserts, entry.table, entry.upsert);
      else if (entry.deleted) push(wave.deletes, entry.table, entry.key);
    }
    this.planned.push(wave);
    this.pending = new RowMap();
    this.pendingRows = [];
  }
}

/** A row of the wave being planned: deleted first or not, and its merged upsert if any. */
interface PendingRow {
  table: string;
  key: Row;
  deleted: boolean;
  upsert?: MergedUpsert;
}

function planned(root: Shape, change: Upsert, replace: boolean): MergedUpsert {
  let shape = root;
  const values: Value[] = [];
  for (const op of operations) {
    const row = change[op];
    for (const column in row) {
      if (column in change.key) continue;
      if (shape.index.has(column)) throw twoOperations(change, column);
      shape = extended(shape, column, op);
      values.push(row[column] as Value);
    }
  }
  return { table: change.table, key: change.key, shape, values, replace };
}

function twoOperations(change: Upsert, column: string): Error {
  return new Error(`change to ${change.table}: column ${column} has two operations`);
}

/** Whether a column's `next` operation can follow its `previous` one in the same statement. */
function mergeable(previous: ColumnOp, next: ColumnOp): boolean {
  if (next === 'insert' || next === 'set') return true;
  if (previous === 'insert') return false;
  return previous === next || previous === 'set';
}

/** A column's planned value after a later operation (`mergeable` with the planned one). */
function combine(previous: ColumnOp, current: Value, op: ColumnOp, value: Value): Value {
  switch (op) {
    case 'insert':
      return current;
    case 'set':
      return value;
    // `previous` is `set` (a null set counts as 0 for an increment) or the same operation.
    case 'add':
      return Number(previous === 'set' ? (current ?? 0) : current) + Number(value);
    case 'max':
      return greater(current, value) ? current : value;
    case 'min':
      return greater(current, value) ? value : current;
  }
}

/**
 * Every row a rebuild's batches have written: a superset of the rows in its tables, which start
 * empty. A row not in it is new, so a store inserts it without a conflict check and sends no
 * delete for it (a book order resting and leaving within a window). Projections are
 * deterministic, so even a second process that took over the chain of checkpoints after the same
 * events wrote no row outside the set.
 */
export class RebuildRows {
  /** Past this many rows (a few hundred megabytes) a store forgets them and upserts every row. */
  static readonly limit = 2_000_000;
  private readonly rows = new RowMap<true>();

  get full(): boolean {
    return this.rows.size > RebuildRows.limit;
  }

  /** Splits `upserts` into rows new to the tables (remembered from now on) and rows that may exist. */
  split(upserts: MergedUpsert[]): { fresh: MergedUpsert[]; existing: MergedUpsert[] } {
    const fresh: MergedUpsert[] = [];
    const existing: MergedUpsert[] = [];
    for (const upsert of upserts) {
      if (this.rows.get(upsert.table, upsert.key)) existing.push(upsert);
      else {
        fresh.push(upsert);
        this.rows.set(upsert.table, upsert.key, true);
      }
    }
    return { fresh, existing };
  }

  /** The keys among `keys` that may be rows of `table`. */
  existing(table: string, keys: Row[]): Row[] {
    return keys.filter((key) => this.rows.get(table, key));
  }
}

function greater(a: Value, b: Value): boolean {
  if (a === null) return false;
  if (b === null) return true;
  return (
    (a instanceof Date ? a.getTime() : (a as number | string)) >
    (b instanceof Date ? b.getTime() : (b as number | string))
  );
}

function push<T>(map: Map<string, T[]>, key: string, value: T): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

/** How a SQL store writes deletes and upserts of one table as statements (`batchStatements`). */
export interface BatchWriter<Statement> {
  deletes(table: TableDefinition, keys: Row[]): Iterable<Statement>;
  /** `mayExist` false: the rows are new to the table and need no conflict check. */
  upserts(table: TableDefinition, upserts: MergedUpsert[], mayExist: boolean): Iterable<Statement>;
}

/**
 * A planned batch's statements in order: wave by wave, the deletes, then per table the deletes of
 * replaced rows and the upserts. In a rebuild (`written`), rows new to the rebuilt tables go
 * without a conflict check and keys never written are not deleted.
 */
export function* batchStatements<Statement>(
  tables: ReadonlyMap<string, TableDefinition>,
  waves: Wave[],
  writer: BatchWriter<Statement>,
  written?: RebuildRows,
): Generator<Statement, void> {
  const existing = (table: TableDefinition, keys: Row[]) => written?.existing(table.name, keys) ?? keys;
  for (const wave of waves) {
    for (const [name, keys] of wave.deletes) {
      const table = tableOf(tables, name);
      yield* writer.deletes(table, existing(table, keys));
    }
    for (const [name, upserts] of wave.upserts) {
      const table = tableOf(tables, name);
      const replaced = upserts.filter((upsert) => upsert.replace).map((upsert) => upsert.key);
      if (replaced.length > 0) yield* writer.deletes(table, existing(table, replaced));
      if (!written) {
        yield* writer.upserts(table, upserts, true);
        continue;
      }
      const rows = written.split(upserts);
      yield* writer.upserts(table, rows.fresh, false);
      yield* writer.upserts(table, rows.existing, true);
    }
  }
}
