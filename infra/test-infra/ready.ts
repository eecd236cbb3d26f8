/**
 * `tsx infra/test-infra/ready.ts [--timeout=SECONDS] SERVER...`: waits (at most SECONDS, default
 * 60) until each named server answers over its real protocol, with the client library the tests
 * use. Called by up.sh once the ports are open. SERVER is one of postgres, mariadb, redis,
 * rabbitmq, kafka, mongo.
 *
 * Kafka is ready when a fresh topic can be created and a message produced to it comes back to
 * a consumer; Mongo when `isMaster` answers (its maxWireVersion is printed). Prints one line and
 * exits 0 when all answer; otherwise one line per server that did not, and exits 1.
 *
 * The servers' URLs come from isolation.ts (`testUrls()`), as the tests' do.
 */
import amqp from 'amqplib';
import { Redis } from 'ioredis';
import { Kafka, logLevel, Partitioners } from 'kafkajs';
import { MongoClient } from 'mongodb';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { isolatedName, type TestUrls, testUrls } from './isolation.ts';

type Check = (urls: TestUrls) => Promise<string>;

const checks: Record<string, Check> = {
  async postgres(urls) {
    const client = new pg.Client({ connectionString: urls.databaseUrl, connectionTimeoutMillis: 5_000 });
    await client.connect();
    try {
      await client.query('select 1');
      return 'select 1';
    } finally {
      await client.end();
    }
  },

  async mariadb(urls) {
    const connection = await mysql.createConnection({ uri: urls.mysqlUrl, connectTimeout: 5_000 });
    try {
      await connection.query('select 1');
      return 'select 1';
    } finally {
      await connection.end();
    }
  },

  async redis(urls) {
    const redis = new Redis(urls.redisUrl, {
      lazyConnect: true,
      connectTimeout: 5_000,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    try {
      await redis.connect();
      return `ping ${await redis.ping()}`;
    } finally {
      redis.disconnect();
    }
  },

  async rabbitmq(urls) {
    const connection = await amqp.connect(urls.amqpUrl, { timeout: 5_000 });
    try {
      const channel = await connection.createChannel();
      await channel.close();
      return 'channel opened';
    } finally {
      await connection.close();
    }
  },

  async kafka(urls) {
    const kafka = new Kafka({
      clientId: 'tradecore-up',
      brokers: [...urls.kafkaBrokers],
      logLevel: logLevel.NOTHING,
      connectionTimeout: 5_000,
      retry: { retries: 2 },
    });
    const topic = isolatedName('up_ready');
    const admin = kafka.admin();
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    const consumer = kafka.consumer({ groupId: topic, maxWaitTimeInMs: 100 });
    await admin.connect();
    try {
      await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
      await producer.connect();
      const value = `ready ${Date.now()}`;
      await producer.send({ topic, messages: [{ value }] });
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      const received = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no message back from ${topic} in 20 s`)), 20_000);
        consumer
          .run({
            eachMessage: async ({ message }) => {
              clearTimeout(timer);
              resolve(message.value?.toString() ?? '');
            },
          })
          .catch(reject);
      });
      if (received !== value) throw new Error(`topic ${topic} returned ${received}, not ${value}`);
      return 'topic created, message round-tripped';
    } finally {
      await consumer.disconnect().catch(() => {});
      await producer.disconnect().catch(() => {});
      await admin.deleteTopics({ topics: [topic] }).catch(() => {});
      await admin.deleteGroups([topic]).catch(() => {});
      await admin.disconnect().catch(() => {});
    }
  },

  async mongo(urls) {
    const client = new MongoClient(urls.mongoUrl, {
      serverSelectionTimeoutMS: 5_000,
      connectTimeoutMS: 5_000,
    });
    try {
      await client.connect();
      // isMaster, not hello: mongo-java-server knows only the legacy name (real mongod knows both).
      const reply = await client.db('admin').command({ isMaster: 1 });
      return `isMaster, maxWireVersion ${reply.maxWireVersion}`;
    } finally {
      await client.close();
    }
  },
};

async function untilAnswers(name: string, check: Check, deadline: number): Promise<string> {
  const urls = testUrls();
  for (;;) {
    const started = Date.now();
    try {
      const detail = await check(urls);
      return `${name} (${detail}, ${Date.now() - started} ms)`;
    } catch (error) {
      if (Date.now() + 500 > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
}

const args = process.argv.slice(2);
const timeoutArg = args.find((arg) => arg.startsWith('--timeout='));
const timeoutSeconds = timeoutArg ? Number(timeoutArg.slice('--timeout='.length)) : 60;
const names = args.filter((arg) => !arg.startsWith('--'));
const unknown = names.filter((name) => !(name in checks));
if (names.length === 0 || unknown.length > 0 || !(timeoutSeconds > 0)) {
  console.error(`usage: ready.ts [--timeout=SECONDS] <${Object.keys(checks).join('|')}>...`);
  process.exit(2);
}

const deadline = Date.now() + timeoutSeconds * 1_000;
const results = await Promise.allSettled(names.map((name) => untilAnswers(name, checks[name]!, deadline)));
const failures = results.flatMap((result, index) =>
  result.status === 'rejected'
    ? [`failed: ${names[index]} did not answer within ${timeoutSeconds} s: ${String(result.reason)}`]
    : [],
);
if (failures.length > 0) {
  for (const line of failures) console.log(line);
  process.exit(1);
}
console.log(
  `answers: ${results.map((result) => (result.status === 'fulfilled' ? result.value : '')).join('; ')}`,
);
process.exit(0);
