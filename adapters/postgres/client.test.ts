import { afterAll, describe, expect, it } from 'vitest';
import { testUrls } from '../../infra/test-infra/isolation.ts';
import { pgClient } from './client.ts';

const client = pgClient(testUrls().databaseUrl, { max: 1 });
afterAll(() => client.close());

const backend = async () => (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid'))[0]!.pid;

describe('pgClient', () => {
  it('keeps a connection whose statement the server refused, and drops none', async () => {
    const before = await backend();
    await expect(client.query('SELECT 1 / 0')).rejects.toMatchObject({ code: '22012' });
    await expect(client.transaction((tx) => tx.query('SELECT 1 / 0'))).rejects.toMatchObject({
      code: '22012',
    });
    expect(await backend()).toBe(before);
    expect(client.pool.totalCount).toBe(1);
  });
});
