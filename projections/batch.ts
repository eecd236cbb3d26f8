import type { Change, Row, Value } from './model.ts';

/**
 * Turns a batch of changes into as few statements as possible: changes to the same row are
 * merged (sets overwrite, increments add up, max/min combine), so a batch of ten thousand
 * events may touch each row once. Changes that cannot be merged start a new wave; waves run in
 * order, in the one transaction of the batch.
 */

export type ColumnOp = 'insert' | 'set' | 'add' | 'max' | 'min';

export interface MergedUpsert {
  table: string;
  key: Row;
  /** Each column's operation and value; key columns are not listed. */
  columns: Map<string, { op: ColumnOp; value: Value }>;
  /** The row is deleted first (a delete came before these upserts in the batch). */
  replace: boolean;
}

export interface Wave {
  /** Keys to delete, by table (rows deleted and not re-created in this wave). */
  deletes: Map<string, Row[]>;
  upserts: Map<string, MergedUpsert[]>;
}

/**
 * A row's identity within a batch. Values are written as JSON (a string cannot pass for a number,
 * nor a separator for a column boundary); dates as their instant. Called once per change, so it
 * builds one string and nothing else.
 */
export function rowKey(table: string, key: Row): string {
  const columns = Object.keys(key);
  if (columns.length > 1) columns.sort();
  let id = table;
  for (const column of columns) {
    const value = key[column];
    id += `\u0000${column}\u0000${value instanceof Date ? `D${value.getTime()}` : JSON.stringify(value)}`;
  }
  return id;
}

type Upsert = Extract<Change, { kind: 'upsert' }>;
type Column = { op: ColumnOp; value: Value };

/** The parts of an upsert, in the order their columns are listed. */
const operations = ['insert', 'set', 'add', 'max', 'min'] as const;

export function planBatch(changes: Change[]): Wave[] {
  const waves: Wave[] = [];
  let pending = new Map<string, { table: string; key: Row; deleted: boolean; upsert?: MergedUpsert }>();

  const flush = () => {
    if (pending.size === 0) return;
    const wave: Wave = { deletes: new Map(), upserts: new Map() };
    for (const entry of pending.values()) {
      if (entry.upsert) push(wave.upserts, entry.table, entry.upsert);
      else if (entry.deleted) push(wave.deletes, entry.table, entry.key);
    }
    waves.push(wave);
    pending = new Map();
  };

  for (const change of changes) {
    const id = rowKey(change.table, change.key);
    let entry = pending.get(id);
    if (change.kind === 'delete') {
      // A delete of a row already re-created in this wave needs the earlier wave applied first.
      if (entry?.upsert?.replace) {
        flush();
        entry = undefined;
      }
      pending.set(id, { table: change.table, key: change.key, deleted: true });
      continue;
    }
    if (!entry) {
      entry = { table: change.table, key: change.key, deleted: false };
      pending.set(id, entry);
    }
    if (!entry.upsert) {
      entry.upsert = {
        table: change.table,
        key: change.key,
        columns: columnsOf(change),
        replace: entry.deleted,
      };
      continue;
    }
    if (!merge(entry.upsert.columns, change)) {
      flush();
      pending.set(id, {
        table: change.table,
        key: change.key,
        deleted: false,
        upsert: { table: change.table, key: change.key, columns: columnsOf(change), replace: false },
      });
    }
  }
  flush();
  return waves;
}

function columnsOf(change: Upsert): Map<string, Column> {
  const columns = new Map<string, Column>();
  for (const op of operations) {
    const row = change[op];
    for (const column in row) {
      if (column in change.key) continue;
      if (columns.has(column))
        throw new Error(`change to ${change.table}: column ${column} has two operations`);
      columns.set(column, { op, value: row[column] as Value });
    }
  }
  return columns;
}

/**
 * Merges `change` (later) into `current` (earlier, owned by the batch plan and updated in
 * place); false, leaving `current` as it was, when some column cannot be merged. Reads the
 * change's parts directly: most changes of a batch are merged into a row already planned, so
 * they never get a column map of their own.
 */
function merge(current: Map<string, Column>, change: Upsert): boolean {
  let parts = 0;
  for (const op of operations) {
    const row = change[op];
    if (!row) continue;
    parts += 1;
    for (const column in row) {
      if (column in change.key) continue;
      const previous = current.get(column);
      if (previous && !mergeable(previous.op, op)) return false;
    }
  }
  if (parts > 1) assertOneOperationPerColumn(change);
  for (const op of operations) {
    const row = change[op];
    for (const column in row) {
      if (column in change.key) continue;
      const value = row[column] as Value;
      const previous = current.get(column);
      if (previous) combine(previous, op, value);
      else current.set(column, { op, value });
    }
  }
  return true;
}

function assertOneOperationPerColumn(change: Upsert): void {
  const seen = new Set<string>();
  for (const op of operations)
    for (const column in change[op]) {
      if (seen.has(column)) throw new Error(`change to ${change.table}: column ${column} has two operations`);
      seen.add(column);
    }
}

/** Whether a column's `next` operation can follow its `previous` one in the same statement. */
function mergeable(previous: ColumnOp, next: ColumnOp): boolean {
  if (next === 'insert' || next === 'set') return true;
  if (previous === 'insert') return false;
  return previous === next || previous === 'set';
}

/** Applies a later operation (`mergeable` with it) to a column's planned one, in place. */
function combine(previous: Column, op: ColumnOp, value: Value): void {
  switch (op) {
    case 'insert':
      return;
    case 'set':
      previous.op = 'set';
      previous.value = value;
      return;
    // `previous` is `set` (a null set counts as 0 for an increment) or the same operation.
    case 'add':
      previous.value = Number(previous.op === 'set' ? (previous.value ?? 0) : previous.value) + Number(value);
      return;
    case 'max':
      if (!greater(previous.value, value)) previous.value = value;
      return;
    case 'min':
      if (greater(previous.value, value)) previous.value = value;
      return;
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
