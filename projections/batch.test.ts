import { describe, expect, it } from 'vitest';
import { type MergedUpsert, planBatch, RebuildRows, RowMap, rowKey } from './batch.ts';
import type { Change, Row } from './model.ts';

const upsert = (key: string, parts: Omit<Extract<Change, { kind: 'upsert' }>, 'kind' | 'table' | 'key'>) =>
  ({ kind: 'upsert', table: 't', key: { k: key }, ...parts }) as Change;

/** A planned row as column → [operation, value], to compare plans without their shared shapes. */
function columnsOf(row: MergedUpsert): Record<string, unknown[]> {
  return Object.fromEntries(
    row.shape.columns.map((column, i) => [column, [row.shape.ops[i], row.values[i]]]),
  );
}

describe('planBatch', () => {
  it('merges the changes of a row: a set overrides, increments add up, new columns go last', () => {
    const [wave, ...rest] = planBatch([
      upsert('a', { insert: { open: 5 }, add: { volume: 2 }, max: { high: 5 } }),
      upsert('a', { insert: { open: 9 }, add: { volume: 3 }, max: { high: 4 }, set: { close: 4 } }),
      upsert('a', { set: { open: 7, volume: 1 } }),
      upsert('a', { add: { volume: 10 } }),
    ]);
    expect(rest).toEqual([]);
    const [row] = wave!.upserts.get('t')!;
    expect(columnsOf(row!)).toEqual({
      open: ['set', 7],
      volume: ['set', 11],
      high: ['max', 5],
      close: ['set', 4],
    });
    expect(row!.shape.columns).toEqual(['open', 'volume', 'high', 'close']);
  });

  it('gives rows written alike one shared shape, and rows written otherwise another', () => {
    const [wave] = planBatch([
      upsert('a', { set: { x: 1 }, add: { n: 1 } }),
      upsert('b', { set: { x: 2 }, add: { n: 1 } }),
      upsert('c', { add: { n: 1 } }),
      upsert('c', { set: { x: 3 } }),
    ]);
    const [a, b, c] = wave!.upserts.get('t')!;
    expect(a!.shape).toBe(b!.shape);
    expect(c!.shape).not.toBe(a!.shape);
    expect(columnsOf(c!)).toEqual({ n: ['add', 1], x: ['set', 3] });
  });

  it('starts a new wave for a change it cannot merge, and deletes before re-creating', () => {
    const waves = planBatch([
      upsert('a', { insert: { n: 1 } }),
      upsert('a', { add: { n: 1 } }),
      { kind: 'delete', table: 't', key: { k: 'b' } },
      upsert('b', { set: { n: 5 } }),
    ]);
    expect(waves).toHaveLength(2);
    expect(columnsOf(waves[0]!.upserts.get('t')![0]!)).toEqual({ n: ['insert', 1] });
    const second = waves[1]!.upserts.get('t')!;
    expect(second.map((row) => [row.key.k, row.replace, columnsOf(row)])).toEqual([
      ['a', false, { n: ['add', 1] }],
      ['b', true, { n: ['set', 5] }],
    ]);
  });

  it('keeps a row deleted and re-created in its first place, replacing it', () => {
    const [wave, ...rest] = planBatch([
      upsert('a', { set: { n: 1 } }),
      upsert('b', { set: { n: 2 } }),
      { kind: 'delete', table: 't', key: { k: 'a' } },
      { kind: 'delete', table: 't', key: { k: 'c' } },
      upsert('a', { set: { n: 3 } }),
    ]);
    expect(rest).toEqual([]);
    expect(wave!.upserts.get('t')!.map((row) => [row.key.k, row.replace, columnsOf(row)])).toEqual([
      ['a', true, { n: ['set', 3] }],
      ['b', false, { n: ['set', 2] }],
    ]);
    expect(wave!.deletes.get('t')).toEqual([{ k: 'c' }]);
  });

  it('refuses a change naming a column twice', () => {
    expect(() => planBatch([upsert('a', { set: { n: 1 }, add: { n: 1 } })])).toThrow(/two operations/);
    expect(() =>
      planBatch([upsert('a', { set: { m: 1 } }), upsert('a', { set: { n: 1 }, add: { n: 1 } })]),
    ).toThrow(/two operations/);
    expect(() =>
      planBatch([upsert('a', { set: { n: 1 } }), upsert('b', { set: { n: 1 }, add: { n: 1 } })]),
    ).toThrow(/two operations/);
    // Merged into a row that has the column already, and into one whose operation would refuse it.
    expect(() =>
      planBatch([upsert('a', { set: { n: 1 } }), upsert('a', { set: { n: 2 }, add: { n: 1 } })]),
    ).toThrow(/two operations/);
    expect(() =>
      planBatch([
        upsert('a', { insert: { n: 1 } }),
        upsert('a', { set: { m: 1 }, add: { n: 1 }, max: { m: 1 } }),
      ]),
    ).toThrow(/two operations/);
  });
});

describe('rowKey', () => {
  it('tells apart values that print alike', () => {
    const keys = [
      rowKey('t', { k: '1' }),
      rowKey('t', { k: 1 }),
      rowKey('t', { k: 'a\u0000k\u0000sb' }),
      rowKey('t', { k: 'a', l: 'b' }),
      rowKey('t', { k: new Date(1) }),
      rowKey('t', { k: 'D1' }),
    ];
    expect(new Set(keys).size).toBe(keys.length);
    expect(rowKey('t', { a: 1, b: 'x' })).toBe(rowKey('t', { b: 'x', a: 1 }));
  });
});

describe('RowMap', () => {
  it("tells apart rows whose values print alike, and finds a row whatever its key columns' order", () => {
    const rows = new RowMap<number>();
    const keys: Array<[string, Row]> = [
      ['t', { k: '1' }],
      ['t', { k: 1 }],
      ['t', { k: new Date(1) }],
      ['t', { k: [1] }],
      ['t', { k: '[1]' }],
      ['t', { k: true }],
      ['t', { k: 'true' }],
      ['t', { k: null }],
      ['t', { k: 'null' }],
      ['t', { k: 'a', l: 'b' }],
      ['t', { k: 'a', m: 'b' }],
      ['t', { l: 'a' }],
      ['t', {}],
      ['u', { k: '1' }],
    ];
    for (const [index, [table, key]] of keys.entries()) rows.set(table, key, index);
    expect(rows.size).toBe(keys.length);
    for (const [index, [table, key]] of keys.entries()) expect(rows.get(table, key)).toBe(index);
    expect(rows.get('t', { k: new Date(1) })).toBe(2);
    expect(rows.get('t', { l: 'b', k: 'a' })).toBe(9);
    expect(rows.get('t', { m: 'b', k: 'a' })).toBe(10);
    expect(rows.get('t', { k: 'a' })).toBeUndefined();
    expect(rows.get('t', { k: 'a', l: 'c' })).toBeUndefined();
    expect(rows.get('t', { k: new Date(2) })).toBeUndefined();
    expect(rows.get('v', { k: '1' })).toBeUndefined();
    rows.set('t', { l: 'b', k: 'a' }, 99);
    expect(rows.size).toBe(keys.length);
    expect(rows.get('t', { k: 'a', l: 'b' })).toBe(99);
  });
});

describe('RebuildRows', () => {
  it('calls a row new until it has been written once, and sends deletes only for rows written', () => {
    const rows = new RebuildRows();
    const plan = (keys: string[]) =>
      planBatch(keys.map((k) => upsert(k, { add: { n: 1 } })))[0]!.upserts.get('t')!;
    const first = rows.split(plan(['a', 'b']));
    expect(first.fresh.map((row) => row.key.k)).toEqual(['a', 'b']);
    expect(first.existing).toEqual([]);
    const second = rows.split(plan(['b', 'c']));
    expect(second.fresh.map((row) => row.key.k)).toEqual(['c']);
    expect(second.existing.map((row) => row.key.k)).toEqual(['b']);
    expect(rows.existing('t', [{ k: 'a' }, { k: 'z' }, { k: 'c' }])).toEqual([{ k: 'a' }, { k: 'c' }]);
    expect(rows.existing('other', [{ k: 'a' }])).toEqual([]);
  });
});
