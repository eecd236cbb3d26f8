import { PGlite, type Results } from '@electric-sql/pglite';
import type { SqlClient } from '../shared/sql-client.ts';

/**
 * An embedded Postgres (WASM) in `dataDir`, or in memory when `dataDir` is undefined.
 *
 * Every statement goes through PGlite's simple query protocol, its parameters written into the
 * text as quoted literals (`inlineParameters`): PGlite's extended protocol costs six calls into
 * the WASM module per statement (parse, two describes, bind, execute, sync), the simple one two,
 * and in the embedded mode those calls are most of what a statement costs the one JavaScript
 * thread. A quoted literal is typed by its context exactly as an untyped parameter is, so the
 * SQL is the same as on Postgres.
 */
export async function pgliteClient(dataDir?: string): Promise<SqlClient & { db: PGlite }> {
  const db = await PGlite.create(dataDir);
  return {
    db,
    async query<Row>(text: string, params?: unknown[]) {
      return rowsOf<Row>(await db.exec(inlineParameters(text, params)));
    },
    async transaction(work) {
      return db.transaction((tx) =>
        work({
          query: async <Row>(text: string, params?: unknown[]) =>
            rowsOf<Row>(await tx.exec(inlineParameters(text, params))),
        }),
      );
    },
    async exec(text: string) {
      await db.transaction(async (tx) => {
        await tx.exec(text);
      });
    },
    async listen(channel, onNotify) {
      return db.listen(channel, onNotify);
    },
    async close() {
      await db.close();
    },
  };
}

/** The rows of a one-statement text (the last statement's, should there be several). */
function rowsOf<Row>(results: Results[]): Row[] {
  return (results.at(-1)?.rows ?? []).map(normaliseRow) as Row[];
}

/**
 * `text` with each `$n` replaced by `params[n - 1]` as a quoted SQL literal. Values are written
 * as the pg driver sends parameters — text, typed by where they stand — so `$1::bigint`,
 * `unnest($1::text[])` and `WHERE position > $1` mean what they mean with real parameters.
 * Parameterised statements here never hold `$n` inside a string or dollar-quoted body.
 */
export function inlineParameters(text: string, params?: readonly unknown[]): string {
  if (!params || params.length === 0) return text;
  return text.replace(/\$(\d+)/g, (placeholder, index: string) => {
    const position = Number(index);
    if (position < 1 || position > params.length)
      throw new RangeError(`${placeholder} has no parameter (${params.length} given)`);
    const value = params[position - 1];
    return value === null || value === undefined ? 'NULL' : quote(parameterText(value));
  });
}

/** A parameter's text, as Postgres reads it for the type the statement gives it. */
function parameterText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean')
    return String(value);
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Uint8Array) return `\\x${Buffer.from(value).toString('hex')}`;
  if (Array.isArray(value)) return arrayText(value);
  return JSON.stringify(value);
}

/** A Postgres array literal: `{"a","b",NULL}`, every element quoted and escaped, nested arrays kept. */
function arrayText(values: readonly unknown[]): string {
  const elements = values.map((element) => {
    if (element === null || element === undefined) return 'NULL';
    if (Array.isArray(element)) return arrayText(element);
    return `"${parameterText(element).replace(/[\\"]/g, (char) => `\\${char}`)}"`;
  });
  return `{${elements.join(',')}}`;
}

/** A standard-conforming string literal: quotes doubled, backslashes as they are. */
const quote = (text: string) => `'${text.replaceAll("'", "''")}'`;

// PGlite returns int8 as BigInt; the rest of the code works in numbers.
export function normaliseRow(row: unknown): unknown {
  const record = row as Record<string, unknown>;
  for (const key in record) if (typeof record[key] === 'bigint') record[key] = Number(record[key]);
  return record;
}
