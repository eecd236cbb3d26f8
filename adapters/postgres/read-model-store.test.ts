import { afterAll, describe, expect, it } from 'vitest';
import { isolatedName, testUrls } from '../../infra/test-infra/isolation.ts';
import type { Change } from '../../projections/model.ts';
import { readModelStoreContract, tapeProjection } from '../shared/read-model-store-contract.ts';
import { pgClient } from './client.ts';
import { SqlReadModelStore } from './read-model-store.ts';

const client = pgClient(testUrls().databaseUrl);
const schemas: string[] = [];
afterAll(async () => {
  for (const schema of schemas) await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await client.close();
});

readModelStoreContract('Postgres', {
  shared: true,
  async create() {
    const schema = isolatedName('rm');
    schemas.push(schema);
    const store = await SqlReadModelStore.open({ client, schema });
    return { store, reopen: () => SqlReadModelStore.open({ client, schema }) };
  },
});

describe('append-only tables, loaded with COPY by a rebuild', () => {
  it('refuses a rebuild that writes a row twice, deletes one or names an unknown column, and the live rows keep serving', async () => {
    const schema = isolatedName('rm');
    schemas.push(schema);
    const store = await SqlReadModelStore.open({ client, schema });
    const projection = tapeProjection();
    const table = projection.tables[0]!.name;
    const row = (id: string, note: string): Change => ({
      kind: 'upsert',
      table,
      key: { id },
      set: { note, flag: true, at: new Date(0) },
    });
    await store.prepare(projection, 'live');
    await store.applyBatch(projection, 'live', [row('a', 'live')], 0, 1);

    await store.prepare(projection, 'rebuild');
    await store.applyBatch(projection, 'rebuild', [row('a', 'first')], 0, 1);
    await store.applyBatch(projection, 'rebuild', [row('a', 'again')], 1, 2);
    await expect(store.promoteRebuild(projection)).rejects.toThrow(/could not create unique index/);

    await store.prepare(projection, 'rebuild');
    await expect(
      store.applyBatch(projection, 'rebuild', [{ kind: 'delete', table, key: { id: 'a' } }], 0, 1),
    ).rejects.toThrow(`table ${table} is append-only`);

    await store.prepare(projection, 'rebuild');
    await expect(
      store.applyBatch(
        projection,
        'rebuild',
        [{ kind: 'upsert', table, key: { id: 'b' }, set: { flag: true, at: new Date(0), colour: 'red' } }],
        0,
        1,
      ),
    ).rejects.toThrow(`table ${table} has no column colour`);

    expect(await store.find(projection, table)).toEqual([expect.objectContaining({ id: 'a', note: 'live' })]);
    expect(await store.checkpoint(projection.name, 'live')).toBe(1);
    await store.close();
  });
});
