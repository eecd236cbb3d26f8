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

export function rowKey(table: string, key: Row): string {
  return `${table}\u0000${JSON.stringify(
    Object.keys(key)
      .sort()
      .map((column) => [
        column,
        key[column] instanceof Date ? (key[column] as Date).toISOString() : key[column],
      ]),
  )}`;
}

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
    const incoming = columnsOf(change);
    if (!entry.upsert) {
      entry.upsert = { table: change.table, key: change.key, columns: incoming, replace: entry.deleted };
      continue;
    }
    if (!merge(entry.upsert.columns, incoming)) {
      flush();
      pending.set(id, {
        table: change.table,
        key: change.key,
        deleted: false,
        upsert: { table: change.table, key: change.key, columns: incoming, replace: false },
      });
    }
  }
  flush();
  return waves;
}

function columnsOf(change: Extract<Change, { kind: 'upsert' }>): Map<string, { op: ColumnOp; value: Value }> {
  const columns = new Map<string, { op: ColumnOp; value: Value }>();
  const put = (op: ColumnOp, row: Row | undefined) => {
    for (const column in row) {
      if (column in change.key) continue;
      if (columns.has(column))
        throw new Error(`change to ${change.table}: column ${column} has two operations`);
      columns.set(column, { op, value: row[column] as Value });
    }
  };
  put('insert', change.insert);
  put('set', change.set);
  put('add', change.add);
  put('max', change.max);
  put('min', change.min);
  return columns;
}

/** Merges `incoming` (later) into `current` (earlier); false when some column cannot be merged. */
function merge(
  current: Map<string, { op: ColumnOp; value: Value }>,
  incoming: Map<string, { op: ColumnOp; value: Value }>,
): boolean {
  const merged = new Map(current);
  for (const [column, next] of incoming) {
    const previous = merged.get(column);
    const result = previous ? combine(previous, next) : next;
    if (!result) return false;
    merged.set(column, result);
  }
  for (const [column, value] of merged) current.set(column, value);
  return true;
}

function combine(
  previous: { op: ColumnOp; value: Value },
  next: { op: ColumnOp; value: Value },
): { op: ColumnOp; value: Value } | undefined {
  if (next.op === 'insert') return previous;
  if (next.op === 'set') return next;
  if (previous.op === 'insert') return undefined;
  if (previous.op === next.op) {
    if (next.op === 'add') return { op: 'add', value: Number(previous.value) + Number(next.value) };
    if (next.op === 'max')
      return { op: 'max', value: greater(previous.value, next.value) ? previous.value : next.value };
    if (next.op === 'min')
      return { op: 'min', value: greater(previous.value, next.value) ? next.value : previous.value };
  }
  if (previous.op === 'set') {
    if (next.op === 'add') return { op: 'set', value: Number(previous.value ?? 0) + Number(next.value) };
    if (next.op === 'max')
      return { op: 'set', value: greater(previous.value, next.value) ? previous.value : next.value };
    if (next.op === 'min')
      return { op: 'set', value: greater(previous.value, next.value) ? next.value : previous.value };
  }
  return undefined;
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
