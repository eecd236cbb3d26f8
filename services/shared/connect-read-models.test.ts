import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { describe, expect, it } from 'vitest';
import { isolatedName, testUrls } from '../../infra/test-infra/isolation.ts';
import { loadConfig } from './config.ts';
import { connectReadModelStores, mongoDatabase } from './read-models.ts';

describe('connectReadModelStores', () => {
  it('serves every read model from one PGlite in the data folder when no URL is set', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'tradecore-rm-'));
    const stores = await connectReadModelStores(loadConfig({ TRADECORE_DATA_DIR: dataDir }));
    try {
      expect(stores.mysql).toBe(stores.postgres);
      expect(stores.mongo).toBe(stores.postgres);
      expect(stores.postgres.kind).toBe('pglite');
      expect(stores.description).toContain(join(dataDir, 'read-models'));
    } finally {
      await stores.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('chooses MySQL, Postgres and Mongo by their URLs', async () => {
    const urls = testUrls();
    const database = isolatedName('rm');
    const admin = await mysql.createConnection(urls.mysqlUrl);
    await admin.query(`CREATE DATABASE \`${database}\``);
    const mysqlUrl = new URL(urls.mysqlUrl);
    mysqlUrl.pathname = `/${database}`;
    const mongoUrl = new URL(urls.mongoUrl);
    mongoUrl.pathname = `/${database}`;
    const stores = await connectReadModelStores(
      loadConfig({
        DATABASE_URL: urls.databaseUrl,
        MYSQL_URL: mysqlUrl.toString(),
        MONGO_URL: mongoUrl.toString(),
        DATABASE_POOL_SIZE: '3',
      }),
    );
    try {
      // DATABASE_POOL_SIZE reaches both SQL pools (each store keeps its pool private).
      const internals = (store: unknown) =>
        store as {
          client?: { pool: { options: { max: number } } };
          pool?: { pool: { config: { connectionLimit: number } } };
        };
      expect(internals(stores.postgres).client?.pool.options.max).toBe(3);
      expect(internals(stores.mysql).pool?.pool.config.connectionLimit).toBe(3);
      expect([stores.mysql.kind, stores.postgres.kind, stores.mongo.kind]).toEqual([
        'mysql',
        'postgres',
        'mongo',
      ]);
      expect(stores.description).toMatch(/Postgres at .*MySQL at .*Mongo at /);
    } finally {
      await stores.close();
      await admin.query(`DROP DATABASE IF EXISTS \`${database}\``);
      await admin.end();
    }
  });

  it('names the Mongo database by the URL’s path', () => {
    expect(mongoDatabase('mongodb://mongo:27017/readmodels')).toBe('readmodels');
    expect(mongoDatabase('mongodb://mongo:27017')).toBe('tradecore');
  });
});
