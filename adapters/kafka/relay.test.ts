import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryEventStore } from '../../adapters/memory/event-store.ts';
import type { NewEvent } from '../../domain/shared/event-store.ts';
import { isolatedName, testUrls } from '../../infra/test-infra/isolation.ts';
import {
  type IntegrationMessage,
  type IntegrationPublisher,
  Relay,
  type RelayCheckpoints,
} from '../../projections/relay.ts';
import { pgClient } from '../postgres/client.ts';
import { SqlProcessedEvents } from '../postgres/processed-events.ts';
import { SqlRelayCheckpoints } from '../postgres/relay-checkpoints.ts';
import type { SqlQuery } from '../shared/sql-client.ts';
import { IdempotentConsumer } from './consumer.ts';
import { ensureTopics, KafkaPublisher } from './publisher.ts';
import { byKey, countMessages, FAST_GROUP, readTopics, testKafka, until } from './testing.ts';
import { catalogueTopics, type IntegrationEnvelope, routeByStream, topicCatalogue } from './topics.ts';

const kafka = testKafka('tradecore-relay-test');
const admin = kafka.admin();
const publisher = new KafkaPublisher(kafka);
const sql = pgClient(testUrls().databaseUrl, { max: 4 });
const schema = isolatedName('relay_kafka');
const topics: string[] = [];
const stoppers: (() => Promise<void>)[] = [];

beforeAll(async () => {
  await admin.connect();
  await publisher.connect();
});

afterAll(async () => {
  for (const stop of stoppers.reverse()) await stop().catch(() => {});
  await publisher.disconnect();
  if (topics.length > 0) await admin.deleteTopics({ topics }).catch(() => {});
  await admin.disconnect();
  await sql.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await sql.close();
});

async function setUp() {
  const catalogue = topicCatalogue(isolatedName('relay'));
  const specs = catalogueTopics(catalogue);
  topics.push(...specs.map((spec) => spec.name));
  await ensureTopics(
    admin,
    specs.map((spec) => ({ topic: spec.name, partitions: spec.partitions })),
  );
  const checkpoints = await SqlRelayCheckpoints.open({ client: sql, schema });
  return { catalogue, checkpoints, source: new MemoryEventStore(), name: isolatedName('relay') };
}

function startRelay(options: {
  name: string;
  source: MemoryEventStore;
  checkpoints: RelayCheckpoints;
  publisher: IntegrationPublisher;
  catalogue: ReturnType<typeof topicCatalogue>;
  batchSize?: number;
}): Relay {
  const relay = new Relay({
    name: options.name,
    source: options.source,
    checkpoints: options.checkpoints,
    publisher: options.publisher,
    map: routeByStream(options.catalogue),
    batchSize: options.batchSize ?? 50,
    retryDelayMs: 50,
  });
  stoppers.push(() => relay.stop());
  return relay;
}

const event = (type: string, data: Record<string, unknown>, correlationId = randomUUID()): NewEvent => ({
  id: randomUUID(),
  type,
  data,
  metadata: {
    correlationId,
    causationId: randomUUID(),
    actor: 'trader-1',
    occurredAt: new Date().toISOString(),
    schemaVersion: 1,
  },
});

describe('the relay on Kafka', () => {
  it('publishes every public event once, in order per key, with its headers, then checkpoints', async () => {
    const { catalogue, checkpoints, source, name } = await setUp();
    const orderIds = Array.from({ length: 5 }, () => randomUUID());
    const accounts = ['acc-1', 'acc-2', 'acc-3'];
    const symbols = ['PETR4', 'VALE3'];
    for (let step = 0; step < 4; step += 1) {
      for (const orderId of orderIds)
        await source.append(`order-${orderId}`, [event(`OrderStep${step}`, { orderId, step })]);
      for (const accountId of accounts)
        await source.append(`wallet-${accountId}`, [event('CashDeposited', { accountId, step })]);
      for (const symbol of symbols)
        await source.append(`trade-${randomUUID()}`, [event('TradeExecuted', { symbol, step })]);
      // Private streams are not published.
      await source.append(`account-${randomUUID()}`, [event('AccountRegistered', { step })]);
      await source.append(`book-PETR4`, [event('OrderBooked', { step })]);
    }
    const head = await source.headPosition();
    const relay = startRelay({ name, source, checkpoints, publisher, catalogue, batchSize: 7 });
    await relay.start();
    await until(async () => (await checkpoints.load(name)) === head, 'the relay to reach the head');
    expect(await relay.status()).toMatchObject({ state: 'running', checkpoint: head, lagPositions: 0 });

    const published = await readTopics(kafka, [
      catalogue.orderEvents.name,
      catalogue.walletEvents.name,
      catalogue.tradeEvents.name,
    ]);
    const all = await source.readAll({ limit: 10_000 });
    const expected = all.filter((recorded) => /^(order|wallet|trade)-/.test(recorded.streamId));
    expect(published).toHaveLength(expected.length);
    expect(new Set(published.map((message) => message.headers['event-id']))).toEqual(
      new Set(expected.map((recorded) => recorded.id)),
    );

    const recordedById = new Map(all.map((recorded) => [recorded.id, recorded]));
    for (const message of published) {
      const recorded = recordedById.get(message.headers['event-id']!)!;
      expect(message.headers).toEqual({
        'event-id': recorded.id,
        'event-type': recorded.type,
        'schema-version': '1',
        'correlation-id': recorded.metadata.correlationId,
        'causation-id': recorded.metadata.causationId,
        'occurred-at': recorded.metadata.occurredAt,
        'source-position': String(recorded.position),
      });
      const body = message.value as IntegrationEnvelope;
      expect(body).toMatchObject({ eventId: recorded.id, type: recorded.type, data: recorded.data });
      if (message.topic === catalogue.orderEvents.name) expect(message.key).toBe(recorded.streamId.slice(6));
      if (message.topic === catalogue.walletEvents.name) expect(message.key).toBe(recorded.streamId.slice(7));
      if (message.topic === catalogue.tradeEvents.name)
        expect(message.key).toBe((recorded.data as { symbol: string }).symbol);
    }
    const keys = byKey(published);
    expect(keys.size).toBe(orderIds.length + accounts.length + symbols.length);
    for (const [, messages] of keys) {
      expect(new Set(messages.map((message) => message.partition)).size).toBe(1);
      const positions = messages.map((message) => Number(message.headers['source-position']));
      expect(positions).toEqual([...positions].sort((a, b) => a - b));
    }

    // Live appends follow.
    await source.append(`order-${orderIds[0]}`, [event('OrderFilled', { orderId: orderIds[0] })]);
    await until(async () => (await checkpoints.load(name)) === head + 1, 'the relay to follow a live append');
    expect(await countMessages(admin, [catalogue.orderEvents.name])).toBe(21);
  });

  it('checkpoints only acknowledged batches; a restart re-publishes the rest and the consumer applies each once', async () => {
    const { catalogue, checkpoints, source, name } = await setUp();
    const orderIds = Array.from({ length: 4 }, () => randomUUID());
    for (let step = 0; step < 5; step += 1)
      for (const orderId of orderIds)
        await source.append(`order-${orderId}`, [event('OrderStep', { orderId, step })]);

    // Kafka takes the first 12 messages, then the connection "drops" in the middle of a batch.
    let budget = 12;
    const failing: IntegrationPublisher = {
      async publish(messages: IntegrationMessage[]) {
        const accepted = messages.slice(0, Math.max(0, budget));
        budget -= accepted.length;
        if (accepted.length > 0) await publisher.publish(accepted);
        if (accepted.length < messages.length) throw new Error('broker connection lost');
      },
    };
    const first = startRelay({ name, source, checkpoints, publisher: failing, catalogue, batchSize: 5 });
    await first.start();
    await until(async () => (await first.status()).failures >= 2, 'the relay to fail');
    await first.stop();
    expect(await checkpoints.load(name)).toBe(10);
    expect(await countMessages(admin, [catalogue.orderEvents.name])).toBe(12);

    const second = startRelay({ name, source, checkpoints, publisher, catalogue, batchSize: 5 });
    await second.start();
    await until(async () => (await checkpoints.load(name)) === 20, 'the restarted relay to catch up');
    // At least once: positions 11 and 12 went out twice.
    expect(await countMessages(admin, [catalogue.orderEvents.name])).toBe(22);

    // The other side: an order-status view applied exactly once per event, in order per order.
    await sql.exec(
      `CREATE TABLE ${schema}.order_steps (seq bigserial PRIMARY KEY, order_id text NOT NULL, step int NOT NULL, event_id text NOT NULL);`,
    );
    const processed = await SqlProcessedEvents.open({ client: sql, schema, consumer: 'order-steps' });
    let duplicates = 0;
    const consumer = new IdempotentConsumer<SqlQuery>({
      kafka,
      groupId: isolatedName('order_steps'),
      topics: [catalogue.orderEvents.name],
      processed: {
        unit: (work) => processed.unit(work),
        remember: (tx, id) => processed.remember(tx, id),
        async seen(tx, id) {
          const seen = await processed.seen(tx, id);
          if (seen) duplicates += 1;
          return seen;
        },
      },
      effect: async (message, tx) => {
        const { data } = message.value as IntegrationEnvelope & { data: { orderId: string; step: number } };
        await tx.query(`INSERT INTO ${schema}.order_steps (order_id, step, event_id) VALUES ($1, $2, $3)`, [
          data.orderId,
          data.step,
          message.eventId,
        ]);
      },
      consumer: FAST_GROUP,
    });
    stoppers.push(() => consumer.stop());
    await consumer.start();
    await until(async () => duplicates === 2, 'the consumer to skip both duplicates');
    await until(
      async () => (await sql.query(`SELECT 1 FROM ${schema}.order_steps`)).length === 20,
      'the consumer to apply every event',
    );
    await consumer.stop();
    const rows = await sql.query<{ order_id: string; steps: number[]; events: number }>(
      `SELECT order_id, array_agg(step ORDER BY seq) AS steps, count(DISTINCT event_id)::int AS events
         FROM ${schema}.order_steps GROUP BY order_id`,
    );
    expect(rows).toHaveLength(4);
    for (const row of rows) {
      expect(row.steps).toEqual([0, 1, 2, 3, 4]);
      expect(row.events).toBe(5);
    }
  });
});
