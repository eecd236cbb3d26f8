import { afterAll, describe, expect, it } from 'vitest';
import { inlineParameters, pgliteClient } from './client.ts';

const client = await pgliteClient();
afterAll(() => client.close());

describe('PGlite client: parameters written as literals', () => {
  it('round-trips awkward text: quotes, backslashes, placeholders and a statement of its own', async () => {
    const awkward = ["it's", 'back\\slash', '$1 and $2', "'); DROP TABLE x; --", 'naïve ünïcödé', ''];
    for (const text of awkward) {
      const [row] = await client.query<{ value: string }>('SELECT $1::text AS value', [text]);
      expect(row!.value).toBe(text);
    }
  });

  it('types numbers, booleans, nulls, dates and JSON by their context, as parameters are', async () => {
    const at = new Date('2026-11-27T10:15:30.123Z');
    const [row] = await client.query<Record<string, unknown>>(
      'SELECT $1::bigint AS big, $2::int + 1 AS next, $3::boolean AS yes, $4::text IS NULL AS missing, $5::timestamptz AS at, $6::jsonb AS doc',
      [9_007_199_254_740_991, 41, true, null, at, { quote: "it's", list: [1, 'two'] }],
    );
    expect(row).toEqual({
      big: 9_007_199_254_740_991,
      next: 42,
      yes: true,
      missing: true,
      at,
      doc: { quote: "it's", list: [1, 'two'] },
    });
  });

  it('writes arrays as array literals, elements escaped, nulls kept', async () => {
    const values = ['a,b', 'say "hi"', 'back\\slash', null, "it's", '{braces}'];
    const rows = await client.query<{ value: string | null; ordinal: number }>(
      'SELECT value, ordinal::int FROM unnest($1::text[]) WITH ORDINALITY AS u(value, ordinal) ORDER BY ordinal',
      [values],
    );
    expect(rows.map((row) => row.value)).toEqual(values);
    const [numbers] = await client.query<{ total: number }>(
      'SELECT sum(n)::int AS total FROM unnest($1::int[]) AS n',
      [[1, 2, 3]],
    );
    expect(numbers!.total).toBe(6);
  });

  it('runs parameterised statements inside a transaction, and rolls back on error', async () => {
    await client.query('CREATE TABLE IF NOT EXISTS literal_test (id int PRIMARY KEY, note text)');
    await expect(
      client.transaction(async (tx) => {
        await tx.query('INSERT INTO literal_test VALUES ($1, $2)', [1, "kept'?"]);
        await tx.query('INSERT INTO literal_test VALUES ($1, $2)', [1, 'duplicate']);
      }),
    ).rejects.toThrow(/duplicate key/);
    expect(await client.query('SELECT * FROM literal_test')).toEqual([]);
  });

  it('refuses a placeholder without a parameter', () => {
    expect(() => inlineParameters('SELECT $1, $2', ['only one'])).toThrow('$2 has no parameter (1 given)');
    expect(inlineParameters('SELECT 1')).toBe('SELECT 1');
    expect(
      inlineParameters(
        'SELECT $10, $1',
        Array.from({ length: 10 }, (_, i) => i + 1),
      ),
    ).toBe("SELECT '10', '1'");
  });
});
