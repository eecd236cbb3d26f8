/**
 * Test isolation helpers: the one place integration tests get server URLs and unique names.
 *
 * Every test file shares the same real servers (started by infra/test-infra/up.sh), so each
 * file names its own Postgres schemas and databases, MySQL databases, RabbitMQ queues, Kafka
 * topics and Mongo collection prefixes with `isolatedName()`: files can run in parallel and
 * re-run without cleaning up after an earlier run.
 */
import { randomBytes } from 'node:crypto';

/** Loopback URLs of the servers integration tests talk to. */
export interface TestUrls {
  /** PostgreSQL, `DATABASE_URL`. */
  readonly databaseUrl: string;
  /** MariaDB / MySQL server (no database in the path), `MYSQL_URL`. */
  readonly mysqlUrl: string;
  /** Redis, `REDIS_URL`. */
  readonly redisUrl: string;
  /** RabbitMQ, `AMQP_URL`. */
  readonly amqpUrl: string;
  /** Kafka bootstrap brokers, `KAFKA_BROKERS` (comma-separated host:port). */
  readonly kafkaBrokers: readonly string[];
  /** MongoDB wire protocol (mongo-java-server locally, a real mongod in compose), `MONGO_URL`. */
  readonly mongoUrl: string;
  /** EventStoreDB, `ESDB_URL`: undefined when unset, and the suites that need it say they skipped. */
  readonly esdbUrl: string | undefined;
}

export const DEFAULT_TEST_URLS = {
  DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/postgres',
  MYSQL_URL: 'mysql://root@127.0.0.1:3306',
  REDIS_URL: 'redis://127.0.0.1:6379',
  AMQP_URL: 'amqp://guest:guest@127.0.0.1:5672',
  KAFKA_BROKERS: '127.0.0.1:9092',
  MONGO_URL: 'mongodb://127.0.0.1:27017',
} as const;

type Env = Readonly<Record<string, string | undefined>>;

function pick(env: Env, key: keyof typeof DEFAULT_TEST_URLS): string {
  const value = env[key]?.trim();
  return value ? value : DEFAULT_TEST_URLS[key];
}

/** The servers' URLs from the environment, with the loopback defaults up.sh provides. */
export function testUrls(env: Env = process.env): TestUrls {
  const esdb = env.ESDB_URL?.trim();
  return {
    databaseUrl: pick(env, 'DATABASE_URL'),
    mysqlUrl: pick(env, 'MYSQL_URL'),
    redisUrl: pick(env, 'REDIS_URL'),
    amqpUrl: pick(env, 'AMQP_URL'),
    kafkaBrokers: pick(env, 'KAFKA_BROKERS')
      .split(',')
      .map((broker) => broker.trim())
      .filter((broker) => broker.length > 0),
    mongoUrl: pick(env, 'MONGO_URL'),
    esdbUrl: esdb ? esdb : undefined,
  };
}

/** Postgres truncates identifiers at 63 bytes and MySQL database names at 64 characters. */
export const MAX_ISOLATED_NAME_LENGTH = 63;

let counter = 0;

/**
 * A fresh name, unique across processes and runs: `<prefix>_<pid>_<counter><random>`, in
 * lowercase letters, digits and underscores, starting with a letter, at most 63 characters.
 * That is a valid unquoted Postgres schema or database name, MySQL database name, RabbitMQ
 * queue, Kafka topic and Mongo collection name or prefix.
 */
export function isolatedName(prefix = 't'): string {
  let clean = prefix
    .toLowerCase()
    .replace(/[^a-z0-9_]+/g, '_')
    .replace(/_+/g, '_')
    .replace(/^_+|_+$/g, '');
  if (!/^[a-z]/.test(clean)) clean = `t_${clean}`.replace(/_+$/, '');
  counter += 1;
  const suffix = `_${process.pid.toString(36)}_${counter.toString(36)}${randomBytes(5).toString('hex')}`;
  return `${clean.slice(0, MAX_ISOLATED_NAME_LENGTH - suffix.length)}${suffix}`;
}
