import amqp from 'amqplib';
import { afterAll, describe, expect, it } from 'vitest';
import { isolatedName, testUrls } from '../../infra/test-infra/isolation.ts';
import { TcpProxy } from '../../infra/test-infra/tcp-proxy.ts';
import {
  DedupingBook,
  deadLettersOf,
  type NewOrderBody,
  newOrder,
  orderSchemas,
  sleep,
  transportContract,
  waitFor,
} from '../shared/transport-contract.ts';
import { RabbitMqBridge, type RabbitMqBridgeOptions, type TransportLogger, topologyNames } from './bridge.ts';
import { closeConnectionByName, dropRabbitTopology } from './testing.ts';

const { amqpUrl } = testUrls();
const prefixes: string[] = [];
const bridges: RabbitMqBridge[] = [];

async function connect(options: Partial<RabbitMqBridgeOptions> = {}): Promise<RabbitMqBridge> {
  const prefix = options.prefix ?? isolatedName('bridge');
  if (!prefixes.includes(prefix)) prefixes.push(prefix);
  const bridge = await RabbitMqBridge.connect({
    url: amqpUrl,
    prefix,
    connectionName: isolatedName('bridge_conn'),
    reconnectDelayMs: { initial: 50, max: 500 },
    ...options,
  });
  bridges.push(bridge);
  return bridge;
}

/** Drops every queue and exchange the tests declared (retry queues for the delays they used). */
async function dropTopology(): Promise<void> {
  for (const prefix of prefixes) await dropRabbitTopology(amqpUrl, prefix, [10, 30, 100, 500, 2_000, 5_000]);
}

function recordingLogger(): TransportLogger & { messages: string[] } {
  const messages: string[] = [];
  const record = (_details: object, message: string) => {
    messages.push(message);
  };
  return { messages, info: record, warn: record, error: record };
}

/**
 * Closes a bridge's connection from the server side (`rabbitmqctl close_connection`), as a broker
 * restart or a network cut would; where rabbitmqctl is not at hand, destroys the client socket.
 */
async function killConnection(bridge: RabbitMqBridge): Promise<void> {
  try {
    if ((await closeConnectionByName(bridge.connectionName)) > 0) return;
  } catch {
    // No rabbitmqctl here: cut the socket instead.
  }
  cutSocket(bridge);
}

/** Destroys the bridge's socket under it, as a network cut would. */
function cutSocket(bridge: RabbitMqBridge): void {
  const internals = bridge as unknown as {
    connection?: { connection: { stream: { destroy(error: Error): void } } };
  };
  internals.connection?.connection.stream.destroy(new Error('test: socket cut'));
}

afterAll(async () => {
  for (const bridge of bridges.reverse()) await bridge.close();
  await dropTopology();
});

transportContract('RabbitMQ', {
  create: (options) => connect(options),
});

describe('RabbitMQ bridge', () => {
  it('gives up on a server that does not speak AMQP (Redis answers the greeting, then waits) within its connect timeout', async () => {
    const redis = new URL(testUrls().redisUrl);
    const started = Date.now();
    await expect(
      RabbitMqBridge.connect({ url: `amqp://guest:guest@${redis.host}`, connectTimeoutMs: 500 }),
    ).rejects.toThrow('ETIMEDOUT');
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('declares its topology idempotently and sends persistent JSON with the envelope in properties and headers', async () => {
    const prefix = isolatedName('bridge_topology');
    const first = await connect({ prefix });
    await connect({ prefix });
    const order = newOrder();
    await first.publish('broker-to-b3', order);

    const raw = await amqp.connect(amqpUrl);
    try {
      const channel = await raw.createChannel();
      const names = topologyNames('broker-to-b3', prefix);
      expect(names.queue).toBe(`${prefix}.mq-broker-to-b3`);
      expect(names.deadLetterQueue).toBe(`${prefix}.mq-broker-to-b3-dlq`);
      for (const queue of [names.queue, names.deadLetterQueue, topologyNames('b3-to-broker', prefix).queue])
        await channel.checkQueue(queue);
      for (const exchange of [names.exchange, names.deadLetterExchange, names.retryExchange])
        await channel.checkExchange(exchange);
      const message = await channel.get(names.queue, { noAck: true });
      if (message === false) throw new Error('the queue is empty');
      expect(JSON.parse(message.content.toString())).toEqual(order.body);
      expect(message.properties).toMatchObject({
        deliveryMode: 2,
        contentType: 'application/json',
        messageId: order.messageId,
        correlationId: order.correlationId,
        type: 'NewOrder',
        headers: { 'x-schema-version': 1, 'x-causation-id': order.causationId, 'x-attempt': 1 },
      });
      await channel.close();
    } finally {
      await raw.close();
    }
  });

  it('puts the reason in x-death-reason on the dead-letter queue', async () => {
    const bridge = await connect();
    const subscription = await bridge.consume(
      'broker-to-b3',
      async () => {
        throw new Error('book closed');
      },
      { schemas: orderSchemas, maxAttempts: 2, retryDelaysMs: [10] },
    );
    const order = newOrder();
    await bridge.publish('broker-to-b3', order);
    expect(await deadLettersOf(bridge, 'broker-to-b3', 1)).toHaveLength(1);
    await subscription.stop();

    const raw = await amqp.connect(amqpUrl);
    try {
      const channel = await raw.createChannel();
      const message = await channel.get(bridge.names('broker-to-b3').deadLetterQueue, { noAck: false });
      if (message === false) throw new Error('the dead-letter queue is empty');
      expect(message.properties.messageId).toBe(order.messageId);
      expect(message.properties.headers).toMatchObject({
        'x-death-reason': 'handler-failed',
        'x-death-detail': 'Error: book closed',
        'x-death-attempts': 2,
      });
      await channel.close();
    } finally {
      await raw.close();
    }
  });

  it('recovers a consumer whose connection is killed mid-stream: nothing confirmed is lost or booked twice', async () => {
    const prefix = isolatedName('bridge_consumer_kill');
    const publisher = await connect({ prefix });
    const log = recordingLogger();
    const consumerBridge = await connect({ prefix, logger: log });
    const sent = Array.from({ length: 300 }, () => newOrder());
    for (const message of sent.slice(0, 200)) await publisher.publish('broker-to-b3', message);
    const book = new DedupingBook();
    let killed: Promise<void> | undefined;
    const subscription = await consumerBridge.consume<NewOrderBody>(
      'broker-to-b3',
      async (message) => {
        await sleep(2);
        // The deliveries in flight when the connection dies book only after it is gone, so
        // their acks are lost and the broker delivers them again.
        if (killed) await killed;
        book.book(message);
      },
      { schemas: orderSchemas, prefetch: 10 },
    );
    const publishing = (async () => {
      for (const message of sent.slice(200)) await publisher.publish('broker-to-b3', message);
    })();
    await waitFor(() => book.booked.size >= 60, 20_000, '60 orders booked');
    killed = killConnection(consumerBridge);
    await killed;
    await publishing;
    await waitFor(() => book.booked.size === sent.length, 20_000, 'every order booked');
    await sleep(200);
    expect(consumerBridge.reconnects).toBe(1);
    expect(publisher.reconnects).toBe(0);
    expect(log.messages).toContain('RabbitMQ connection lost, reconnecting');
    expect([...book.booked.keys()].sort()).toEqual(sent.map((message) => message.body.orderId).sort());
    // Redelivered after the cut, and booked once thanks to the consumer's dedupe by message id.
    expect(book.deliveries).toBeGreaterThan(sent.length);
    await subscription.stop();
  });

  it('loses none of 500 messages published while the connection is dropped', async () => {
    const prefix = isolatedName('bridge_publisher_kill');
    const log = recordingLogger();
    const publisher = await connect({ prefix, logger: log });
    const sent = Array.from({ length: 500 }, () => newOrder());
    let confirmed = 0;
    const publish = async (message: (typeof sent)[number]) => {
      await publisher.publish('broker-to-b3', message);
      confirmed += 1;
    };
    // A window of publishes in flight, the way a relay streams an outbox.
    const stream = async (messages: typeof sent, gate?: () => Promise<void> | undefined) => {
      const queue = [...messages];
      const worker = async () => {
        for (let message = queue.shift(); message; message = queue.shift()) {
          await gate?.();
          await publish(message);
        }
      };
      await Promise.all(Array.from({ length: 25 }, worker));
    };

    await stream(sent.slice(0, 100));
    expect(confirmed).toBe(100);

    // 100 publishes written, none confirmed yet, when the socket dies: each is sent again.
    const inFlight = Promise.all(sent.slice(100, 200).map(publish));
    for (let tick = 0; tick < 20; tick++) await null;
    cutSocket(publisher);
    await inFlight;
    expect(confirmed).toBe(200);
    expect(
      log.messages.filter((message) => message === 'publish unconfirmed, sending again').length,
    ).toBeGreaterThan(0);

    // The server closes the connection mid-stream; publishes started meanwhile wait for the reconnect.
    let killed: Promise<void> | undefined;
    let started = 0;
    await stream(sent.slice(200), () => {
      started += 1;
      if (started === 50) killed = killConnection(publisher);
      return killed;
    });
    expect(confirmed).toBe(500);
    expect(publisher.reconnects).toBe(2);

    const book = new DedupingBook();
    const consumerBridge = await connect({ prefix });
    const subscription = await consumerBridge.consume<NewOrderBody>(
      'broker-to-b3',
      async (message) => {
        book.book(message);
      },
      { schemas: orderSchemas, prefetch: 50 },
    );
    await waitFor(() => book.booked.size === sent.length, 20_000, 'all 500 orders');
    await sleep(200);
    expect(book.booked.size).toBe(500);
    // A publish the connection cut before its confirm is sent again: at least once, never less.
    expect(book.deliveries).toBeGreaterThanOrEqual(500);
    await subscription.stop();
  });
});

describe('RabbitMQ bridge: a server that stays away', () => {
  it('says why in its readiness, and logs the repeated failures without their stack', async () => {
    const server = new URL(amqpUrl);
    const proxy = await TcpProxy.start({ host: server.hostname, port: Number(server.port || 5672) });
    const lines: Array<{ message: string; details: Record<string, unknown> }> = [];
    const record = (details: object, message: string) =>
      void lines.push({ message, details: details as Record<string, unknown> });
    const bridge = await connect({
      url: proxy.rewrite(amqpUrl),
      logger: { info: record, warn: record, error: record },
    });
    try {
      await proxy.stop();
      await waitFor(
        () => lines.filter((line) => line.message === 'RabbitMQ reconnect failed').length >= 3,
        20_000,
        'three failed reconnects',
      );
      await expect(bridge.deadLetters('b3-to-broker', { limit: 0 })).rejects.toThrow(
        /^RabbitMQ bridge is not connected \(last attempt: .*ECONNREFUSED/,
      );
      const failed = lines.filter((line) => line.message === 'RabbitMQ reconnect failed');
      expect(failed[0]!.details).toHaveProperty('err');
      for (const line of failed.slice(1)) {
        expect(line.details).not.toHaveProperty('err');
        expect(line.details.error).toMatch(/ECONNREFUSED/);
      }
      await proxy.start();
      // Back: the bridge reconnects by itself.
      for (let tries = 0; ; tries++) {
        const answered = await bridge.deadLetters('b3-to-broker', { limit: 0 }).then(
          () => true,
          () => false,
        );
        if (answered) break;
        if (tries > 100) throw new Error('the bridge never reconnected');
        await sleep(200);
      }
    } finally {
      await bridge.close();
      await proxy.stop();
    }
  });
});
