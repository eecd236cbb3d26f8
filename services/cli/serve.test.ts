/**
 * `tradecore serve <service>` as an operator runs it: `node services/cli/bin.js serve …` in a child
 * process, configured only through its environment.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isolatedName, testUrls } from '../../infra/test-infra/isolation.ts';
import { loadConfig } from '../shared/config.ts';
import { connectEventStores } from '../shared/event-stores.ts';
import { deposit, eventually } from '../shared/trading-fixtures.ts';

const bin = fileURLToPath(new URL('./bin.js', import.meta.url));
let dataDir: string;

function baseEnv(): Record<string, string | undefined> {
  // Nothing from the test environment leaks into the child: each test says what it sets.
  return { PATH: process.env.PATH, HOME: process.env.HOME, TRADECORE_DATA_DIR: dataDir, LOG_LEVEL: 'silent' };
}

function tradecore(env: Record<string, string>, ...args: string[]) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      [bin, ...args],
      { env: { ...baseEnv(), ...env }, timeout: 60_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'tradecore-serve-'));
});
afterAll(() => rm(dataDir, { recursive: true, force: true }));

describe('tradecore serve: configuration fails fast, naming the variable', () => {
  it('rejects a malformed variable before opening anything', async () => {
    const result = await tradecore(
      { PORT: 'eighty', DATABASE_URL: 'postgres://x@127.0.0.1:1/x' },
      'serve',
      'projector',
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('PORT');
  });

  it('rejects a URL that is not one', async () => {
    const result = await tradecore({ DATABASE_URL: 'not a url' }, 'serve', 'query-api');
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('DATABASE_URL');
  });

  it('needs a shared event store: embedded PGlite is private to one process', async () => {
    const result = await tradecore({}, 'serve', 'projector');
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('DATABASE_URL');
  });

  const readModels = { MYSQL_URL: 'mysql://root@127.0.0.1:1/rm', MONGO_URL: 'mongodb://127.0.0.1:1/rm' };
  it.each([
    ['projector', {}, 'MYSQL_URL'],
    ['query-api', { MYSQL_URL: readModels.MYSQL_URL }, 'MONGO_URL'],
    ['b3-engine', {}, 'AMQP_URL'],
    ['b3-engine', { AMQP_URL: 'amqp://guest:guest@127.0.0.1:1' }, 'B3_REDIS_URL'],
    ['broker-api', readModels, 'AMQP_URL'],
    ['broker-api', { ...readModels, AMQP_URL: 'amqp://guest:guest@127.0.0.1:1' }, 'REDIS_URL'],
    ['market-data', {}, 'REDIS_URL'],
  ])('serve %s without its URLs names the missing one', async (service, env, variable) => {
    const result = await tradecore({ DATABASE_URL: 'postgres://x@127.0.0.1:1/x', ...env }, 'serve', service);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`${variable}:`);
  });

  // Past the config: a server that is not there, or another kind of server on that port.
  it.each([
    [
      'postgres://x@127.0.0.1:1/x',
      'DATABASE_URL: cannot use postgres://x@127.0.0.1:1/x: connect ECONNREFUSED',
    ],
    [`postgres://root@${new URL(testUrls().mysqlUrl).host}/x`, 'DATABASE_URL: cannot use postgres://root@'],
    // A server that never answers Postgres's startup message: a timeout, not a hang.
    [`postgres://root@${new URL(testUrls().redisUrl).host}/x`, 'DATABASE_URL: cannot use postgres://root@'],
  ])('names the setting whose server it cannot use (%s), in one line', async (databaseUrl, message) => {
    const result = await tradecore(
      { DATABASE_URL: databaseUrl, MYSQL_URL: testUrls().mysqlUrl, MONGO_URL: testUrls().mongoUrl },
      'serve',
      'query-api',
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`tradecore: ${message}`);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
  });

  // EventStoreDB's client connects at its first call: without a question at start, some services
  // failed later with gRPC's text and a stack, others listened and stayed not ready for ever.
  const unreachableEsdb = 'esdb://127.0.0.1:1?tls=false';
  const nowhere = {
    ...readModels,
    AMQP_URL: 'amqp://guest:guest@127.0.0.1:1',
    REDIS_URL: 'redis://127.0.0.1:1/9',
    PORT: '0',
  };
  it.each(['broker-api', 'query-api', 'b3-engine', 'market-data', 'projector'])(
    'serve %s names ESDB_URL when no EventStoreDB is there, in one line',
    async (service) => {
      const result = await tradecore({ ESDB_URL: unreachableEsdb, ...nowhere }, 'serve', service);
      expect(result.code).toBe(1);
      expect(result.stderr.trim()).toMatch(
        /^tradecore: ESDB_URL: cannot use esdb:\/\/127\.0\.0\.1:1\?tls=false: .*ECONNREFUSED[^\n]*$/,
      );
    },
    60_000,
  );

  it('says that ESDB_URL wins over DATABASE_URL for the event stores', async () => {
    const result = await tradecore(
      {
        ESDB_URL: unreachableEsdb,
        DATABASE_URL: 'postgres://x@127.0.0.1:1/x',
        ...nowhere,
        LOG_LEVEL: 'warn',
      },
      'serve',
      'b3-engine',
    );
    expect(result.code).toBe(1);
    expect(result.stdout).toContain(
      'ESDB_URL and DATABASE_URL are both set: the event stores are on EventStoreDB; DATABASE_URL holds only the trades, depth and candles read models',
    );
    expect(result.stderr).toContain('tradecore: ESDB_URL: cannot use');
  });

  it('an unknown service is a usage error listing the services', async () => {
    const result = await tradecore({}, 'serve', 'matching-engine');
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('broker-api, b3-engine, market-data, projector, query-api');
  });
});

describe('tradecore serve projector on the real servers', () => {
  const urls = testUrls();
  const { databaseUrl } = urls;
  const database = isolatedName('serve_projector');
  const url = new URL(databaseUrl);
  url.pathname = `/${database}`;
  const mysqlUrl = new URL(urls.mysqlUrl);
  mysqlUrl.pathname = `/${database}`;
  const mongoUrl = new URL(urls.mongoUrl);
  mongoUrl.pathname = `/${database}`;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    const admin = new pg.Client({ connectionString: databaseUrl });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${database}`);
    await admin.end();
    const mysqlAdmin = await mysql.createConnection(urls.mysqlUrl);
    await mysqlAdmin.query(`CREATE DATABASE \`${database}\``);
    await mysqlAdmin.end();
  });
  afterAll(async () => {
    for (const child of children) child.kill('SIGKILL');
    const admin = new pg.Client({ connectionString: databaseUrl });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await admin.end();
    const mysqlAdmin = await mysql.createConnection(urls.mysqlUrl);
    await mysqlAdmin.query(`DROP DATABASE IF EXISTS \`${database}\``);
    await mysqlAdmin.end();
  });

  it('names REDIS_URL when its server is not there, in one line', async () => {
    const result = await tradecore(
      { DATABASE_URL: url.toString(), REDIS_URL: 'redis://127.0.0.1:1/9' },
      'serve',
      'market-data',
    );
    expect(result.code).toBe(1);
    expect(result.stderr.trim()).toMatch(
      /^tradecore: REDIS_URL: cannot use redis:\/\/127\.0\.0\.1:1\/9: connect ECONNREFUSED/,
    );
  });

  // The start used to list the default catalogue and create the admin account in the event store
  // first, then fail on a read-model store: every server is asked before the first write now.
  it('writes nothing to the event store when a later server refuses it (a wrong MySQL password)', async () => {
    const wrongPassword = new URL(mysqlUrl);
    wrongPassword.username = 'root';
    wrongPassword.password = 'not-the-password';
    const result = await tradecore(
      {
        DATABASE_URL: url.toString(),
        MYSQL_URL: wrongPassword.toString(),
        MONGO_URL: mongoUrl.toString(),
        AMQP_URL: urls.amqpUrl,
        REDIS_URL: urls.redisUrl,
        PORT: '0',
      },
      'serve',
      'broker-api',
    );
    expect(result.code).toBe(1);
    expect(result.stderr.trim()).toMatch(
      /^tradecore: MYSQL_URL: cannot use mysql:\/\/root:\*\*\*@.*Access denied/,
    );
    const client = new pg.Client({ connectionString: url.toString() });
    await client.connect();
    try {
      for (const schema of ['broker', 'b3']) {
        const { rows } = await client.query<{ events: number }>(
          `SELECT count(*)::int AS events FROM ${schema}.events`,
        );
        expect(rows[0]?.events, schema).toBe(0);
      }
    } finally {
      await client.end();
    }
  }, 60_000);

  // kafkajs retries a connection for some 6 s by default, logging each try, and its error names no setting.
  it.each(['b3-engine', 'broker-api'])(
    'serve %s names KAFKA_BROKERS when no Kafka is there, in one line',
    async (service) => {
      const result = await tradecore(
        {
          DATABASE_URL: url.toString(),
          MYSQL_URL: mysqlUrl.toString(),
          MONGO_URL: mongoUrl.toString(),
          AMQP_URL: urls.amqpUrl,
          REDIS_URL: urls.redisUrl,
          KAFKA_BROKERS: '127.0.0.1:1',
          PORT: '0',
        },
        'serve',
        service,
      );
      expect(result.code).toBe(1);
      expect(result.stderr.trim()).toMatch(
        /^tradecore: KAFKA_BROKERS: cannot use 127\.0\.0\.1:1: Connection error: connect ECONNREFUSED 127\.0\.0\.1:1$/,
      );
    },
    60_000,
  );

  it('serve query-api says the data stays on the servers, naming them, not in the data folder', async () => {
    const started = spawn(process.execPath, [bin, 'serve', 'query-api'], {
      env: {
        ...baseEnv(),
        DATABASE_URL: url.toString(),
        MYSQL_URL: mysqlUrl.toString(),
        MONGO_URL: mongoUrl.toString(),
        TRADECORE_ADMIN_PASSWORD: 'serve-test-admin',
        TRADECORE_JWT_SECRET: 'a-test-signing-key-that-is-long-enough-for-hs256',
        PORT: '0',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(started);
    let stdout = '';
    let stderr = '';
    started.stderr?.on('data', (chunk) => {
      stderr += chunk;
    });
    const exited = new Promise<number | null>((resolve) => started.on('exit', (code) => resolve(code)));
    const line = await new Promise<string>((resolve, reject) => {
      started.stdout?.on('data', (chunk) => {
        stdout += chunk;
        const found = /^Ctrl-C stops it.*$/m.exec(stdout);
        if (found) resolve(found[0]);
      });
      exited.then((code) => reject(new Error(`exited with ${code} before its banner: ${stderr}`)));
    });
    started.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(line).not.toContain('data folder');
    expect(line).toContain('the data stays on the servers for the next start');
    expect(line).toContain(`Postgres at ${url.toString()}`);
    expect(line).toContain(`MySQL at ${mysqlUrl.toString()}`);
    expect(line).toContain(`Mongo at ${mongoUrl.toString()}`);
  }, 120_000);

  const env = () => ({
    DATABASE_URL: url.toString(),
    MYSQL_URL: mysqlUrl.toString(),
    MONGO_URL: mongoUrl.toString(),
  });

  /** `tradecore serve projector` in a child process, once it listens. */
  async function serveProjector() {
    const started = spawn(process.execPath, [bin, 'serve', 'projector'], {
      env: { ...baseEnv(), ...env(), PORT: '0', HOST: '127.0.0.1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(started);
    const output = { stdout: '', stderr: '' };
    started.stderr?.on('data', (chunk) => {
      output.stderr += chunk;
    });
    const exited = new Promise<number | null>((resolve) => started.on('exit', (code) => resolve(code)));
    const baseUrl = await new Promise<string>((resolve, reject) => {
      started.stdout?.on('data', (chunk) => {
        output.stdout += chunk;
        const found = /health and metrics on (http:\/\/\S+)/.exec(output.stdout);
        if (found?.[1]) resolve(found[1]);
      });
      exited.then((code) => reject(new Error(`exited with ${code} before listening: ${output.stderr}`)));
    });
    return { child: started, baseUrl, exited, output };
  }

  it('answers /health/live, /health/ready and /metrics, and stops cleanly on SIGTERM', async () => {
    const { child: started, baseUrl, exited, output } = await serveProjector();

    const live = await fetch(`${baseUrl}/health/live`);
    expect(live.status).toBe(200);
    expect(await live.json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${baseUrl}/health/ready`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({
      status: 'ready',
      checks: { 'broker-event-store': { status: 'up' }, 'read-models': { status: 'up' } },
    });
    const metrics = await (await fetch(`${baseUrl}/metrics`)).text();
    expect(metrics).toContain('tradecore_projection');
    expect(metrics).toContain('process_cpu_user_seconds_total');

    started.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(output.stdout).toContain('tradecore: stopped');
  }, 120_000);

  it('beside it, `tradecore projections status` shows checkpoint, head and lag, not a state it cannot see', async () => {
    const { child: started, exited } = await serveProjector();
    const eventStores = await connectEventStores(loadConfig(env()));
    let head: number;
    try {
      await deposit(eventStores.broker, 'status-1', 10_000);
      // Earlier tests of this file may have written to the same broker store (an admin account).
      head = await eventStores.broker.headPosition();
    } finally {
      await eventStores.close();
    }
    type Position = { projection: string; checkpoint: number; head: number; lagPositions: number };
    // The projector applies the deposit and saves the checkpoints (those with nothing to write
    // within a second): every read model caught up, as the CLI reads them from the stores.
    const caughtUp = await eventually(
      async () => {
        const status = await tradecore(env(), 'projections', 'status', '--json');
        expect(status.code, status.stderr).toBe(0);
        const positions = JSON.parse(status.stdout).projections as Array<Position & { behind: boolean }>;
        return positions.every((position) => position.lagPositions === 0) ? positions : undefined;
      },
      60_000,
      'every read model caught up',
    );
    const wallets = caughtUp.find((position) => position.projection === 'wallets');
    expect(wallets).toEqual({
      projection: 'wallets',
      store: 'mysql',
      checkpoint: head,
      head,
      lagPositions: 0,
      behind: false,
    });
    // Whether a projector runs them is the projector's to say (its port), not this process's.
    for (const position of caughtUp) expect(position).not.toHaveProperty('state');

    const text = await tradecore(env(), 'projections', 'status');
    expect(text.code, text.stderr).toBe(0);
    const [header, ...rows] = text.stdout.trim().split('\n');
    expect(header!.split(/\s+/)).toEqual(['projection', 'store', 'checkpoint', 'head', 'lag', 'behind']);
    expect(rows.find((row) => row.startsWith('wallets '))!.split(/\s+/)).toEqual([
      'wallets',
      'mysql',
      String(head),
      String(head),
      '0',
      'no',
    ]);
    expect(text.stdout).not.toContain('stopped');

    started.kill('SIGTERM');
    expect(await exited).toBe(0);
  }, 120_000);

  it('a read model failed on its store follows again once `tradecore projections rebuild` has rebuilt it beside', async () => {
    const { child: started, baseUrl, exited } = await serveProjector();
    const eventStores = await connectEventStores(loadConfig(env()));
    const readModels = await mysql.createConnection(mysqlUrl.toString());
    const cash = async () => {
      const [rows] = await readModels.query(
        "SELECT available FROM wallet_cash WHERE account_id = 'rebuild-1'",
      );
      return Number((rows as Array<{ available: unknown }>)[0]?.available ?? 0);
    };
    const readiness = async () => {
      const answer = await fetch(`${baseUrl}/health/ready`);
      return { status: answer.status, body: JSON.stringify(await answer.json()) };
    };
    try {
      await deposit(eventStores.broker, 'rebuild-1', 10_000);
      await eventually(async () => (await cash()) === 10_000, 30_000, 'the first deposit projected');
      // The live table loses a column the projection writes (an operator's slip): every batch
      // fails the same way, so the projector fails rather than retries.
      await readModels.query('ALTER TABLE wallet_cash DROP COLUMN stream_version');
      await deposit(eventStores.broker, 'rebuild-1', 20_000);
      const failed = await eventually(
        async () => {
          const ready = await readiness();
          return ready.status === 503 ? ready : undefined;
        },
        30_000,
        'the projector failed',
      );
      expect(failed.body).toContain('read model wallets failed');

      const rebuilt = await tradecore(env(), 'projections', 'rebuild', 'wallets');
      expect(rebuilt.code, rebuilt.stderr).toBe(0);
      expect(await cash()).toBe(30_000);
      // The projector sees its read model rebuilt past the failure and follows it again.
      await eventually(async () => (await readiness()).status === 200, 30_000, 'the projector ready again');
      await deposit(eventStores.broker, 'rebuild-1', 5_000);
      await eventually(async () => (await cash()) === 35_000, 30_000, 'a later deposit projected');
    } finally {
      await readModels.end();
      await eventStores.close();
    }
    started.kill('SIGTERM');
    expect(await exited).toBe(0);
  }, 180_000);
});
