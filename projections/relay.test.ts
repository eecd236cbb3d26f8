import { randomUUID } from 'node:crypto';
import { register } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryEventStore } from '../adapters/memory/event-store.ts';
import type { NewEvent, RecordedEvent } from '../domain/shared/event-store.ts';
import {
  INTEGRATION_HEADERS,
  type IntegrationMapper,
  type IntegrationMessage,
  type IntegrationPublisher,
  MemoryRelayCheckpoints,
  Relay,
  type RelayCheckpoints,
  toIntegrationMessages,
} from './relay.ts';

const placed = (orderId: string, sequence: number): NewEvent => ({
  id: randomUUID(),
  type: 'OrderPlaced',
  data: { orderId, sequence },
  metadata: {
    correlationId: `corr-${orderId}`,
    causationId: `cause-${orderId}`,
    actor: 'trader-1',
    occurredAt: '2025-03-03T13:00:00.000Z',
    schemaVersion: 2,
  },
});

const toOrders: IntegrationMapper = (event) =>
  event.streamId.startsWith('order-')
    ? [{ topic: 'orders', key: event.streamId.slice('order-'.length), value: event.data }]
    : [];

class RecordingPublisher implements IntegrationPublisher {
  readonly published: IntegrationMessage[] = [];
  /** Accepts this many more messages, then fails mid-batch after publishing part of it. */
  failAfter = Number.POSITIVE_INFINITY;

  async publish(messages: IntegrationMessage[]): Promise<void> {
    const accepted = messages.slice(0, Math.max(0, this.failAfter));
    this.published.push(...accepted);
    this.failAfter -= accepted.length;
    if (accepted.length < messages.length) throw new Error('broker unavailable');
  }
}

async function until(condition: () => Promise<boolean> | boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function appendOrders(store: MemoryEventStore, orders: number, eventsPerOrder: number) {
  for (let sequence = 0; sequence < eventsPerOrder; sequence += 1)
    for (let order = 0; order < orders; order += 1)
      await store.append(`order-o${order}`, [placed(`o${order}`, sequence)]);
}

const relays: Relay[] = [];
afterEach(async () => {
  for (const relay of relays.splice(0)) await relay.stop();
});

function relay(options: {
  source: MemoryEventStore;
  publisher: IntegrationPublisher;
  checkpoints: RelayCheckpoints;
  batchSize?: number;
}) {
  const created = new Relay({ name: 'orders', map: toOrders, retryDelayMs: 10, ...options });
  relays.push(created);
  return created;
}

describe('toIntegrationMessages', () => {
  const event: RecordedEvent = {
    id: 'e-1',
    streamId: 'order-o1',
    type: 'OrderPlaced',
    version: 0,
    position: 17,
    data: { orderId: 'o1' },
    metadata: {
      correlationId: 'c-1',
      causationId: 'k-1',
      actor: 'a',
      occurredAt: '2025-03-03T13:00:00.000Z',
      schemaVersion: 3,
    },
    recordedAt: new Date(),
  };

  it('serialises the value as JSON and adds the standard headers over the mapper’s', () => {
    const [message] = toIntegrationMessages(event, () => [
      { topic: 'orders', key: 'o1', value: { a: 1 }, headers: { 'event-id': 'forged', tenant: 'x' } },
    ]);
    expect(message).toEqual({
      topic: 'orders',
      key: 'o1',
      value: '{"a":1}',
      headers: {
        tenant: 'x',
        [INTEGRATION_HEADERS.eventId]: 'e-1',
        [INTEGRATION_HEADERS.eventType]: 'OrderPlaced',
        [INTEGRATION_HEADERS.schemaVersion]: '3',
        [INTEGRATION_HEADERS.correlationId]: 'c-1',
        [INTEGRATION_HEADERS.causationId]: 'k-1',
        [INTEGRATION_HEADERS.occurredAt]: '2025-03-03T13:00:00.000Z',
        [INTEGRATION_HEADERS.position]: '17',
      },
    });
  });

  it('refuses two messages of one event on one topic, and empty keys', () => {
    expect(() =>
      toIntegrationMessages(event, () => [
        { topic: 'orders', key: 'o1', value: 1 },
        { topic: 'orders', key: 'o1', value: 2 },
      ]),
    ).toThrow(/twice/);
    expect(() => toIntegrationMessages(event, () => [{ topic: 'orders', key: '', value: 1 }])).toThrow(
      /empty key/,
    );
  });
});

describe('Relay', () => {
  it('publishes every mapped event once, in order, and checkpoints the last position', async () => {
    const source = new MemoryEventStore();
    await source.append('account-a1', [placed('a1', 0)]);
    await appendOrders(source, 3, 4);
    const publisher = new RecordingPublisher();
    const checkpoints = new MemoryRelayCheckpoints();
    const orders = relay({ source, publisher, checkpoints, batchSize: 5 });
    await orders.start();
    await until(async () => (await checkpoints.load('orders')) === 13);

    expect(publisher.published.map((message) => message.headers['source-position'])).toEqual(
      Array.from({ length: 12 }, (_, index) => String(index + 2)),
    );
    await appendOrders(source, 1, 1);
    await until(async () => (await checkpoints.load('orders')) === 14);
    expect(publisher.published).toHaveLength(13);
    expect(await orders.status()).toMatchObject({
      state: 'running',
      checkpoint: 14,
      head: 14,
      lagPositions: 0,
    });
    const metrics = await register.getSingleMetricAsString('tradecore_relay_messages_published_total');
    expect(metrics).toContain('relay="orders",topic="orders"} 13');
  });

  it('keeps the checkpoint before a batch the publisher failed, and publishes it again on restart', async () => {
    const source = new MemoryEventStore();
    await appendOrders(source, 4, 5); // positions 1..20
    const publisher = new RecordingPublisher();
    publisher.failAfter = 12;
    const checkpoints = new MemoryRelayCheckpoints();
    const first = relay({ source, publisher, checkpoints, batchSize: 5 });
    await first.start();
    await until(async () => (await first.status()).failures >= 2);
    await first.stop();
    // Batches 1–5 and 6–10 were acknowledged; 11–15 failed after two of its messages.
    expect(await checkpoints.load('orders')).toBe(10);
    expect(publisher.published).toHaveLength(12);
    expect((await first.status()).lagPositions).toBe(10);

    publisher.failAfter = Number.POSITIVE_INFINITY;
    const second = relay({ source, publisher, checkpoints, batchSize: 5 });
    await second.start();
    await until(async () => (await checkpoints.load('orders')) === 20);
    const positions = publisher.published.map((message) => Number(message.headers['source-position']));
    expect(positions).toEqual([...range(1, 12), ...range(11, 20)]);
    expect(new Set(publisher.published.map((message) => message.headers['event-id'])).size).toBe(20);
  });

  it('does not move the checkpoint while the publisher has not acknowledged', async () => {
    const source = new MemoryEventStore();
    await appendOrders(source, 2, 2);
    let acknowledge = () => {};
    const inFlight: IntegrationMessage[][] = [];
    const gated: IntegrationPublisher = {
      publish: (messages) =>
        new Promise<void>((resolve) => {
          inFlight.push(messages);
          acknowledge = resolve;
        }),
    };
    const checkpoints = new MemoryRelayCheckpoints();
    await relay({ source, publisher: gated, checkpoints, batchSize: 10 }).start();
    await until(() => inFlight.length === 1);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await checkpoints.load('orders')).toBe(0);
    acknowledge();
    await until(async () => (await checkpoints.load('orders')) === 4);
  });

  it('retries by itself after a failure and catches up', async () => {
    const source = new MemoryEventStore();
    await appendOrders(source, 2, 3);
    const publisher = new RecordingPublisher();
    publisher.failAfter = 1;
    const checkpoints = new MemoryRelayCheckpoints();
    const orders = relay({ source, publisher, checkpoints, batchSize: 2 });
    await orders.start();
    await until(async () => (await orders.status()).state === 'retrying');
    // It says where it fails: at Kafka, which the readiness check names.
    expect(await orders.status()).toMatchObject({ publishFailing: true });
    publisher.failAfter = Number.POSITIVE_INFINITY;
    await until(async () => (await checkpoints.load('orders')) === 6);
    expect(await orders.status()).toMatchObject({ state: 'running', checkpoint: 6, publishFailing: false });
  });

  it('says a failure to read its event store is not one of publishing', async () => {
    const source = new MemoryEventStore();
    await appendOrders(source, 2, 3);
    let down = true;
    const readAll = source.readAll.bind(source);
    source.readAll = async (...args) => {
      if (down)
        throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
      return readAll(...args);
    };
    const checkpoints = new MemoryRelayCheckpoints();
    const orders = relay({ source, publisher: new RecordingPublisher(), checkpoints, batchSize: 2 });
    await orders.start();
    await until(async () => (await orders.status()).state === 'retrying');
    expect(await orders.status()).toMatchObject({ state: 'retrying', publishFailing: false });
    down = false;
    await until(async () => (await checkpoints.load('orders')) === 6);
  });

  it('counts its failures from 0, so that a dashboard has a series before the first one', async () => {
    const name = `quiet-${randomUUID()}`;
    new Relay({
      name,
      source: new MemoryEventStore(),
      checkpoints: new MemoryRelayCheckpoints(),
      publisher: new RecordingPublisher(),
      map: toOrders,
    });
    const metrics = await register.getSingleMetricAsString('tradecore_relay_failures_total');
    expect(metrics).toContain(`tradecore_relay_failures_total{relay="${name}"} 0`);
  });

  it('moves the checkpoint over events that map to nothing', async () => {
    const source = new MemoryEventStore();
    await source.append('account-a1', [placed('a1', 0), placed('a1', 1)]);
    const publisher = new RecordingPublisher();
    const checkpoints = new MemoryRelayCheckpoints();
    await relay({ source, publisher, checkpoints }).start();
    await until(async () => (await checkpoints.load('orders')) === 2);
    expect(publisher.published).toEqual([]);
  });
});

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, index) => from + index);
}
