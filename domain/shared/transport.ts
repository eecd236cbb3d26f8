/**
 * The broker↔B3 transport port: messages between the brokerage and the exchange, at least once.
 *
 * Two logical channels carry them: `broker-to-b3` (NewOrder, CancelOrder, ModifyOrder, and an
 * admin's HaltTrading / ResumeTrading of a book) and
 * `b3-to-broker` (ExecutionReport). Adapters: RabbitMQ (`adapters/rabbitmq/bridge.ts`) and the
 * in-process one for embedded mode (`adapters/memory/transport.ts`); both pass one contract suite.
 *
 * Delivery is at least once: a message can reach a handler more than once (a crash between the
 * effect and the ack, a lost connection, a retry after a handler error that happened after its
 * effect). Idempotency is the consumer's job: it keys its effect on `messageId` (or a domain id
 * such as the order id or execution id) so a redelivered NewOrder is not booked twice and a
 * redelivered ExecutionReport is not settled twice.
 */
import { z } from 'zod';

export const TRANSPORT_CHANNELS = ['broker-to-b3', 'b3-to-broker'] as const;
export type TransportChannelName = (typeof TRANSPORT_CHANNELS)[number];

export const TRANSPORT_MESSAGE_TYPES = [
  'NewOrder',
  'CancelOrder',
  'ModifyOrder',
  'HaltTrading',
  'ResumeTrading',
  'ExecutionReport',
] as const;
export type TransportMessageType = (typeof TRANSPORT_MESSAGE_TYPES)[number];

/** One message on the wire: the envelope's fields plus a body whose schema the caller owns. */
export interface TransportMessage<Body = unknown> {
  /** A uuid, stable across retries and redeliveries: the key consumers deduplicate on. */
  readonly messageId: string;
  readonly type: TransportMessageType;
  /** The request the message belongs to (the order placement's correlation id). */
  readonly correlationId: string;
  /** The event or message that caused this one (e.g. the OrderAccepted event id). */
  readonly causationId: string;
  /** Version of the body's schema for this type; a changed body gets a new version. */
  readonly schemaVersion: number;
  readonly body: Body;
}

/** The envelope without its body: what adapters validate before they look at the body. */
export const transportEnvelopeSchema = z.object({
  messageId: z.uuid(),
  type: z.enum(TRANSPORT_MESSAGE_TYPES),
  correlationId: z.string().min(1),
  causationId: z.string().min(1),
  schemaVersion: z.number().int().positive(),
});

/** Body schemas by message type; a type without a schema is refused (dead-lettered) by the consumer. */
export type TransportBodySchemas<Body> = { readonly [Type in TransportMessageType]?: z.ZodType<Body> };

/** How a handler learns which delivery it is looking at. */
export interface TransportDelivery {
  readonly channel: TransportChannelName;
  /** 1 on the first attempt, 2 on the first retry, … (redeliveries after a lost connection keep the number). */
  readonly attempt: number;
  /** True when the broker may have delivered this message before (a lost ack). */
  readonly redelivered: boolean;
}

/** Resolves: the message is acknowledged. Throws: retried with backoff, then dead-lettered. */
export type TransportHandler<Body> = (
  message: TransportMessage<Body>,
  delivery: TransportDelivery,
) => Promise<void>;

export interface TransportConsumeOptions<Body> {
  /** Body schemas by type: a body that fails its schema is a poison message, dead-lettered at once. */
  readonly schemas: TransportBodySchemas<Body>;
  /** Attempts before a failing message is dead-lettered (default 5). */
  readonly maxAttempts?: number;
  /**
   * Delay before attempt n + 1 is `retryDelaysMs[n - 1]`, the last one repeating
   * (default 100, 500, 2 000, 5 000 ms).
   */
  readonly retryDelaysMs?: readonly number[];
  /** Deliveries handled at once, unacknowledged (default 16). 1 keeps the channel's order. */
  readonly prefetch?: number;
  /**
   * Whether a handler's failure is the system's (a store unreachable, a connection lost), not the
   * message's: such a failure is retried for as long as it lasts, at the last delay once the
   * others are spent, and never dead-letters the message. Absent: every failure counts.
   */
  readonly isTransient?: (error: unknown) => boolean;
}

export const DEFAULT_MAX_ATTEMPTS = 5;
export const DEFAULT_RETRY_DELAYS_MS: readonly number[] = [100, 500, 2_000, 5_000];
export const DEFAULT_PREFETCH = 16;

/** The wait before attempt `attempt + 1`, after attempt `attempt` failed. */
export function retryDelay(retryDelaysMs: readonly number[], attempt: number): number {
  if (retryDelaysMs.length === 0) return 0;
  return retryDelaysMs[Math.min(attempt, retryDelaysMs.length) - 1] ?? 0;
}

/** Why a message was dead-lettered: a small, fixed set, used as a metric label. */
export type DeadLetterReason =
  /** The handler threw on every one of `maxAttempts` attempts. */
  | 'handler-failed'
  /** The content is not JSON. */
  | 'invalid-json'
  /** Message id, type, correlation or causation id, or schema version missing or malformed. */
  | 'invalid-envelope'
  /** No body schema for this type on this consumer. */
  | 'unknown-type'
  /** The body fails its type's schema. */
  | 'invalid-body';

/** A dead-lettered message as an operator sees it: what was sent, and why it was given up. */
export interface DeadLetter {
  readonly channel: TransportChannelName;
  readonly reason: DeadLetterReason;
  /** The last error's message, or the validation issues. */
  readonly detail: string;
  readonly attempts: number;
  /** Envelope fields as received; any may be missing on a poison message. */
  readonly messageId: string | undefined;
  readonly type: string | undefined;
  readonly correlationId: string | undefined;
  readonly causationId: string | undefined;
  readonly schemaVersion: number | undefined;
  /** The raw content, as text. */
  readonly content: string;
}

export interface TransportPublisher {
  /**
   * Sends one message; resolves only once the transport has taken responsibility for it (the
   * broker's publisher confirm, with the message persisted in a durable queue). A publish
   * during a lost connection waits for the reconnect. Rejects with `InvalidTransportMessage`
   * when the envelope (or, given a schema, the body) is malformed.
   */
  publish<Body>(
    channel: TransportChannelName,
    message: TransportMessage<Body>,
    options?: { readonly schema?: z.ZodType<Body> },
  ): Promise<void>;
}

export interface TransportSubscription {
  /** Stops taking deliveries, waits for the handlers in flight and their acks, then returns. */
  stop(): Promise<void>;
}

export interface TransportConsumer {
  consume<Body>(
    channel: TransportChannelName,
    handler: TransportHandler<Body>,
    options: TransportConsumeOptions<Body>,
  ): Promise<TransportSubscription>;
}

export interface TransportDeadLetters {
  /** Dead letters of a channel, oldest first, without removing them. */
  deadLetters(channel: TransportChannelName, options?: { readonly limit?: number }): Promise<DeadLetter[]>;
}

export interface Transport extends TransportPublisher, TransportConsumer, TransportDeadLetters {
  /** Stops every consumer (draining), then releases connections. */
  close(): Promise<void>;
  /**
   * A transport that keeps nothing past its process (in process): resolves once every message
   * published to `channel` so far has been handled, or after `timeoutMs`, and says which. A
   * server's queues keep unhandled messages for the next start, so they need none.
   */
  settled?(channel: TransportChannelName, timeoutMs?: number): Promise<boolean>;
}

export class InvalidTransportMessage extends Error {
  constructor(
    message: string,
    readonly issues: readonly string[] = [],
  ) {
    super(message);
    this.name = 'InvalidTransportMessage';
  }
}

/** Checks an outgoing message; throws `InvalidTransportMessage` naming every problem. */
export function assertValidOutgoing<Body>(message: TransportMessage<Body>, schema?: z.ZodType<Body>): void {
  const envelope = transportEnvelopeSchema.safeParse(message);
  if (!envelope.success)
    throw new InvalidTransportMessage('invalid transport envelope', describeIssues(envelope.error));
  if (schema) {
    const body = schema.safeParse(message.body);
    if (!body.success)
      throw new InvalidTransportMessage(`invalid ${message.type} body`, describeIssues(body.error));
  }
}

export function describeIssues(error: z.ZodError): string[] {
  return error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`);
}
