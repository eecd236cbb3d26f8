/**
 * The broker↔B3 transport over RabbitMQ (amqplib). See docs/transport.md for the whole picture.
 *
 * Topology, per logical channel (`broker-to-b3`, `b3-to-broker`), every name behind an optional
 * prefix, all durable, declared idempotently on every (re)connect:
 *
 *   exchange   tradecore.<channel>         direct ──<channel>──▶ queue mq-<channel>
 *   exchange   tradecore.<channel>.dlx     direct ──<channel>──▶ queue mq-<channel>-dlq
 *   exchange   tradecore.<channel>.retry   direct ──retry-<d>ms──▶ queue mq-<channel>-retry-<d>ms
 *                                          (x-message-ttl d, dead-letters back to tradecore.<channel>)
 *
 * Retries re-publish the message to the delay queue of its backoff step with `x-attempt` raised,
 * then ack the original. One queue per delay, not a per-message expiration, because RabbitMQ only
 * expires messages at a queue's head: with one TTL per queue, head order is expiry order. Poison
 * messages and messages out of attempts are re-published to the dead-letter exchange with
 * `x-death-reason`, `x-death-detail` and `x-death-attempts` headers, then acked; the main queue
 * also names the dead-letter exchange, so anything the broker itself rejects lands there too.
 *
 * Publishing goes through a ConfirmChannel with `mandatory`: `publish` resolves on the broker's
 * ack (the persistent message is in a durable queue) and retries across connection losses until
 * `publishTimeoutMs`, so a confirmed message is never lost; a retried publish may arrive twice,
 * which consumers absorb by deduplicating on the message id.
 */
import { hostname } from 'node:os';
import amqp, {
  type ChannelModel,
  type ConfirmChannel,
  type ConsumeMessage,
  type Message,
  type Options,
} from 'amqplib';
import type { z } from 'zod';
import {
  assertValidOutgoing,
  DEFAULT_PREFETCH,
  type DeadLetter,
  TRANSPORT_CHANNELS,
  type Transport,
  type TransportChannelName,
  type TransportConsumeOptions,
  type TransportHandler,
  type TransportMessage,
  type TransportSubscription,
} from '../../domain/shared/transport.ts';
import {
  CONTENT_TYPE,
  type ConsumePolicy,
  consumePolicy,
  encodeMessage,
  handleDelivery,
  logDeadLetter,
  silentTransportLogger,
  type TransportLogger,
  toDeadLetter,
  type WireMessage,
  withAttempt,
  withDeathReason,
} from '../shared/transport-codec.ts';
import { deadLettersTotal } from '../shared/transport-metrics.ts';

export type { TransportLogger } from '../shared/transport-codec.ts';

const silent: TransportLogger = silentTransportLogger;

export interface RabbitMqBridgeOptions {
  /** `amqp://user:password@host:5672/vhost`; add `?heartbeat=10` to notice a dead peer sooner. */
  readonly url: string;
  /** Prepended to every exchange and queue name (`<prefix>.mq-broker-to-b3`), to isolate tests or tenants. */
  readonly prefix?: string;
  /** Shown by `rabbitmqctl list_connections client_properties`. */
  readonly connectionName?: string;
  readonly logger?: TransportLogger;
  /** Reconnect backoff: first delay, doubled up to the maximum, with jitter (default 100 ms → 5 s). */
  readonly reconnectDelayMs?: { readonly initial?: number; readonly max?: number };
  /** How long a publish keeps retrying through a lost connection before it rejects (default 60 s). */
  readonly publishTimeoutMs?: number;
  /**
   * How long connecting and the AMQP handshake may go without a byte before they fail (default
   * 10 s): a URL naming another kind of server (Redis answers AMQP's greeting with an error, then
   * waits) must not hang a start. amqplib clears it once the connection is open.
   */
  readonly connectTimeoutMs?: number;
}

export interface TopologyNames {
  readonly exchange: string;
  readonly routingKey: string;
  readonly queue: string;
  readonly deadLetterExchange: string;
  readonly deadLetterQueue: string;
  readonly retryExchange: string;
  retryQueue(delayMs: number): string;
  retryRoutingKey(delayMs: number): string;
}

export function topologyNames(channel: TransportChannelName, prefix?: string): TopologyNames {
  const name = (base: string) => (prefix ? `${prefix}.${base}` : base);
  const queue = name(`mq-${channel}`);
  return {
    exchange: name(`tradecore.${channel}`),
    routingKey: channel,
    queue,
    deadLetterExchange: name(`tradecore.${channel}.dlx`),
    deadLetterQueue: `${queue}-dlq`,
    retryExchange: name(`tradecore.${channel}.retry`),
    retryQueue: (delayMs) => `${queue}-retry-${delayMs}ms`,
    retryRoutingKey: (delayMs) => `retry-${delayMs}ms`,
  };
}

class Unroutable extends Error {
  override readonly name = 'Unroutable';
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** See `RabbitMqBridgeOptions.connectTimeoutMs`. */
const CONNECT_TIMEOUT_MS = 10_000;

function toWire(message: Message): WireMessage {
  const properties = message.properties;
  return {
    content: message.content.toString('utf8'),
    messageId: typeof properties.messageId === 'string' ? properties.messageId : undefined,
    type: typeof properties.type === 'string' ? properties.type : undefined,
    correlationId: typeof properties.correlationId === 'string' ? properties.correlationId : undefined,
    headers: (properties.headers ?? {}) as Record<string, unknown>,
  };
}

function publishOptions(wire: WireMessage, mandatory: boolean): Options.Publish {
  return {
    persistent: true,
    mandatory,
    contentType: CONTENT_TYPE,
    contentEncoding: 'utf-8',
    messageId: wire.messageId,
    correlationId: wire.correlationId,
    type: wire.type,
    headers: { ...wire.headers },
  };
}

/** Messages the broker returned as unroutable, by message id, per publishing channel. */
const returnedIds = new WeakMap<ConfirmChannel, Set<string>>();

/** Publishes one message and waits for its confirm; rejects when the channel closes first. */
function publishConfirmed(
  channel: ConfirmChannel,
  exchange: string,
  routingKey: string,
  wire: WireMessage,
  mandatory: boolean,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    channel.publish(
      exchange,
      routingKey,
      Buffer.from(wire.content, 'utf8'),
      publishOptions(wire, mandatory),
      (error) => {
        if (error) return reject(error instanceof Error ? error : new Error(String(error)));
        const returned = returnedIds.get(channel);
        if (wire.messageId && returned?.delete(wire.messageId))
          return reject(new Unroutable(`no queue bound for ${routingKey} on ${exchange}`));
        resolve();
      },
    );
  });
}

/** One `consume` call: re-attached to every new connection until stopped. */
class BridgeConsumer {
  private channel: ConfirmChannel | undefined;
  private consumerTag: string | undefined;
  private readonly inFlight = new Set<Promise<void>>();
  stopped = false;

  constructor(
    readonly channelName: TransportChannelName,
    private readonly names: TopologyNames,
    private readonly handler: TransportHandler<unknown>,
    private readonly policy: ConsumePolicy<unknown>,
    private readonly prefetch: number,
    private readonly logger: TransportLogger,
  ) {}

  async attach(connection: ChannelModel): Promise<void> {
    const channel = await connection.createConfirmChannel();
    channel.on('error', (error: Error) =>
      this.logger.warn({ err: error, channel: this.channelName }, 'transport consumer channel error'),
    );
    channel.on('close', () => {
      // Closed under a live connection (a channel error): start over on a fresh connection.
      if (!this.stopped && this.channel === channel) connection.close().catch(() => undefined);
    });
    await channel.prefetch(this.prefetch);
    for (const delay of new Set(this.policy.retryDelaysMs))
      await declareRetryQueue(channel, this.names, delay);
    this.channel = channel;
    const { consumerTag } = await channel.consume(
      this.names.queue,
      (message) => this.onMessage(channel, message),
      {
        noAck: false,
      },
    );
    this.consumerTag = consumerTag;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const channel = this.channel;
    if (channel && this.consumerTag) await channel.cancel(this.consumerTag).catch(() => undefined);
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
    if (channel) await channel.close().catch(() => undefined);
    this.channel = undefined;
  }

  private onMessage(channel: ConfirmChannel, message: ConsumeMessage | null): void {
    if (message === null) {
      // The broker cancelled the consumer (its queue was deleted): the next reconnect re-declares it.
      this.logger.warn({ channel: this.channelName }, 'transport consumer cancelled by the broker');
      return;
    }
    const running = this.process(channel, message).finally(() => this.inFlight.delete(running));
    this.inFlight.add(running);
  }

  private async process(channel: ConfirmChannel, message: ConsumeMessage): Promise<void> {
    const wire = toWire(message);
    const outcome = await handleDelivery(
      wire,
      this.channelName,
      message.fields.redelivered,
      this.handler,
      this.policy,
    );
    try {
      if (outcome.kind === 'retry') {
        await publishConfirmed(
          channel,
          this.names.retryExchange,
          this.names.retryRoutingKey(outcome.delayMs),
          withAttempt(wire, outcome.nextAttempt),
          false,
        );
      } else if (outcome.kind === 'dead-letter') {
        await publishConfirmed(
          channel,
          this.names.deadLetterExchange,
          this.names.routingKey,
          withDeathReason(wire, outcome.reason, outcome.detail, outcome.attempts),
          false,
        );
        deadLettersTotal.inc({ channel: this.channelName, reason: outcome.reason });
        logDeadLetter(this.logger, this.channelName, wire, outcome);
      }
      channel.ack(message);
    } catch (error) {
      // The channel is gone: the broker redelivers the unacked message on the next connection.
      this.logger.warn(
        { err: error, channel: this.channelName, messageId: wire.messageId },
        'transport ack lost, the message will be redelivered',
      );
    }
  }
}

async function declareChannel(channel: ConfirmChannel, names: TopologyNames): Promise<void> {
  await channel.assertExchange(names.exchange, 'direct', { durable: true });
  await channel.assertExchange(names.deadLetterExchange, 'direct', { durable: true });
  await channel.assertExchange(names.retryExchange, 'direct', { durable: true });
  await channel.assertQueue(names.deadLetterQueue, { durable: true });
  await channel.bindQueue(names.deadLetterQueue, names.deadLetterExchange, names.routingKey);
  await channel.assertQueue(names.queue, {
    durable: true,
    deadLetterExchange: names.deadLetterExchange,
    deadLetterRoutingKey: names.routingKey,
  });
  await channel.bindQueue(names.queue, names.exchange, names.routingKey);
}

async function declareRetryQueue(
  channel: ConfirmChannel,
  names: TopologyNames,
  delayMs: number,
): Promise<void> {
  const queue = names.retryQueue(delayMs);
  await channel.assertQueue(queue, {
    durable: true,
    messageTtl: delayMs,
    deadLetterExchange: names.exchange,
    deadLetterRoutingKey: names.routingKey,
  });
  await channel.bindQueue(queue, names.retryExchange, names.retryRoutingKey(delayMs));
}

export class RabbitMqBridge implements Transport {
  private connection: ChannelModel | undefined;
  private publishChannel: ConfirmChannel | undefined;
  private channelWaiters: Array<(channel: ConfirmChannel | Error) => void> = [];
  private connecting: Promise<void> | undefined;
  /** Why the last (re)connect attempt failed, while the bridge is not connected: readiness says it. */
  private connectError: string | undefined;
  private readonly consumers = new Set<BridgeConsumer>();
  private closed = false;
  private sessions = 0;
  private readonly logger: TransportLogger;
  private readonly publishTimeoutMs: number;
  readonly connectionName: string;

  private constructor(private readonly options: RabbitMqBridgeOptions) {
    this.logger = options.logger ?? silent;
    this.publishTimeoutMs = options.publishTimeoutMs ?? 60_000;
    this.connectionName = options.connectionName ?? `tradecore-bridge-${hostname()}-${process.pid}`;
  }

  /** Connects and declares the topology; fails when the first connection fails. */
  static async connect(options: RabbitMqBridgeOptions): Promise<RabbitMqBridge> {
    const bridge = new RabbitMqBridge(options);
    await bridge.openSession();
    return bridge;
  }

  names(channel: TransportChannelName): TopologyNames {
    return topologyNames(channel, this.options.prefix);
  }

  /** Connections opened after the first one. */
  get reconnects(): number {
    return Math.max(0, this.sessions - 1);
  }

  /** True while a connection is open and the topology declared. */
  get connected(): boolean {
    return this.publishChannel !== undefined;
  }

  async publish<Body>(
    channel: TransportChannelName,
    message: TransportMessage<Body>,
    options?: { readonly schema?: z.ZodType<Body> },
  ): Promise<void> {
    assertValidOutgoing(message, options?.schema);
    await this.publishWire(channel, encodeMessage(message));
  }

  /** Publishes a message as given, malformed or not (tests use it for poison); waits for the confirm. */
  async publishWire(channel: TransportChannelName, wire: WireMessage): Promise<void> {
    const names = this.names(channel);
    const deadline = Date.now() + this.publishTimeoutMs;
    let delay = 50;
    for (;;) {
      if (this.closed) throw new Error('RabbitMQ bridge is closed');
      try {
        const confirmChannel = await this.waitForPublishChannel(deadline);
        await publishConfirmed(confirmChannel, names.exchange, names.routingKey, wire, true);
        return;
      } catch (error) {
        if (error instanceof Unroutable || Date.now() >= deadline) throw error;
        // Unconfirmed: the channel closed or the broker nacked. Publish again; consumers dedupe.
        this.logger.warn(
          { err: error, channel, messageId: wire.messageId, correlationId: wire.correlationId },
          'publish unconfirmed, sending again',
        );
        await sleep(delay);
        delay = Math.min(delay * 2, 1_000);
      }
    }
  }

  async consume<Body>(
    channel: TransportChannelName,
    handler: TransportHandler<Body>,
    options: TransportConsumeOptions<Body>,
  ): Promise<TransportSubscription> {
    if (this.closed) throw new Error('RabbitMQ bridge is closed');
    const consumer = new BridgeConsumer(
      channel,
      this.names(channel),
      handler as TransportHandler<unknown>,
      consumePolicy(options),
      Math.max(1, options.prefetch ?? DEFAULT_PREFETCH),
      this.logger,
    );
    this.consumers.add(consumer);
    // Attached now when connected; otherwise (or if this attach is cut short) by the reconnect.
    const connection = this.connection;
    if (connection && this.publishChannel) {
      try {
        await consumer.attach(connection);
      } catch (error) {
        if (this.connection === connection) {
          this.consumers.delete(consumer);
          throw error;
        }
        this.logger.warn({ err: error, channel }, 'transport consumer waits for the reconnect');
      }
    }
    return {
      stop: async () => {
        this.consumers.delete(consumer);
        await consumer.stop();
      },
    };
  }

  /** Peeks at a channel's dead-letter queue: gets up to `limit` messages unacked, then returns them. */
  async deadLetters(
    channel: TransportChannelName,
    options?: { readonly limit?: number },
  ): Promise<DeadLetter[]> {
    const limit = options?.limit ?? 100;
    const connection = this.connection;
    if (!connection)
      throw new Error(
        `RabbitMQ bridge is not connected${this.connectError ? ` (last attempt: ${this.connectError})` : ''}`,
      );
    const peek = await connection.createChannel();
    try {
      const letters: DeadLetter[] = [];
      while (letters.length < limit) {
        const message = await peek.get(this.names(channel).deadLetterQueue, { noAck: false });
        if (message === false) break;
        letters.push(toDeadLetter(channel, toWire(message)));
      }
      return letters;
    } finally {
      // Closing the channel puts every unacked message back, in its place.
      await peek.close().catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const waiters = this.channelWaiters;
    this.channelWaiters = [];
    for (const waiter of waiters) waiter(new Error('RabbitMQ bridge is closed'));
    await Promise.allSettled([...this.consumers].map((consumer) => consumer.stop()));
    this.consumers.clear();
    const connection = this.connection;
    this.connection = undefined;
    this.publishChannel = undefined;
    if (connection) await connection.close().catch(() => undefined);
  }

  private waitForPublishChannel(deadline: number): Promise<ConfirmChannel> {
    if (this.publishChannel) return Promise.resolve(this.publishChannel);
    return new Promise<ConfirmChannel>((resolve, reject) => {
      const timer = setTimeout(
        () => {
          this.channelWaiters = this.channelWaiters.filter((waiter) => waiter !== onChannel);
          reject(new Error(`RabbitMQ unreachable for ${this.publishTimeoutMs} ms`));
        },
        Math.max(0, deadline - Date.now()),
      );
      const onChannel = (channel: ConfirmChannel | Error) => {
        clearTimeout(timer);
        if (channel instanceof Error) reject(channel);
        else resolve(channel);
      };
      this.channelWaiters.push(onChannel);
    });
  }

  /** Connects, declares the topology, opens the publishing channel and re-attaches every consumer. */
  private async openSession(): Promise<void> {
    const connection = await amqp.connect(this.options.url, {
      clientProperties: { connection_name: this.connectionName },
      timeout: this.options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS,
    });
    let lost = false;
    connection.on('error', (error: Error) => this.logger.warn({ err: error }, 'RabbitMQ connection error'));
    connection.on('close', () => {
      lost = true;
      this.onConnectionLost(connection);
    });
    try {
      const publishChannel = await connection.createConfirmChannel();
      const returned = new Set<string>();
      returnedIds.set(publishChannel, returned);
      publishChannel.on('return', (message: ConsumeMessage) => {
        if (typeof message.properties.messageId === 'string') returned.add(message.properties.messageId);
      });
      publishChannel.on('error', (error: Error) =>
        this.logger.warn({ err: error }, 'RabbitMQ publishing channel error'),
      );
      publishChannel.on('close', () => {
        // A channel closed under a live connection (a channel error): start over on a fresh connection.
        if (this.publishChannel === publishChannel && !this.closed) connection.close().catch(() => undefined);
      });
      for (const channel of TRANSPORT_CHANNELS) await declareChannel(publishChannel, this.names(channel));
      for (const consumer of this.consumers) if (!consumer.stopped) await consumer.attach(connection);
      if (lost) throw new Error('connection lost while opening the session');
      if (this.closed) throw new Error('RabbitMQ bridge is closed');
      this.connection = connection;
      this.publishChannel = publishChannel;
      this.sessions += 1;
      const waiters = this.channelWaiters;
      this.channelWaiters = [];
      for (const waiter of waiters) waiter(publishChannel);
      this.logger.info({ connection: this.connectionName }, 'RabbitMQ bridge connected');
    } catch (error) {
      await connection.close().catch(() => undefined);
      throw error;
    }
  }

  private onConnectionLost(connection: ChannelModel): void {
    if (this.connection !== connection) return;
    this.connection = undefined;
    this.publishChannel = undefined;
    if (this.closed) return;
    this.logger.warn({ connection: this.connectionName }, 'RabbitMQ connection lost, reconnecting');
    this.reconnect();
  }

  private reconnect(): void {
    if (this.connecting || this.closed) return;
    this.connecting = this.reconnectLoop().finally(() => {
      this.connecting = undefined;
      // A loss right after the loop connected, before it finished, needs another round.
      if (!this.connection && !this.closed) this.reconnect();
    });
  }

  private async reconnectLoop(): Promise<void> {
    const initial = this.options.reconnectDelayMs?.initial ?? 100;
    const max = this.options.reconnectDelayMs?.max ?? 5_000;
    let delay = initial;
    let failures = 0;
    while (!this.closed && !this.connection) {
      await sleep(delay * (0.8 + Math.random() * 0.4));
      if (this.closed) return;
      try {
        await this.openSession();
        this.connectError = undefined;
      } catch (error) {
        failures += 1;
        this.connectError = error instanceof Error ? error.message : String(error);
        // The first failure with its stack; the next ones in a line each, the same failure again.
        this.logger.warn(
          failures === 1
            ? { err: error, retryInMs: delay }
            : { error: this.connectError, failures, retryInMs: delay },
          'RabbitMQ reconnect failed',
        );
        delay = Math.min(delay * 2, max);
      }
    }
  }
}
