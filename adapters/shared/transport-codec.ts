/**
 * What both transport adapters share: the wire format of a message (JSON body, envelope in the
 * message properties and headers, as on RabbitMQ) and the decision a consumer takes for one
 * delivery (ack, retry later, or dead-letter with a reason).
 */
import {
  DEFAULT_MAX_ATTEMPTS,
  DEFAULT_RETRY_DELAYS_MS,
  type DeadLetter,
  type DeadLetterReason,
  describeIssues,
  retryDelay,
  type TransportBodySchemas,
  type TransportChannelName,
  type TransportConsumeOptions,
  type TransportDelivery,
  type TransportHandler,
  type TransportMessage,
  transportEnvelopeSchema,
} from '../../domain/shared/transport.ts';

export const HEADER_SCHEMA_VERSION = 'x-schema-version';
export const HEADER_CAUSATION_ID = 'x-causation-id';
/** The attempt the message is on: 1 when first published, raised by every retry. */
export const HEADER_ATTEMPT = 'x-attempt';
export const HEADER_DEATH_REASON = 'x-death-reason';
export const HEADER_DEATH_DETAIL = 'x-death-detail';
export const HEADER_DEATH_ATTEMPTS = 'x-death-attempts';
export const CONTENT_TYPE = 'application/json';

/** A message as a broker carries it: AMQP basic properties and a byte (or text) body. */
export interface WireMessage {
  readonly content: string;
  readonly messageId?: string | undefined;
  readonly type?: string | undefined;
  readonly correlationId?: string | undefined;
  readonly headers: Readonly<Record<string, unknown>>;
}

export function encodeMessage<Body>(message: TransportMessage<Body>): WireMessage {
  return {
    content: JSON.stringify(message.body),
    messageId: message.messageId,
    type: message.type,
    correlationId: message.correlationId,
    headers: {
      [HEADER_SCHEMA_VERSION]: message.schemaVersion,
      [HEADER_CAUSATION_ID]: message.causationId,
      [HEADER_ATTEMPT]: 1,
    },
  };
}

const asNumber = (value: unknown): number | undefined => {
  if (typeof value === 'number') return value;
  if (typeof value === 'bigint') return Number(value);
  if (typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value)))
    return Number(value);
  return undefined;
};
const asString = (value: unknown): string | undefined => {
  if (typeof value === 'string') return value;
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  return undefined;
};

export function attemptOf(wire: WireMessage): number {
  const attempt = asNumber(wire.headers[HEADER_ATTEMPT]);
  return attempt !== undefined && Number.isInteger(attempt) && attempt >= 1 ? attempt : 1;
}

/** The same message on its next attempt. */
export function withAttempt(wire: WireMessage, attempt: number): WireMessage {
  return { ...wire, headers: { ...wire.headers, [HEADER_ATTEMPT]: attempt } };
}

/** The same message with the reason it was given up, as it lands in a dead-letter queue. */
export function withDeathReason(
  wire: WireMessage,
  reason: DeadLetterReason,
  detail: string,
  attempts: number,
): WireMessage {
  return {
    ...wire,
    headers: {
      ...wire.headers,
      [HEADER_DEATH_REASON]: reason,
      [HEADER_DEATH_DETAIL]: detail.slice(0, 1_000),
      [HEADER_DEATH_ATTEMPTS]: attempts,
    },
  };
}

export function toDeadLetter(channel: TransportChannelName, wire: WireMessage): DeadLetter {
  return {
    channel,
    reason: (asString(wire.headers[HEADER_DEATH_REASON]) ?? 'handler-failed') as DeadLetterReason,
    detail: asString(wire.headers[HEADER_DEATH_DETAIL]) ?? '',
    attempts: asNumber(wire.headers[HEADER_DEATH_ATTEMPTS]) ?? attemptOf(wire),
    messageId: wire.messageId,
    type: wire.type,
    correlationId: wire.correlationId,
    causationId: asString(wire.headers[HEADER_CAUSATION_ID]),
    schemaVersion: asNumber(wire.headers[HEADER_SCHEMA_VERSION]),
    content: wire.content,
  };
}

export type Decoded<Body> =
  | { readonly ok: true; readonly message: TransportMessage<Body> }
  | { readonly ok: false; readonly reason: DeadLetterReason; readonly detail: string };

/** Envelope first, then JSON, then the body's schema: the first failure names the poison. */
export function decodeMessage<Body>(wire: WireMessage, schemas: TransportBodySchemas<Body>): Decoded<Body> {
  const envelope = transportEnvelopeSchema.safeParse({
    messageId: wire.messageId,
    type: wire.type,
    correlationId: wire.correlationId,
    causationId: asString(wire.headers[HEADER_CAUSATION_ID]),
    schemaVersion: asNumber(wire.headers[HEADER_SCHEMA_VERSION]),
  });
  if (!envelope.success)
    return { ok: false, reason: 'invalid-envelope', detail: describeIssues(envelope.error).join('; ') };
  let json: unknown;
  try {
    json = JSON.parse(wire.content);
  } catch (error) {
    return { ok: false, reason: 'invalid-json', detail: (error as Error).message };
  }
  const schema = schemas[envelope.data.type];
  if (!schema)
    return {
      ok: false,
      reason: 'unknown-type',
      detail: `no schema for ${envelope.data.type} on this consumer`,
    };
  const body = schema.safeParse(json);
  if (!body.success)
    return { ok: false, reason: 'invalid-body', detail: describeIssues(body.error).join('; ') };
  return { ok: true, message: { ...envelope.data, body: body.data } };
}

export type Outcome =
  | { readonly kind: 'ack' }
  | { readonly kind: 'retry'; readonly nextAttempt: number; readonly delayMs: number }
  | {
      readonly kind: 'dead-letter';
      readonly reason: DeadLetterReason;
      readonly detail: string;
      readonly attempts: number;
      /** What the handler threw, when it was the handler that failed. */
      readonly error?: unknown;
    };

export interface ConsumePolicy<Body> {
  readonly schemas: TransportBodySchemas<Body>;
  readonly maxAttempts: number;
  readonly retryDelaysMs: readonly number[];
  readonly isTransient?: (error: unknown) => boolean;
}

/** A consumer's policy from its options, with the defaults. */
export function consumePolicy<Body>(options: TransportConsumeOptions<Body>): ConsumePolicy<Body> {
  return {
    schemas: options.schemas,
    maxAttempts: options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS,
    retryDelaysMs: options.retryDelaysMs ?? DEFAULT_RETRY_DELAYS_MS,
    isTransient: options.isTransient,
  };
}

/** Runs the handler on one delivery and says what to do with the message. Never throws. */
export async function handleDelivery<Body>(
  wire: WireMessage,
  channel: TransportChannelName,
  redelivered: boolean,
  handler: TransportHandler<Body>,
  policy: ConsumePolicy<Body>,
): Promise<Outcome> {
  const attempt = attemptOf(wire);
  const decoded = decodeMessage(wire, policy.schemas);
  if (!decoded.ok)
    return { kind: 'dead-letter', reason: decoded.reason, detail: decoded.detail, attempts: attempt };
  const delivery: TransportDelivery = { channel, attempt, redelivered };
  try {
    await handler(decoded.message, delivery);
    return { kind: 'ack' };
  } catch (error) {
    const detail = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    if (attempt >= policy.maxAttempts && !policy.isTransient?.(error))
      return { kind: 'dead-letter', reason: 'handler-failed', detail, attempts: attempt, error };
    return { kind: 'retry', nextAttempt: attempt + 1, delayMs: retryDelay(policy.retryDelaysMs, attempt) };
  }
}

/** The pino methods a transport logs with. */
export interface TransportLogger {
  info(details: object, message: string): void;
  warn(details: object, message: string): void;
  error(details: object, message: string): void;
}

export const silentTransportLogger: TransportLogger = { info() {}, warn() {}, error() {} };

/**
 * Logs a message given up to the dead letters, at error level, the same way on every transport: a
 * dead letter is work the system will not do (a fill not settled, an order not booked), and the
 * metric alone does not say which message or why.
 */
export function logDeadLetter(
  logger: TransportLogger,
  channel: TransportChannelName,
  wire: WireMessage,
  outcome: Extract<Outcome, { kind: 'dead-letter' }>,
): void {
  logger.error(
    {
      channel,
      reason: outcome.reason,
      messageId: wire.messageId,
      type: wire.type,
      correlationId: wire.correlationId,
      attempts: outcome.attempts,
      detail: outcome.detail,
      ...(outcome.error !== undefined ? { err: outcome.error } : {}),
    },
    'transport message dead-lettered',
  );
}
