import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isolatedName } from '../../infra/test-infra/isolation.ts';
import type { IntegrationMessage } from '../../projections/relay.ts';
import { ensureTopics, KafkaPublisher } from './publisher.ts';
import { byKey, readTopics, testKafka } from './testing.ts';
import { catalogueTopics, TOPIC_NAMES, topicCatalogue } from './topics.ts';

const kafka = testKafka('tradecore-publisher-test');
const admin = kafka.admin();
const publisher = new KafkaPublisher(kafka);
const created: string[] = [];

beforeAll(async () => {
  await admin.connect();
  await publisher.connect();
});

afterAll(async () => {
  await publisher.disconnect();
  if (created.length > 0) await admin.deleteTopics({ topics: created }).catch(() => {});
  await admin.disconnect();
});

describe('the topic catalogue', () => {
  it('names the four integration topics, behind a prefix when given one', () => {
    expect(catalogueTopics(topicCatalogue()).map((topic) => topic.name)).toEqual([
      'order-events-v1',
      'trade-events-v1',
      'wallet-events-v1',
      'assets-market-data-v1',
    ]);
    const prefixed = topicCatalogue('t_1');
    expect(prefixed.tradeEvents).toEqual({ name: 't_1-trade-events-v1', partitions: 6, keyedBy: 'symbol' });
    expect(prefixed.orderEvents.keyedBy).toBe('order id');
    expect(prefixed.walletEvents.keyedBy).toBe('account id');
    expect(prefixed.marketData.name).toBe(`t_1-${TOPIC_NAMES.marketData}`);
  });
});

describe('ensureTopics', () => {
  it('creates the catalogue with its partition counts and leaves existing topics alone', async () => {
    const catalogue = topicCatalogue(isolatedName('topics'));
    const specs = catalogueTopics(catalogue);
    created.push(...specs.map((spec) => spec.name));
    // One topic already there with another partition count: it must be reported, not changed.
    await admin.createTopics({
      topics: [{ topic: catalogue.marketData.name, numPartitions: 1 }],
      waitForLeaders: true,
    });

    const first = await ensureTopics(
      admin,
      specs.map((spec) => ({ topic: spec.name, partitions: spec.partitions })),
    );
    expect(first.created.sort()).toEqual(
      [catalogue.orderEvents.name, catalogue.tradeEvents.name, catalogue.walletEvents.name].sort(),
    );
    expect(first.existing).toEqual([{ topic: catalogue.marketData.name, partitions: 1 }]);

    const described = await admin.fetchTopicMetadata({ topics: specs.map((spec) => spec.name) });
    const partitions = Object.fromEntries(
      described.topics.map((topic) => [topic.name, topic.partitions.length]),
    );
    expect(partitions).toEqual({
      [catalogue.orderEvents.name]: 6,
      [catalogue.tradeEvents.name]: 6,
      [catalogue.walletEvents.name]: 6,
      [catalogue.marketData.name]: 1,
    });

    const again = await ensureTopics(
      admin,
      specs.map((spec) => ({ topic: spec.name, partitions: spec.partitions })),
    );
    expect(again.created).toEqual([]);
    expect(again.existing).toHaveLength(4);
  });
});

describe('KafkaPublisher', () => {
  it('does not create a topic by publishing to it', async () => {
    const missing = isolatedName('missing');
    await expect(
      publisher.publish([{ topic: missing, key: 'k', value: '{}', headers: { 'event-id': randomUUID() } }]),
    ).rejects.toThrow();
    expect(await admin.listTopics()).not.toContain(missing);
  }, 60_000);

  it('keeps each key on one partition and in order, across partitions and topics, with its headers', async () => {
    const trades = isolatedName('trades');
    const orders = isolatedName('orders');
    created.push(trades, orders);
    await ensureTopics(admin, [
      { topic: trades, partitions: 6 },
      { topic: orders, partitions: 3 },
    ]);
    const symbols = Array.from({ length: 24 }, (_, index) => `SYM${index}`);
    const sent: IntegrationMessage[] = [];
    for (let sequence = 0; sequence < 10; sequence += 1) {
      const batch: IntegrationMessage[] = [];
      for (const symbol of symbols) {
        batch.push({
          topic: trades,
          key: symbol,
          value: JSON.stringify({ symbol, sequence }),
          headers: { 'event-id': randomUUID(), 'event-type': 'TradeExecuted', 'schema-version': '1' },
        });
        if (sequence % 2 === 0)
          batch.push({
            topic: orders,
            key: `order-${symbol}`,
            value: JSON.stringify({ symbol, sequence }),
            headers: { 'event-id': randomUUID(), 'event-type': 'OrderFilled', 'schema-version': '1' },
          });
      }
      await publisher.publish(batch);
      sent.push(...batch);
    }

    const received = await readTopics(kafka, [trades, orders]);
    expect(received).toHaveLength(sent.length);
    const keys = byKey(received);
    expect(keys.size).toBe(48);
    for (const [, messages] of keys) {
      expect(new Set(messages.map((message) => message.partition)).size).toBe(1);
      const sequences = messages.map((message) => (message.value as { sequence: number }).sequence);
      expect(sequences).toEqual([...sequences].sort((a, b) => a - b));
    }
    expect(new Set(received.filter((m) => m.topic === trades).map((m) => m.partition)).size).toBeGreaterThan(
      1,
    );
    const headersById = new Map(sent.map((message) => [message.headers['event-id'], message.headers]));
    for (const message of received)
      expect(message.headers).toEqual(headersById.get(message.headers['event-id']));
  });
});
