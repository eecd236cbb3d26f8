import { createHmac } from 'node:crypto';
import type {
  EventStore,
  ExpectedVersion,
  NewEvent,
  RecordedEvent,
} from '../../domain/shared/event-store.ts';
import { WrongExpectedVersion } from '../../domain/shared/event-store.ts';
import type { CommandMetadata } from '../shared/command-handler.ts';
import { idempotencyStreamId } from './api-events.ts';
import { ApiProblem } from './problem.ts';

/** What a create answered: replayed verbatim for the same key and request. */
export interface StoredAnswer {
  statusCode: number;
  body: unknown;
  /** Where the created resource is read (the Location header). */
  location?: string;
}

/** Keys are opaque to us but end up in a stream id: printable, bounded. */
export const IDEMPOTENCY_KEY = /^[A-Za-z0-9_.:-]{1,100}$/;

type KeyState =
  | { kind: 'free'; version: number }
  | { kind: 'claimed'; version: number; fingerprint: string }
  | { kind: 'completed'; version: number; fingerprint: string; answer: StoredAnswer };

/**
 * HMAC-SHA256, keyed (`TokenIssuer.fingerprintKey`), over method, URL path and the body with its
 * keys sorted: one request, one fingerprint, and none that gives away a body's secret (a password).
 */
export function fingerprintOf(key: Buffer, method: string, path: string, body: unknown): string {
  return createHmac('sha256', key)
    .update(`${method} ${path}\n${canonicalJson(body)}`)
    .digest('base64url');
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, item]) => item !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonicalJson(item)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

function fold(events: RecordedEvent[]): KeyState {
  let state: KeyState = { kind: 'free', version: -1 };
  for (const event of events) {
    const data = event.data as Record<string, unknown>;
    if (event.type === 'IdempotencyKeyClaimed')
      state = { kind: 'claimed', version: event.version, fingerprint: String(data.fingerprint) };
    else if (event.type === 'IdempotencyKeyCompleted' && state.kind === 'claimed')
      state = {
        kind: 'completed',
        version: event.version,
        fingerprint: state.fingerprint,
        answer: {
          statusCode: Number(data.statusCode),
          body: data.body,
          ...(typeof data.location === 'string' ? { location: data.location } : {}),
        },
      };
    else if (event.type === 'IdempotencyKeyReleased') state = { kind: 'free', version: event.version };
  }
  return state;
}

/**
 * Runs a create at most once per (actor, key), across restarts and processes: the key is claimed
 * in `idempotency-{actor}-{key}` (the claim's expected version makes concurrent requests race
 * for it in the event store), the work runs, and its answer is recorded. The same key with the same
 * request answers the recorded answer; with another request, 422. A failed attempt releases the key.
 */
export async function withIdempotency(
  store: EventStore,
  request: { actor: string; key: string; fingerprint: string; metadata: CommandMetadata; now: () => Date },
  work: () => Promise<StoredAnswer>,
): Promise<StoredAnswer & { replayed: boolean }> {
  const { actor, key, fingerprint, metadata } = request;
  const streamId = idempotencyStreamId(actor, key);
  const event = (type: string, data: unknown): NewEvent => ({
    id: crypto.randomUUID(),
    type,
    data,
    metadata: { ...metadata, occurredAt: request.now().toISOString() },
  });

  for (let attempt = 0; ; attempt += 1) {
    // Most keys are new: the first attempt claims without reading, and a key already there makes
    // the claim fail, to be read and judged on the next attempt.
    const state: KeyState =
      attempt === 0 ? { kind: 'free', version: -1 } : fold(await store.readStream(streamId));
    if (state.kind !== 'free') {
      if (state.fingerprint !== fingerprint)
        throw new ApiProblem(
          422,
          'IDEMPOTENCY_KEY_REUSED',
          'this Idempotency-Key was used with a different request; use a new key for a new request',
        );
      if (state.kind === 'completed') return { ...state.answer, replayed: true };
      throw new ApiProblem(
        409,
        'IDEMPOTENCY_KEY_IN_PROGRESS',
        'a request with this Idempotency-Key is still running',
      );
    }
    const expectedVersion: ExpectedVersion = state.version === -1 ? 'no_stream' : state.version;
    try {
      await store.append(streamId, [event('IdempotencyKeyClaimed', { key, fingerprint })], {
        expectedVersion,
      });
    } catch (error) {
      if (error instanceof WrongExpectedVersion && attempt < 4) continue;
      throw error;
    }
    let answer: StoredAnswer;
    try {
      answer = await work();
    } catch (error) {
      await store
        .append(streamId, [event('IdempotencyKeyReleased', { reason: describe(error) })], {
          expectedVersion: 'any',
        })
        .catch(() => {});
      throw error;
    }
    await store.append(streamId, [event('IdempotencyKeyCompleted', answer)], { expectedVersion: 'any' });
    return { ...answer, replayed: false };
  }
}

function describe(error: unknown): string {
  const reason = (error as { reason?: unknown }).reason;
  return (typeof reason === 'string' ? reason : error instanceof Error ? error.name : 'failed').slice(0, 500);
}
