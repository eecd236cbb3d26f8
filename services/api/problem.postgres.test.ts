import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { isolatedName, testUrls } from '../../infra/test-infra/isolation.ts';
import { toProblem } from './problem.ts';

/**
 * A store out of connections is the server's trouble, not the request's: what PostgreSQL answers
 * then is a 503 to retry, not a 500 (trial F: a saturated server turned orders into 500s).
 */
const admin = new pg.Client({ connectionString: testUrls().databaseUrl });
const role = isolatedName('full');
const closed = isolatedName('closed');

afterAll(async () => {
  await admin.query(`DROP ROLE IF EXISTS ${role}`);
  await admin.query(`DROP DATABASE IF EXISTS ${closed}`);
  await admin.end();
});

describe('a store that refuses the connection', () => {
  it('is 503 STORE_UNAVAILABLE: PostgreSQL out of connections (53300)', async () => {
    await admin.connect();
    // A role with no connection left gets what a server at max_connections answers: 53300.
    await admin.query(`CREATE ROLE ${role} LOGIN CONNECTION LIMIT 0`);
    const url = new URL(testUrls().databaseUrl);
    url.username = role;
    const refused = await new pg.Client({ connectionString: url.toString() }).connect().then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refused).toMatchObject({ code: '53300' });
    expect(toProblem(refused)).toMatchObject({ status: 503, reason: 'STORE_UNAVAILABLE' });
  });

  it('is 503 STORE_UNAVAILABLE: a server not listening', async () => {
    const refused = await new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:1/postgres' })
      .connect()
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    expect(toProblem(refused)).toMatchObject({ status: 503, reason: 'STORE_UNAVAILABLE' });
  });

  it('is 503 STORE_UNAVAILABLE: a database closed to connections (55000, trial K)', async () => {
    await admin.query(`CREATE DATABASE ${closed}`);
    await admin.query(`ALTER DATABASE ${closed} ALLOW_CONNECTIONS false`);
    const url = new URL(testUrls().databaseUrl);
    url.pathname = `/${closed}`;
    const refused = await new pg.Client({ connectionString: url.toString() }).connect().then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refused).toMatchObject({ code: '55000' });
    expect(toProblem(refused)).toMatchObject({ status: 503, reason: 'STORE_UNAVAILABLE' });
  });

  it('is 503 STORE_UNAVAILABLE: a deadlock the request can simply run again', () => {
    const deadlock = Object.assign(new Error('Deadlock found when trying to get lock'), {
      code: 'ER_LOCK_DEADLOCK',
      errno: 1213,
    });
    expect(toProblem(deadlock)).toMatchObject({ status: 503, reason: 'STORE_UNAVAILABLE' });
  });

  it('leaves any other failure a 500', () => {
    expect(toProblem(new Error('a bug'))).toMatchObject({ status: 500, reason: 'INTERNAL_ERROR' });
  });
});
