import { afterAll, describe, expect, it } from 'vitest';
import { isolatedName, testUrls } from '../../infra/test-infra/isolation.ts';
import { pgliteClient } from '../pglite/client.ts';
import type { SqlClient } from '../shared/sql-client.ts';
import { pgClient } from './client.ts';
import { SqlRelayCheckpoints } from './relay-checkpoints.ts';

const postgres = pgClient(testUrls().databaseUrl, { max: 4 });
const pglite = await pgliteClient();
const schemas: string[] = [];
afterAll(async () => {
  for (const schema of schemas) await postgres.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await postgres.close();
  await pglite.close();
});

describe.each([
  ['Postgres', postgres],
  ['PGlite', pglite],
] as [string, SqlClient][])('relay checkpoints on %s', (_, client) => {
  const open = async () => {
    const schema = isolatedName('relay_cp');
    schemas.push(schema);
    return { schema, checkpoints: await SqlRelayCheckpoints.open({ client, schema }) };
  };

  it('starts at 0, remembers each relay by name and survives reopening', async () => {
    const { schema, checkpoints } = await open();
    expect(await checkpoints.load('orders')).toBe(0);
    await checkpoints.save('orders', 42);
    await checkpoints.save('wallets', 7);
    const reopened = await SqlRelayCheckpoints.open({ client, schema });
    expect(await reopened.load('orders')).toBe(42);
    expect(await reopened.load('wallets')).toBe(7);
  });

  it('never moves a checkpoint backwards', async () => {
    const { checkpoints } = await open();
    await checkpoints.save('orders', 100);
    await checkpoints.save('orders', 60);
    expect(await checkpoints.load('orders')).toBe(100);
    await checkpoints.save('orders', 101);
    expect(await checkpoints.load('orders')).toBe(101);
  });

  it('refuses a position that is not a non-negative integer', async () => {
    const { checkpoints } = await open();
    await expect(checkpoints.save('orders', -1)).rejects.toThrow(RangeError);
    await expect(checkpoints.save('orders', 1.5)).rejects.toThrow(RangeError);
  });

  it('opens the same schema from two callers at once', async () => {
    const schema = isolatedName('relay_cp');
    schemas.push(schema);
    const [a, b] = await Promise.all([
      SqlRelayCheckpoints.open({ client, schema }),
      SqlRelayCheckpoints.open({ client, schema }),
    ]);
    await a.save('orders', 3);
    expect(await b.load('orders')).toBe(3);
  });
});
