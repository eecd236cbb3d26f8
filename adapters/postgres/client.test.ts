import { afterAll, describe, expect, it } from 'vitest';
import { testUrls } from '../../infra/test-infra/isolation.ts';
import { TcpProxy } from '../../infra/test-infra/tcp-proxy.ts';
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

describe('pgClient losing its connection mid-statement', () => {
  it('fails the statement, raises nothing past it, and connects afresh afterwards', async () => {
    const url = new URL(testUrls().databaseUrl);
    const proxy = await TcpProxy.start({ host: url.hostname, port: Number(url.port || 5432) });
    const cut = pgClient(proxy.rewrite(testUrls().databaseUrl), { max: 2 });
    const uncaught: unknown[] = [];
    const record = (error: unknown) => uncaught.push(error);
    process.on('uncaughtException', record);
    try {
      const slow = [
        cut.query('SELECT pg_sleep(5)'),
        cut.transaction((tx) => tx.query('SELECT pg_sleep(5)')),
      ].map((statement) =>
        statement.then(
          () => 'answered',
          (error: Error) => error.message,
        ),
      );
      await new Promise((resolve) => setTimeout(resolve, 300));
      await proxy.stop();
      const failures = await Promise.all(slow);
      expect(failures).not.toContain('answered');
      await proxy.start();
      expect(await cut.query('SELECT 1 AS one')).toEqual([{ one: 1 }]);
      expect(await cut.transaction((tx) => tx.query('SELECT 2 AS two'))).toEqual([{ two: 2 }]);
      expect(uncaught).toEqual([]);
    } finally {
      process.off('uncaughtException', record);
      await cut.close();
      await proxy.stop();
    }
  });
});
