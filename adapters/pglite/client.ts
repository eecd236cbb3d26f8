import { PGlite } from '@electric-sql/pglite';
import type { SqlClient } from '../shared/sql-client.ts';

/** An embedded Postgres (WASM) in `dataDir`, or in memory when `dataDir` is undefined. */
export async function pgliteClient(dataDir?: string): Promise<SqlClient & { db: PGlite }> {
  const db = await PGlite.create(dataDir);
  return {
    db,
    async query<Row>(text: string, params?: unknown[]) {
      const result = await db.query(text, params);
      return result.rows.map(normaliseRow) as Row[];
    },
    async transaction(work) {
      return db.transaction((tx) =>
        work({
          query: async <Row>(text: string, params?: unknown[]) =>
            (await tx.query(text, params)).rows.map(normaliseRow) as Row[],
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

// PGlite returns int8 as BigInt; the rest of the code works in numbers.
function normaliseRow(row: unknown): unknown {
  const record = row as Record<string, unknown>;
  for (const key in record) if (typeof record[key] === 'bigint') record[key] = Number(record[key]);
  return record;
}
