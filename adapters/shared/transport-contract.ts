/**
 * The one contract every broker↔B3 transport adapter passes: the RabbitMQ bridge against a real
 * server, and the in-process transport of embedded mode. Each adapter's test file calls
 * `transportContract` with a factory giving a fresh, isolated transport per test.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  type DeadLetter,
  type DeadLetterReason,
  InvalidTransportMessage,
  type Transport,
  type TransportChannelName,
  type TransportDelivery,
  type TransportMessage,
  type TransportSubscription,
} from '../../domain/shared/transport.ts';
import { encodeMessage, type TransportLogger, type WireMessage } from './transport-codec.ts';
import { deadLettersTotal } from './transport-metrics.ts';

export interface TransportUnderTest extends Transport {
  /** Sends a message exactly as given, malformed or not, as a foreign publisher could. */
  publishWire(channel: TransportChannelName, wire: WireMessage): Promise<void>;
}

export interface TransportFactory {
  /** A transport over fresh, empty channels, logging to `logger` when one is given. */
  create(options?: { readonly logger?: TransportLogger }): Promise<TransportUnderTest>;
  /** Called once after the suite, to drop what `create` made on a server. */
  cleanup?(): Promise<void>;
}

export const newOrderBody = z.object({
  orderId: z.uuid(),
  accountId: z.string().min(1),
  symbol: z.string().regex(/^[A-Z0-9]{4,7}$/),
  side: z.enum(['BUY', 'SELL']),
  quantity: z.number().int().positive(),
  priceCents: z.number().int().positive(),
});
export type NewOrderBody = z.infer<typeof newOrderBody>;

export const executionReportBody = z.object({
  orderId: z.uuid(),
  executionId: z.string().min(1),
  status: z.enum(['ACK', 'FILL', 'PARTIAL_FILL', 'CANCELED', 'REJECTED', 'EXPIRED']),
});

export const orderSchemas = { NewOrder: newOrderBody } as const;

let sequence = 0;
export function newOrder(overrides: Partial<NewOrderBody> = {}): TransportMessage<NewOrderBody> {
  sequence += 1;
  return {
    messageId: randomUUID(),
    type: 'NewOrder',
    correlationId: `corr-${sequence}`,
    causationId: randomUUID(),
    schemaVersion: 1,
    body: {
      orderId: randomUUID(),
      accountId: `acc-${sequence}`,
      symbol: 'PETR4',
      side: 'BUY',
      quantity: 100,
      priceCents: 3_250,
      ...overrides,
    },
  };
}

export async function waitFor(
  condition: () => boolean,
  timeoutMs = 10_000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export async function deadLetterCount(
  channel: TransportChannelName,
  reason: DeadLetterReason,
): Promise<number> {
  const metric = await deadLettersTotal.get();
  return (
    metric.values.find((value) => value.labels.channel === channel && value.labels.reason === reason)
      ?.value ?? 0
  );
}

/** Polls a channel's dead letters until there are `count` of them. */
export async function deadLettersOf(
  transport: Transport,
  channel: TransportChannelName,
  count: number,
  timeoutMs = 10_000,
): Promise<DeadLetter[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const letters = await transport.deadLetters(channel);
    if (letters.length >= count || Date.now() > deadline) return letters;
    await sleep(20);
  }
}

/**
 * The order book a B3 consumer keeps in this suite: it books a NewOrder once per message id,
 * however often the transport delivers it. Idempotency is the consumer's job, not the transport's.
 */
export class DedupingBook {
  readonly booked = new Map<string, NewOrderBody>();
  private readonly seen = new Set<string>();
  deliveries = 0;

  book(message: TransportMessage<NewOrderBody>): void {
    this.deliveries += 1;
    if (this.seen.has(message.messageId)) return;
    this.seen.add(message.messageId);
    this.booked.set(message.body.orderId, message.body);
  }
}

const fast = { maxAttempts: 3, retryDelaysMs: [10, 30] } as const;

/** A logger that keeps what it was given, by level. */
function recordingLogger(): TransportLogger & { errors: Array<{ details: object; message: string }> } {
  const errors: Array<{ details: object; message: string }> = [];
  return {
    errors,
    info() {},
    warn() {},
    error(details, message) {
      errors.push({ details, message });
    },
  };
}

export function transportContract(name: string, factory: TransportFactory): void {
  describe(`Transport contract: ${name}`, () => {
    const opened: Transport[] = [];
    const open = async (options?: { readonly logger?: TransportLogger }) => {
      const transport = await factory.create(options);
      opened.push(transport);
      return transport;
    };
    afterAll(async () => {
      for (const transport of opened.reverse()) await transport.close();
      await factory.cleanup?.();
    });

    describe('delivery', () => {
      it('delivers every envelope field and the validated body, on each channel', async () => {
        const transport = await open();
        const received: Array<[TransportMessage<unknown>, TransportDelivery]> = [];
        const orders = await transport.consume(
          'broker-to-b3',
          async (message, delivery) => {
            received.push([message, delivery]);
          },
          { schemas: orderSchemas },
        );
        const reports = await transport.consume(
          'b3-to-broker',
          async (message, delivery) => {
            received.push([message, delivery]);
          },
          { schemas: { ExecutionReport: executionReportBody } },
        );
        const order = newOrder();
        const report: TransportMessage<z.infer<typeof executionReportBody>> = {
          messageId: randomUUID(),
          type: 'ExecutionReport',
          correlationId: order.correlationId,
          causationId: order.messageId,
          schemaVersion: 2,
          body: { orderId: order.body.orderId, executionId: 'exec-1', status: 'ACK' },
        };
        await transport.publish('broker-to-b3', order, { schema: newOrderBody });
        await transport.publish('b3-to-broker', report);
        await waitFor(() => received.length === 2, 10_000, 'both messages');
        const byType = new Map(received.map(([message, delivery]) => [message.type, { message, delivery }]));
        expect(byType.get('NewOrder')).toEqual({
          message: order,
          delivery: { channel: 'broker-to-b3', attempt: 1, redelivered: false },
        });
        expect(byType.get('ExecutionReport')).toEqual({
          message: report,
          delivery: { channel: 'b3-to-broker', attempt: 1, redelivered: false },
        });
        await orders.stop();
        await reports.stop();
      });

      it('keeps messages published before any consumer until one comes', async () => {
        const transport = await open();
        const sent = [newOrder(), newOrder(), newOrder()];
        for (const message of sent) await transport.publish('broker-to-b3', message);
        const received: string[] = [];
        const subscription = await transport.consume(
          'broker-to-b3',
          async (message) => {
            received.push(message.messageId);
          },
          { schemas: orderSchemas, prefetch: 1 },
        );
        await waitFor(() => received.length === 3, 10_000, 'three messages');
        // Prefetch 1 handles one message at a time, in the channel's order.
        expect(received).toEqual(sent.map((message) => message.messageId));
        await subscription.stop();
      });
    });

    describe('publish', () => {
      it('resolves once the transport confirmed the message, and refuses a malformed one', async () => {
        const transport = await open();
        await expect(transport.publish('broker-to-b3', newOrder())).resolves.toBeUndefined();
        await expect(
          transport.publish('broker-to-b3', { ...newOrder(), messageId: 'not-a-uuid' }),
        ).rejects.toBeInstanceOf(InvalidTransportMessage);
        await expect(
          transport.publish('broker-to-b3', newOrder({ quantity: -5 }), { schema: newOrderBody }),
        ).rejects.toThrow(/invalid NewOrder body/);
        await expect(
          transport.publish('broker-to-b3', { ...newOrder(), schemaVersion: 0 }),
        ).rejects.toBeInstanceOf(InvalidTransportMessage);
      });
    });

    describe('retries and dead letters', () => {
      it('retries a handler that fails twice, then acknowledges the message once', async () => {
        const transport = await open();
        const attempts: number[] = [];
        let succeeded = 0;
        const subscription = await transport.consume(
          'broker-to-b3',
          async (_message, delivery) => {
            attempts.push(delivery.attempt);
            if (delivery.attempt < 3) throw new Error(`book unavailable (attempt ${delivery.attempt})`);
            succeeded += 1;
          },
          { schemas: orderSchemas, ...fast },
        );
        const before = await deadLetterCount('broker-to-b3', 'handler-failed');
        await transport.publish('broker-to-b3', newOrder());
        await waitFor(() => succeeded === 1, 10_000, 'the third attempt');
        await sleep(150);
        expect(attempts).toEqual([1, 2, 3]);
        expect(succeeded).toBe(1);
        expect(await transport.deadLetters('broker-to-b3')).toEqual([]);
        expect(await deadLetterCount('broker-to-b3', 'handler-failed')).toBe(before);
        await subscription.stop();
      });

      it("retries past maxAttempts a failure the consumer calls the system's, never dead-lettering it, and handles the message once it passes", async () => {
        const transport = await open();
        const attempts: number[] = [];
        const outage = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), {
          code: 'ECONNREFUSED',
        });
        const subscription = await transport.consume(
          'b3-to-broker',
          async (_message, delivery) => {
            attempts.push(delivery.attempt);
            // The store is down for five attempts, two more than maxAttempts.
            if (attempts.length <= 5) throw outage;
          },
          {
            schemas: { ExecutionReport: executionReportBody },
            ...fast,
            isTransient: (error) => (error as { code?: string }).code === 'ECONNREFUSED',
          },
        );
        await transport.publish('b3-to-broker', {
          messageId: randomUUID(),
          type: 'ExecutionReport',
          correlationId: 'corr-outage',
          causationId: 'cause-outage',
          schemaVersion: 1,
          body: { orderId: randomUUID(), executionId: 'exec-outage', status: 'FILL' },
        });
        await waitFor(() => attempts.length === 6, 10_000, 'six attempts');
        expect(attempts).toEqual([1, 2, 3, 4, 5, 6]);
        await sleep(100);
        expect(attempts).toHaveLength(6);
        expect(await transport.deadLetters('b3-to-broker')).not.toContainEqual(
          expect.objectContaining({ correlationId: 'corr-outage' }),
        );
        await subscription.stop();
      });

      it('dead-letters a message whose handler always fails, after maxAttempts, with the reason', async () => {
        const logger = recordingLogger();
        const transport = await open({ logger });
        const attempts: number[] = [];
        const subscription = await transport.consume(
          'b3-to-broker',
          async (_message, delivery) => {
            attempts.push(delivery.attempt);
            throw new Error('settlement refused: wallet locked');
          },
          { schemas: { ExecutionReport: executionReportBody }, ...fast },
        );
        const before = await deadLetterCount('b3-to-broker', 'handler-failed');
        const report: TransportMessage<z.infer<typeof executionReportBody>> = {
          messageId: randomUUID(),
          type: 'ExecutionReport',
          correlationId: 'corr-report',
          causationId: 'cause-report',
          schemaVersion: 1,
          body: { orderId: randomUUID(), executionId: 'exec-9', status: 'FILL' },
        };
        await transport.publish('b3-to-broker', report);
        await waitFor(() => attempts.length === 3, 10_000, 'three attempts');
        const letters = await deadLettersOf(transport, 'b3-to-broker', 1);
        expect(attempts).toEqual([1, 2, 3]);
        expect(letters).toEqual([
          {
            channel: 'b3-to-broker',
            reason: 'handler-failed',
            detail: 'Error: settlement refused: wallet locked',
            attempts: 3,
            messageId: report.messageId,
            type: 'ExecutionReport',
            correlationId: 'corr-report',
            causationId: 'cause-report',
            schemaVersion: 1,
            content: JSON.stringify(report.body),
          },
        ]);
        expect(await deadLetterCount('b3-to-broker', 'handler-failed')).toBe(before + 1);
        // Logged at error level, with what an operator needs to find the message and the failure.
        const logged = logger.errors.filter((entry) => entry.message === 'transport message dead-lettered');
        expect(logged).toHaveLength(1);
        expect(logged[0]?.details).toMatchObject({
          channel: 'b3-to-broker',
          reason: 'handler-failed',
          messageId: report.messageId,
          type: 'ExecutionReport',
          correlationId: 'corr-report',
          attempts: 3,
          detail: 'Error: settlement refused: wallet locked',
        });
        const { err } = (logged[0]?.details ?? {}) as { err?: unknown };
        expect(err).toBeInstanceOf(Error);
        expect((err as Error).message).toBe('settlement refused: wallet locked');
        await sleep(100);
        expect(attempts).toHaveLength(3);
        await subscription.stop();
      });

      it('dead-letters poison messages at once: bad JSON, a body failing its schema, a bad envelope, an unknown type', async () => {
        const logger = recordingLogger();
        const transport = await open({ logger });
        let handled = 0;
        const subscription = await transport.consume(
          'broker-to-b3',
          async () => {
            handled += 1;
          },
          { schemas: orderSchemas, ...fast },
        );
        const counts = async () =>
          Promise.all(
            (['invalid-json', 'invalid-body', 'invalid-envelope', 'unknown-type'] as const).map((reason) =>
              deadLetterCount('broker-to-b3', reason),
            ),
          );
        const before = await counts();
        const badJson = { ...encodeMessage(newOrder()), content: '{"orderId": ' };
        const badBody = encodeMessage(newOrder({ symbol: 'not a ticker' }));
        const badEnvelope = { ...encodeMessage(newOrder()), messageId: undefined };
        const unknownType = encodeMessage({ ...newOrder(), type: 'CancelOrder' as const });
        for (const wire of [badJson, badBody, badEnvelope, unknownType])
          await transport.publishWire('broker-to-b3', wire);
        const letters = await deadLettersOf(transport, 'broker-to-b3', 4);
        expect(handled).toBe(0);
        const byReason = new Map(letters.map((letter) => [letter.reason, letter]));
        expect([...byReason.keys()].sort()).toEqual([
          'invalid-body',
          'invalid-envelope',
          'invalid-json',
          'unknown-type',
        ]);
        for (const letter of letters) expect(letter.attempts).toBe(1);
        expect(byReason.get('invalid-json')?.messageId).toBe(badJson.messageId);
        expect(byReason.get('invalid-json')?.content).toBe('{"orderId": ');
        expect(byReason.get('invalid-body')?.detail).toMatch(/symbol/);
        expect(byReason.get('invalid-envelope')?.detail).toMatch(/messageId/);
        expect(byReason.get('unknown-type')?.type).toBe('CancelOrder');
        const after = await counts();
        expect(after).toEqual(before.map((count) => count + 1));
        const loggedReasons = logger.errors
          .filter((entry) => entry.message === 'transport message dead-lettered')
          .map((entry) => (entry.details as { channel: string; reason: string }).reason);
        expect(loggedReasons.sort()).toEqual([
          'invalid-body',
          'invalid-envelope',
          'invalid-json',
          'unknown-type',
        ]);
        await subscription.stop();
      });
    });

    describe('at least once, idempotent consumers', () => {
      it('shows the message id so a redelivered NewOrder is booked once', async () => {
        const transport = await open();
        const book = new DedupingBook();
        let failOnce = true;
        const subscription = await transport.consume<NewOrderBody>(
          'broker-to-b3',
          async (message) => {
            book.book(message);
            // Booked, then the ack is lost (a crash, a dropped connection): the message comes again.
            if (failOnce) {
              failOnce = false;
              throw new Error('crashed after booking');
            }
          },
          { schemas: orderSchemas, ...fast },
        );
        const order = newOrder();
        const other = newOrder();
        // A publisher that retries an unconfirmed publish may send the same message twice.
        await transport.publish('broker-to-b3', order);
        await transport.publish('broker-to-b3', order);
        await transport.publish('broker-to-b3', other);
        await waitFor(() => book.deliveries === 4, 10_000, 'four deliveries');
        await sleep(100);
        expect(book.deliveries).toBe(4);
        expect([...book.booked.keys()].sort()).toEqual([order.body.orderId, other.body.orderId].sort());
        await subscription.stop();
      });
    });

    describe('stop', () => {
      it('drains the handlers in flight, takes no new deliveries, and leaves the rest queued', async () => {
        const transport = await open();
        const started: string[] = [];
        const finished: string[] = [];
        const sent = Array.from({ length: 6 }, () => newOrder());
        for (const message of sent) await transport.publish('broker-to-b3', message);
        const first: TransportSubscription = await transport.consume(
          'broker-to-b3',
          async (message) => {
            started.push(message.messageId);
            await sleep(200);
            finished.push(message.messageId);
          },
          { schemas: orderSchemas, prefetch: 2 },
        );
        await waitFor(() => started.length >= 1, 10_000, 'a handler to start');
        await first.stop();
        expect(finished).toEqual(started);
        const handledByFirst = started.length;
        expect(handledByFirst).toBeGreaterThanOrEqual(1);
        expect(handledByFirst).toBeLessThan(6);
        await sleep(100);
        expect(started).toHaveLength(handledByFirst);

        const rest: string[] = [];
        const second = await transport.consume(
          'broker-to-b3',
          async (message) => {
            rest.push(message.messageId);
          },
          { schemas: orderSchemas },
        );
        await waitFor(() => rest.length === 6 - handledByFirst, 10_000, 'the rest');
        expect(new Set([...started, ...rest])).toEqual(new Set(sent.map((message) => message.messageId)));
        await second.stop();
      });
    });
  });
}
