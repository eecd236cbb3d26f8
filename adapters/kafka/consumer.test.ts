import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isolatedName, testUrls } from '../../infra/test-infra/isolation.ts';
import { pgClient } from '../postgres/client.ts';
import { SqlProcessedEvents } from '../postgres/processed-events.ts';
import type { SqlQuery } from '../shared/sql-client.ts';
import { type ConsumedMessage, IdempotentConsumer, type ProcessedEvents } from './consumer.ts';
import { ensureTopics, KafkaPublisher } from './publisher.ts';
import { FAST_GROUP, testKafka, until } from './testing.ts';

/**
 * A tiny notifications projector as the demonstration: each trade message becomes one row in
 * `notifications`, in the same transaction as its `processed_events` mark.
 */
const kafka = testKafka('tradecore-consumer-test');
const admin = kafka.admin();
const publisher = new KafkaPublisher(kafka);
const sql = pgClient(testUrls().databaseUrl, { max: 4 });
const schema = isolatedName('consumer_kafka');
const topics: string[] = [];
const stoppers: (() => Promise<void>)[] = [];

beforeAll(async () => {
  await admin.connect();
  await publisher.connect();
  await sql.exec(`CREATE SCHEMA ${schema};`);
});

afterAll(async () => {
  for (const stop of stoppers.reverse()) await stop().catch(() => {});
  await publisher.disconnect();
  if (topics.length > 0) await admin.deleteTopics({ topics }).catch(() => {});
  await admin.disconnect();
  await sql.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await sql.close();
});

class SimulatedCrash extends Error {
  override readonly name = 'SimulatedCrash';
}

async function setUp(partitions: number, messages: number) {
  const topic = isolatedName('trades');
  topics.push(topic);
  await ensureTopics(admin, [{ topic, partitions }]);
  const table = `${schema}.${isolatedName('notifications')}`;
  await sql.exec(
    `CREATE TABLE ${table} (seq bigserial PRIMARY KEY, event_id text NOT NULL, symbol text NOT NULL, sequence int NOT NULL);`,
  );
  const sent = Array.from({ length: messages }, (_, sequence) => {
    const symbol = ['PETR4', 'VALE3', 'ITUB4'][sequence % 3]!;
    return {
      topic,
      key: symbol,
      value: JSON.stringify({ symbol, sequence }),
      headers: { 'event-id': randomUUID(), 'event-type': 'TradeExecuted', 'schema-version': '1' },
    };
  });
  await publisher.publish(sent);
  const processed = await SqlProcessedEvents.open({ client: sql, schema, consumer: table });
  const notify = async (message: ConsumedMessage, tx: SqlQuery) => {
    const { symbol, sequence } = message.value as { symbol: string; sequence: number };
    await tx.query(`INSERT INTO ${table} (event_id, symbol, sequence) VALUES ($1, $2, $3)`, [
      message.eventId,
      symbol,
      sequence,
    ]);
  };
  const notifications = () =>
    sql.query<{ event_id: string; symbol: string; sequence: number }>(`SELECT * FROM ${table} ORDER BY seq`);
  return { topic, sent, processed, notify, notifications, groupId: isolatedName('notify') };
}

function consumerOf<Unit>(options: ConstructorParameters<typeof IdempotentConsumer<Unit>>[0]) {
  const consumer = new IdempotentConsumer(options);
  stoppers.push(() => consumer.stop());
  return consumer;
}

async function committed(groupId: string, topic: string): Promise<number[]> {
  const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] });
  return offsets!.partitions.sort((a, b) => a.partition - b.partition).map((p) => Number(p.offset));
}

describe('IdempotentConsumer', () => {
  it('commits a message’s offset only after its effect', async () => {
    const { topic, sent, processed, notify, notifications, groupId } = await setUp(1, 6);
    const committedDuringEffect: number[] = [];
    const consumer = consumerOf<SqlQuery>({
      kafka,
      groupId,
      topics: [topic],
      processed,
      effect: async (message, tx) => {
        // While message n's effect runs, the group has committed up to n (exclusive), never past it.
        committedDuringEffect.push((await committed(groupId, topic))[0]!);
        await notify(message, tx);
      },
      consumer: FAST_GROUP,
    });
    await consumer.start();
    await until(async () => (await committed(groupId, topic))[0] === 6, 'every offset committed');
    await consumer.stop();
    // -1: nothing committed yet.
    expect(committedDuringEffect).toEqual([-1, 1, 2, 3, 4, 5]);
    expect((await notifications()).map((row) => row.event_id)).toEqual(
      sent.map((m) => m.headers['event-id']),
    );
  });

  it('redelivers the message a consumer died on before committing, and applies it once', async () => {
    const { topic, sent, processed, notify, notifications, groupId } = await setUp(1, 10);
    // The first member dies right after the 4th effect committed in Postgres, before the offset commit.
    let units = 0;
    const dying: ProcessedEvents<SqlQuery> = {
      seen: (tx, id) => processed.seen(tx, id),
      remember: (tx, id) => processed.remember(tx, id),
      async unit(work) {
        const result = await processed.unit(work);
        units += 1;
        if (units === 4) throw new SimulatedCrash('killed between the effect and the offset commit');
        return result;
      },
    };
    const first = consumerOf<SqlQuery>({
      kafka,
      groupId,
      topics: [topic],
      processed: dying,
      effect: notify,
      consumer: { ...FAST_GROUP, retry: { retries: 0, restartOnFailure: async () => false } },
    });
    const crashed = new Promise<void>((resolve) =>
      first.consumer.on(first.consumer.events.CRASH, () => resolve()),
    );
    await first.start();
    await crashed;
    await first.stop();
    expect(await committed(groupId, topic)).toEqual([3]);
    expect(await notifications()).toHaveLength(4);

    let duplicates = 0;
    const second = consumerOf<SqlQuery>({
      kafka,
      groupId,
      topics: [topic],
      processed: {
        unit: (work) => processed.unit(work),
        remember: (tx, id) => processed.remember(tx, id),
        async seen(tx, id) {
          const seen = await processed.seen(tx, id);
          if (seen) duplicates += 1;
          return seen;
        },
      },
      effect: notify,
      consumer: FAST_GROUP,
    });
    await second.start();
    await until(async () => (await committed(groupId, topic))[0] === 10, 'the second member to finish');
    await second.stop();
    expect(duplicates).toBe(1);
    const rows = await notifications();
    expect(rows.map((row) => row.event_id)).toEqual(sent.map((m) => m.headers['event-id']));
  });

  it('applies each key in order while partitions are consumed side by side', async () => {
    const { topic, sent, processed, notify, notifications, groupId } = await setUp(3, 60);
    const consumer = consumerOf<SqlQuery>({
      kafka,
      groupId,
      topics: [topic],
      processed,
      effect: notify,
      consumer: FAST_GROUP,
      partitionsConsumedConcurrently: 3,
    });
    await consumer.start();
    await until(async () => (await notifications()).length === sent.length, 'every notification');
    await consumer.stop();
    const rows = await notifications();
    for (const symbol of ['PETR4', 'VALE3', 'ITUB4']) {
      const sequences = rows.filter((row) => row.symbol === symbol).map((row) => row.sequence);
      expect(sequences).toHaveLength(20);
      expect(sequences).toEqual([...sequences].sort((a, b) => a - b));
    }
    const offsets = await committed(groupId, topic);
    expect(offsets.reduce((sum, offset) => sum + Math.max(0, offset), 0)).toBe(60);
  });
});
