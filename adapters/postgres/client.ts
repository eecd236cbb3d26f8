import { finished } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFromStdin } from 'pg-copy-streams';
import type { SqlClient } from '../shared/sql-client.ts';

// int8 (bigint) as a JS number: positions and versions stay far below 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value));

export function pgClient(url: string, options: { max?: number } = {}): SqlClient & { pool: pg.Pool } {
  // A connection not made within 10 s fails, where pg would wait for ever: a URL naming another
  // kind of server (which never answers Postgres's startup message) must not hang a start.
  const pool = new pg.Pool({
    connectionString: url,
    max: options.max ?? 10,
    connectionTimeoutMillis: 10_000,
  });
  // A connection's error (a server restart, a cut network) must not crash the process. Idle, the
  // pool replaces it; checked out, the statement running on it fails and the client is released
  // as broken, but pg emits the error on the client too, where the pool no longer listens while
  // it is lent out.
  pool.on('error', () => {});
  pool.on('connect', (client) => client.on('error', () => {}));
  let listener: pg.Client | undefined;
  const handlers = new Map<string, Set<(payload: string) => void>>();

  return {
    pool,
    copies: true,
    async query<Row>(text: string, params?: unknown[]) {
      // Not pool.query: it closes the connection after any error, and a statement the server
      // refused (a version conflict, a duplicate key) leaves the connection as good as it was.
      const client = await pool.connect();
      let broken: Error | undefined;
      try {
        return (await client.query(text, params)).rows as Row[];
      } catch (error) {
        broken = brokenBy(error);
        throw error;
      } finally {
        client.release(broken);
      }
    },
    async transaction(work) {
      const client = await pool.connect();
      let broken: Error | undefined;
      try {
        await client.query('BEGIN');
        const result = await work({
          query: async <Row>(text: string, params?: unknown[]) =>
            (await client.query(text, params)).rows as Row[],
          copyFrom: async (statement, data) => {
            const stream = client.query(copyFromStdin(statement));
            stream.end(data);
            await finished(stream);
          },
        });
        await client.query('COMMIT');
        return result;
      } catch (error) {
        broken = await rollBack(client);
        throw error;
      } finally {
        client.release(broken);
      }
    },
    async exec(text: string) {
      const client = await pool.connect();
      let broken: Error | undefined;
      try {
        await client.query(`BEGIN;\n${text}\nCOMMIT;`);
      } catch (error) {
        broken = await rollBack(client);
        throw error;
      } finally {
        client.release(broken);
      }
    },
    async listen(channel, onNotify) {
      if (!listener) {
        listener = new pg.Client({ connectionString: url });
        listener.on('notification', (message) => {
          for (const handler of handlers.get(message.channel) ?? []) handler(message.payload ?? '');
        });
        listener.on('error', () => {});
        await listener.connect();
      }
      let set = handlers.get(channel);
      if (!set) {
        set = new Set();
        handlers.set(channel, set);
        await listener.query(`LISTEN "${channel}"`);
      }
      set.add(onNotify);
      return async () => {
        set.delete(onNotify);
      };
    },
    async close() {
      await listener?.end().catch(() => {});
      await pool.end();
    },
  };
}

/**
 * Rolls back the failed transaction; the error when even that fails: a connection that cannot roll
 * back is no use to anyone, and the pool drops a client released with it.
 */
function rollBack(client: pg.PoolClient): Promise<Error | undefined> {
  return client.query('ROLLBACK').then(
    () => undefined,
    (failure: Error) => failure,
  );
}

/**
 * The error, when it leaves the connection unusable: anything but a statement the server refused
 * (a version conflict, a duplicate key), which leaves it as good as it was. The pool drops a
 * client released with it.
 */
function brokenBy(error: unknown): Error | undefined {
  return error instanceof pg.DatabaseError ? undefined : (error as Error);
}
