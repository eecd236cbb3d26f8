/**
 * The in-process broker↔B3 transport for embedded mode: the RabbitMQ bridge's semantics without
 * a server. Deliveries are asynchronous, at most `prefetch` per consumer in flight; a failing
 * handler's message comes back after its backoff delay with its attempt raised; a message that
 * fails `maxAttempts` times, or is poison, lands in the channel's dead-letter list (inspectable
 * with `deadLetters`), counts in `tradecore_transport_dead_letters_total` and is logged at error
 * level, as the RabbitMQ bridge does.
 *
 * Messages travel in the wire format (JSON text plus envelope properties), so a body that would
 * not survive RabbitMQ does not survive here either. Nothing outlives `close()`, nor the process:
 * where that matters (the embedded mode), `confirm: 'handled'` confirms a publish only once a
 * consumer has handled the message, so that a publisher counts as sent only what can no longer be
 * lost, and sends again after a crash whatever was not (docs/order-flow.md).
 */
import type { z } from 'zod';
import {
  assertValidOutgoing,
  DEFAULT_PREFETCH,
  type DeadLetter,
  type Transport,
  type TransportChannelName,
  type TransportConsumeOptions,
  type TransportHandler,
  type TransportMessage,
  type TransportSubscription,
} from '../../domain/shared/transport.ts';
import {
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

interface Consumer {
  readonly handler: TransportHandler<unknown>;
  readonly policy: ConsumePolicy<unknown>;
  readonly prefetch: number;
  readonly inFlight: Set<Promise<void>>;
  stopped: boolean;
}

/** A publish waiting for its confirm (`confirm: 'handled'`). */
interface Confirm {
  resolve(): void;
  reject(error: Error): void;
}

/** A message on its way: the wire, and the confirm its publisher waits for, if any. */
interface Queued {
  readonly wire: WireMessage;
  readonly confirm?: Confirm;
}

export interface MemoryTransportOptions {
  /**
   * When a publish resolves: `queued` (the default), once the message is queued, as a broker's
   * confirm; `handled`, once a consumer has handled it or it was dead-lettered, which in a
   * transport that dies with its process is when it is safe.
   */
  confirm?: 'queued' | 'handled';
  /** Where dead letters are logged. */
  readonly logger?: TransportLogger;
}

interface ChannelState {
  readonly ready: Queued[];
  readonly consumers: Consumer[];
  readonly deadLetters: WireMessage[];
  next: number;
  /** Messages waiting out a retry delay. */
  retrying: number;
}

export class MemoryTransport implements Transport {
  private readonly channels = new Map<TransportChannelName, ChannelState>();
  private readonly timers = new Set<NodeJS.Timeout>();
  /** Publishes waiting for their message to be handled: refused if the transport closes first. */
  private readonly unconfirmed = new Set<Confirm>();
  private closed = false;
  private readonly logger: TransportLogger;

  constructor(private readonly options: MemoryTransportOptions = {}) {
    this.logger = options.logger ?? silentTransportLogger;
  }

  async publish<Body>(
    channel: TransportChannelName,
    message: TransportMessage<Body>,
    options?: { readonly schema?: z.ZodType<Body> },
  ): Promise<void> {
    assertValidOutgoing(message, options?.schema);
    await this.publishWire(channel, encodeMessage(message));
  }

  /** Enqueues a message as it would arrive off the wire, malformed or not (tests use it for poison). */
  async publishWire(channel: TransportChannelName, wire: WireMessage): Promise<void> {
    if (this.closed) throw new Error('memory transport is closed');
    // The "confirm" comes on a later tick, as a broker's would.
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (this.options.confirm !== 'handled') return this.enqueue(channel, { wire });
    if (this.closed) throw new Error('memory transport is closed');
    await new Promise<void>((resolve, reject) => {
      const confirm: Confirm = {
        resolve: () => {
          this.unconfirmed.delete(confirm);
          resolve();
        },
        reject,
      };
      this.unconfirmed.add(confirm);
      this.enqueue(channel, { wire, confirm });
    });
  }

  async consume<Body>(
    channel: TransportChannelName,
    handler: TransportHandler<Body>,
    options: TransportConsumeOptions<Body>,
  ): Promise<TransportSubscription> {
    if (this.closed) throw new Error('memory transport is closed');
    const consumer: Consumer = {
      handler: handler as TransportHandler<unknown>,
      policy: consumePolicy(options),
      prefetch: Math.max(1, options.prefetch ?? DEFAULT_PREFETCH),
      inFlight: new Set(),
      stopped: false,
    };
    const state = this.state(channel);
    state.consumers.push(consumer);
    setImmediate(() => this.pump(channel));
    return {
      stop: async () => {
        consumer.stopped = true;
        const index = state.consumers.indexOf(consumer);
        if (index >= 0) state.consumers.splice(index, 1);
        while (consumer.inFlight.size > 0) await Promise.allSettled([...consumer.inFlight]);
      },
    };
  }

  async deadLetters(
    channel: TransportChannelName,
    options?: { readonly limit?: number },
  ): Promise<DeadLetter[]> {
    const all = this.state(channel).deadLetters.map((wire) => toDeadLetter(channel, wire));
    return options?.limit === undefined ? all : all.slice(0, options.limit);
  }

  /** See `Transport.settled`: a graceful stop lets the last messages reach their consumer first. */
  async settled(channel: TransportChannelName, timeoutMs = 5_000): Promise<boolean> {
    const state = this.state(channel);
    const busy = () =>
      state.ready.length > 0 ||
      state.retrying > 0 ||
      state.consumers.some((consumer) => consumer.inFlight.size > 0);
    const deadline = Date.now() + timeoutMs;
    while (busy() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
    return !busy();
  }

  /** Messages waiting for a consumer (not in flight, not waiting out a retry delay). */
  depth(channel: TransportChannelName): number {
    return this.state(channel).ready.length;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    const consumers = [...this.channels.values()].flatMap((state) => state.consumers.splice(0));
    for (const consumer of consumers) consumer.stopped = true;
    await Promise.allSettled(consumers.flatMap((consumer) => [...consumer.inFlight]));
    for (const confirm of this.unconfirmed)
      confirm.reject(new Error('memory transport closed before the message was handled'));
    this.unconfirmed.clear();
  }

  private state(channel: TransportChannelName): ChannelState {
    let state = this.channels.get(channel);
    if (!state) {
      state = { ready: [], consumers: [], deadLetters: [], next: 0, retrying: 0 };
      this.channels.set(channel, state);
    }
    return state;
  }

  private enqueue(channel: TransportChannelName, queued: Queued): void {
    this.state(channel).ready.push(queued);
    this.pump(channel);
  }

  /** Hands waiting messages to consumers with room, round robin. */
  private pump(channel: TransportChannelName): void {
    const state = this.state(channel);
    while (state.ready.length > 0) {
      const consumer = this.nextWithRoom(state);
      if (!consumer) return;
      const queued = state.ready.shift()!;
      const running = this.deliver(channel, consumer, queued).finally(() => {
        consumer.inFlight.delete(running);
        this.pump(channel);
      });
      consumer.inFlight.add(running);
    }
  }

  private nextWithRoom(state: ChannelState): Consumer | undefined {
    for (let tried = 0; tried < state.consumers.length; tried++) {
      const consumer = state.consumers[(state.next + tried) % state.consumers.length]!;
      if (!consumer.stopped && consumer.inFlight.size < consumer.prefetch) {
        state.next = (state.next + tried + 1) % state.consumers.length;
        return consumer;
      }
    }
    return undefined;
  }

  private async deliver(channel: TransportChannelName, consumer: Consumer, queued: Queued): Promise<void> {
    const { wire, confirm } = queued;
    await new Promise<void>((resolve) => setImmediate(resolve));
    const outcome = await handleDelivery(wire, channel, false, consumer.handler, consumer.policy);
    if (outcome.kind === 'retry') {
      const state = this.state(channel);
      state.retrying += 1;
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        state.retrying -= 1;
        this.enqueue(channel, { ...queued, wire: withAttempt(wire, outcome.nextAttempt) });
      }, outcome.delayMs);
      this.timers.add(timer);
      return;
    }
    if (outcome.kind === 'dead-letter') {
      this.state(channel).deadLetters.push(
        withDeathReason(wire, outcome.reason, outcome.detail, outcome.attempts),
      );
      deadLettersTotal.inc({ channel, reason: outcome.reason });
      logDeadLetter(this.logger, channel, wire, outcome);
    }
    // Handled, or parked where an operator finds it: either way no longer the publisher's.
    confirm?.resolve();
  }
}
