/**
 * Smoke tests of the real servers up.sh makes reachable: each one proves a round trip with the
 * client library the project uses, in names no other test file shares.
 */
import amqp from 'amqplib';
import { Redis } from 'ioredis';
import { Kafka, logLevel, Partitioners } from 'kafkajs';
import { MongoClient } from 'mongodb';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { isolatedName, testUrls } from './isolation.ts';

const urls = testUrls();

describe('isolatedName', () => {
  it('gives unique lowercase names safe for every server', () => {
    const names = new Set(Array.from({ length: 1_000 }, () => isolatedName('Smoke-Test.Orders')));
    expect(names.size).toBe(1_000);
    for (const name of names) {
      expect(name).toMatch(/^smoke_test_orders_[a-z0-9_]+$/);
      expect(name.length).toBeLessThanOrEqual(63);
    }
    expect(isolatedName('9lives')).toMatch(/^t_9lives_/);
    expect(isolatedName('x'.repeat(200)).length).toBe(63);
  });
});

describe('testUrls', () => {
  it('defaults to the loopback servers and reads overrides from the environment', () => {
    expect(testUrls({})).toEqual({
      databaseUrl: 'postgres://postgres@127.0.0.1:5432/postgres',
      mysqlUrl: 'mysql://root@127.0.0.1:3306',
      redisUrl: 'redis://127.0.0.1:6379',
      amqpUrl: 'amqp://guest:guest@127.0.0.1:5672',
      kafkaBrokers: ['127.0.0.1:9092'],
      mongoUrl: 'mongodb://127.0.0.1:27017',
      esdbUrl: undefined,
    });
    const custom = testUrls({ KAFKA_BROKERS: 'a:1, b:2', ESDB_URL: 'esdb://x:2113', REDIS_URL: ' ' });
    expect(custom.kafkaBrokers).toEqual(['a:1', 'b:2']);
    expect(custom.esdbUrl).toBe('esdb://x:2113');
    expect(custom.redisUrl).toBe('redis://127.0.0.1:6379');
  });
});

describe('real servers', () => {
  it('Kafka: creates an isolated topic, produces and consumes the same message', async () => {
    const kafka = new Kafka({
      clientId: 'tradecore-smoke',
      brokers: [...urls.kafkaBrokers],
      logLevel: logLevel.NOTHING,
    });
    const topic = isolatedName('smoke_kafka');
    const admin = kafka.admin();
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    const consumer = kafka.consumer({ groupId: topic, maxWaitTimeInMs: 100 });
    await admin.connect();
    try {
      expect(await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true })).toBe(
        true,
      );
      await producer.connect();
      const sent = { key: 'PETR4', value: JSON.stringify({ price: '32.50', at: Date.now() }) };
      await producer.send({ topic, messages: [sent] });

      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      const received = await new Promise<{ key: string; value: string }>((resolve, reject) => {
        consumer
          .run({
            eachMessage: async ({ message }) =>
              resolve({ key: message.key?.toString() ?? '', value: message.value?.toString() ?? '' }),
          })
          .catch(reject);
      });
      expect(received).toEqual(sent);
    } finally {
      await consumer.disconnect();
      await producer.disconnect();
      await admin.deleteTopics({ topics: [topic] }).catch(() => {});
      await admin.disconnect();
    }
  });

  it('Mongo wire: inserts and finds a document in an isolated collection', async () => {
    const client = new MongoClient(urls.mongoUrl, { serverSelectionTimeoutMS: 5_000 });
    await client.connect();
    try {
      const collection = client.db('tradecore_test').collection(isolatedName('smoke_mongo'));
      const quote = { symbol: 'PETR4', priceCents: 3250, at: new Date() };
      const { insertedId } = await collection.insertOne({ ...quote });
      const found = await collection.findOne({ _id: insertedId });
      expect(found).toEqual({ _id: insertedId, ...quote });
      await collection.drop();
    } finally {
      await client.close();
    }
  });

  it('PostgreSQL: select 1, and creates and drops an isolated schema', async () => {
    const client = new pg.Client({ connectionString: urls.databaseUrl });
    await client.connect();
    try {
      expect((await client.query('select 1 as one')).rows).toEqual([{ one: 1 }]);
      const schema = isolatedName('smoke_pg');
      await client.query(`create schema ${schema}`);
      await client.query(`create table ${schema}.probe (id int primary key)`);
      await client.query(`insert into ${schema}.probe values (42)`);
      expect((await client.query(`select id from ${schema}.probe`)).rows).toEqual([{ id: 42 }]);
      await client.query(`drop schema ${schema} cascade`);
      const left = await client.query('select 1 from information_schema.schemata where schema_name = $1', [
        schema,
      ]);
      expect(left.rowCount).toBe(0);
    } finally {
      await client.end();
    }
  });

  it('MariaDB: creates an isolated database and round-trips a row', async () => {
    const connection = await mysql.createConnection({ uri: urls.mysqlUrl });
    const database = isolatedName('smoke_mysql');
    try {
      await connection.query(`create database ${database}`);
      await connection.query(`create table ${database}.probe (id int primary key, symbol varchar(12))`);
      await connection.query(`insert into ${database}.probe values (?, ?)`, [7, 'VALE3']);
      const [rows] = await connection.query(`select id, symbol from ${database}.probe`);
      expect(rows).toEqual([{ id: 7, symbol: 'VALE3' }]);
    } finally {
      await connection.query(`drop database if exists ${database}`);
      await connection.end();
    }
  });

  it('Redis: set and get', async () => {
    const redis = new Redis(urls.redisUrl, { maxRetriesPerRequest: 1 });
    try {
      const key = isolatedName('smoke_redis');
      expect(await redis.set(key, '32.50', 'EX', 60)).toBe('OK');
      expect(await redis.get(key)).toBe('32.50');
      await redis.del(key);
    } finally {
      redis.disconnect();
    }
  });

  it('RabbitMQ: publishes to an isolated queue and gets the message back', async () => {
    const connection = await amqp.connect(urls.amqpUrl);
    try {
      const channel = await connection.createConfirmChannel();
      const queue = isolatedName('smoke_amqp');
      await channel.assertQueue(queue, { exclusive: true, autoDelete: true });
      channel.sendToQueue(queue, Buffer.from('NewOrder PETR4'), { messageId: queue });
      await channel.waitForConfirms();
      const message = await channel.get(queue, { noAck: true });
      if (message === false) throw new Error(`queue ${queue} is empty`);
      expect(message.content.toString()).toBe('NewOrder PETR4');
      expect(message.properties.messageId).toBe(queue);
      await channel.close();
    } finally {
      await connection.close();
    }
  });
});
