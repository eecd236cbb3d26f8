import { createHmac, randomUUID } from 'node:crypto';
import type { EventStore, NewEvent, RecordedEvent } from '../../domain/shared/event-store.ts';
import { WrongExpectedVersion } from '../../domain/shared/event-store.ts';
import type { CommandMetadata } from '../shared/command-handler.ts';
import { deterministicId } from '../shared/deterministic-id.ts';
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

/**
 * How long a claim holds the key before a retry with the same request may take it over: a claim
 * whose request crashed (a `kill -9`, a lost store connection) is never completed nor released.
 * Longer than any create runs: a command's ten conflict retries wait 4.3 s at most, a listing
 * waits 5 s for the market data, and the rest is a few store round trips. No HTTP deadline bounds a
 * handler (fastify's `requestTimeout` is for receiving the request, and is off), so this is the
 * bound; a run that outlives it anyway creates nothing twice (`CreateRun.id`), it only answers
 * alongside the run that took over.
 */
export const IDEMPOTENCY_CLAIM_LEASE_MS = 30_000;

/**
 * One run of a create: what it makes is named through it, so that a run after a crash meets what
 * the crashed run made instead of making it again.
 */
export interface CreateRun {
  /**
   * The id of something the create makes (`'order'`, `'account'`): under an Idempotency-Key, derived
   * from the key's first claim for this request (its event id, a random uuid kept in the event
   * store, so as unguessable as a random id), the same in every run of the request under the key;
   * without a key, random (the same for one name).
   */
  id(name: string): string;
  /** Event ids for `handleCommand`'s `newEventId`, of the events appended as `type`: `id(type/index)`. */
  eventIds(type: string): (index: number) => string;
  /**
   * The event an earlier run of this request under this key (one that crashed, or failed after
   * writing: a store that committed but did not answer) appended as `type` (first of its batch), or
   * undefined: on a first run, or when the earlier run did not get that far. Looked up by its id in
   * `streamId`; a claim made before ids were derived (v1) is looked up by its request's causation
   * id instead, in what the store recorded within the lease.
   */
  earlier(type: string, streamId: string): Promise<RecordedEvent | undefined>;
}

/** A run without a key: random ids, and no earlier run. */
export function unkeyedRun(): CreateRun {
  const ids = new Map<string, string>();
  const id = (name: string) => {
    const known = ids.get(name);
    if (known) return known;
    const fresh = randomUUID();
    ids.set(name, fresh);
    return fresh;
  };
  return { id, eventIds: (type) => (index) => id(`${type}/${index}`), earlier: async () => undefined };
}

interface Claim {
  id: string;
  version: number;
  position: number;
  fingerprint: string;
  /** The claimer's clock (the event's `occurredAt`): the lease runs from it. */
  claimedAt: Date;
  recordedAt: Date;
  derivedIds: boolean;
  causationId: string;
}

type KeyState = (
  | { kind: 'free' }
  | { kind: 'claimed'; claim: Claim }
  | { kind: 'completed'; claim: Claim; answer: StoredAnswer }
) & {
  /** The stream's version. */
  version: number;
  /**
   * The key's first claim for each request (fingerprint): what runs of that request make is named
   * after it. Another request may use the key once it was released, and must not meet what the
   * first one made.
   */
  firstClaims: ReadonlyMap<string, Claim>;
  /** A v1 claim whose run neither completed nor failed: what it made has random ids. */
  legacy?: Claim;
};

function claimOf(event: RecordedEvent): Claim {
  const data = event.data as Record<string, unknown>;
  const occurredAt = new Date(event.metadata.occurredAt);
  return {
    id: event.id,
    version: event.version,
    position: event.position,
    fingerprint: String(data.fingerprint),
    claimedAt: Number.isNaN(occurredAt.getTime()) ? event.recordedAt : occurredAt,
    recordedAt: event.recordedAt,
    // Read without the registry (a store opened without schemas), a v1 claim has no such field.
    derivedIds: data.derivedIds === true,
    causationId: event.metadata.causationId,
  };
}

function fold(events: RecordedEvent[]): KeyState {
  const firstClaims = new Map<string, Claim>();
  let state: KeyState = { kind: 'free', version: -1, firstClaims };
  for (const event of events) {
    const data = event.data as Record<string, unknown>;
    const legacy: Claim | undefined = state.legacy;
    if (event.type === 'IdempotencyKeyClaimed') {
      // A second claim while one is in force is a takeover of an abandoned one (its lease passed).
      const claim = claimOf(event);
      if (!firstClaims.has(claim.fingerprint)) firstClaims.set(claim.fingerprint, claim);
      state = {
        kind: 'claimed',
        version: event.version,
        claim,
        firstClaims,
        legacy: claim.derivedIds ? legacy : claim,
      };
    } else if (event.type === 'IdempotencyKeyCompleted' && state.kind === 'claimed')
      state = {
        kind: 'completed',
        version: event.version,
        claim: state.claim,
        firstClaims,
        answer: {
          statusCode: Number(data.statusCode),
          body: data.body,
          ...(typeof data.location === 'string' ? { location: data.location } : {}),
        },
      };
    else if (event.type === 'IdempotencyKeyReleased')
      state = { kind: 'free', version: event.version, firstClaims };
    else state = { ...state, version: event.version };
  }
  return state;
}

/**
 * Runs a create at most once per (actor, key), across restarts and processes: the key is claimed
 * in `idempotency-{actor}-{key}` (the claim's expected version makes concurrent requests race
 * for it in the event store), the work runs, and its answer is recorded. The same key with the same
 * request answers the recorded answer; with another request, 422. A failed attempt releases the key.
 *
 * A claim neither completed nor released (its request crashed) answers 409 with `retry-after` until
 * its lease passes (`IDEMPOTENCY_CLAIM_LEASE_MS`), then the next retry claims the key again and runs
 * the work again: the ids the work makes come from the key's first claim (`CreateRun`), so the run
 * meets what the crashed run made and answers from it (a replay), or makes it, once. Claims are
 * appended at the stream's version, so of two retries taking an abandoned claim over one wins.
 */
export async function withIdempotency(
  store: EventStore,
  request: { actor: string; key: string; fingerprint: string; metadata: CommandMetadata; now: () => Date },
  work: (run: CreateRun) => Promise<StoredAnswer>,
): Promise<StoredAnswer & { replayed: boolean }> {
  const { actor, key, fingerprint, metadata } = request;
  const streamId = idempotencyStreamId(actor, key);
  const event = (type: string, data: unknown): NewEvent => ({
    id: randomUUID(),
    type,
    data,
    metadata: { ...metadata, occurredAt: request.now().toISOString() },
  });

  for (let attempt = 0; ; attempt += 1) {
    // Most keys are new: the first attempt claims without reading, and a key already there makes
    // the claim fail, to be read and judged on the next attempt.
    const state: KeyState =
      attempt === 0
        ? { kind: 'free', version: -1, firstClaims: new Map() }
        : fold(await store.readStream(streamId));
    if (state.kind !== 'free') {
      if (state.claim.fingerprint !== fingerprint)
        throw new ApiProblem(
          422,
          'IDEMPOTENCY_KEY_REUSED',
          'this Idempotency-Key was used with a different request; use a new key for a new request',
        );
      if (state.kind === 'completed') return { ...state.answer, replayed: true };
      const age = request.now().getTime() - state.claim.claimedAt.getTime();
      if (age < IDEMPOTENCY_CLAIM_LEASE_MS) {
        // Soon for a young claim (most finish in milliseconds), later for an old one (more likely
        // abandoned), never past the lease, when a retry takes the key over.
        const wait = Math.min(Math.max(age, 1_000), IDEMPOTENCY_CLAIM_LEASE_MS - age);
        throw new ApiProblem(
          409,
          'IDEMPOTENCY_KEY_IN_PROGRESS',
          'a request with this Idempotency-Key is still running; retry it after the retry-after seconds',
          {},
          { 'retry-after': String(Math.max(1, Math.ceil(wait / 1_000))) },
        );
      }
    }
    const claim = event('IdempotencyKeyClaimed', { key, fingerprint, derivedIds: true });
    let claimVersion: number;
    try {
      ({ nextExpectedVersion: claimVersion } = await store.append(streamId, [claim], {
        expectedVersion: state.version === -1 ? 'no_stream' : state.version,
      }));
    } catch (error) {
      // Another request claimed (or took over) the key first.
      if (error instanceof WrongExpectedVersion && attempt < 4) continue;
      throw error;
    }
    const run = keyedRun(store, state.firstClaims.get(fingerprint), state.legacy, claim.id);
    let answer: StoredAnswer;
    try {
      answer = await work(run);
    } catch (error) {
      // At the claim's version: a run whose claim was taken over releases nothing of the new one's.
      await store
        .append(streamId, [event('IdempotencyKeyReleased', { reason: describe(error) })], {
          expectedVersion: claimVersion,
        })
        .catch(() => {});
      throw error;
    }
    try {
      await store.append(streamId, [event('IdempotencyKeyCompleted', answer)], {
        expectedVersion: claimVersion,
      });
    } catch (error) {
      // Taken over meanwhile (this run outlived its lease): the run that took over records the
      // answer; both runs made or met the same things, under the same ids, so they answer alike.
      if (!(error instanceof WrongExpectedVersion)) throw error;
    }
    return { ...answer, replayed: run.metEarlier };
  }
}

/**
 * The run a claim starts: ids from the request's first claim of the key (this one when there was
 * none before), and what earlier runs of it made. `metEarlier`: the work found what an earlier run
 * made (its answer is then a replay).
 */
function keyedRun(
  store: EventStore,
  first: Claim | undefined,
  legacy: Claim | undefined,
  claimId: string,
): CreateRun & { readonly metEarlier: boolean } {
  const seed = first?.id ?? claimId;
  const id = (name: string) => deterministicId('idempotency', seed, name);
  let metEarlier = false;
  return {
    id,
    eventIds: (type) => (index) => id(`${type}/${index}`),
    async earlier(type, streamId) {
      // No claim of this request before this one: nothing can have been made.
      if (!first) return undefined;
      const found =
        (await findEvent(store, streamId, id(`${type}/0`), first.position)) ??
        (legacy ? await findByCausation(store, type, legacy) : undefined);
      if (found) metEarlier = true;
      return found;
    },
    get metEarlier() {
      return metEarlier;
    },
  };
}

const PAGE = 200;

/**
 * The event `eventId` of `streamId`, or undefined: read backwards from the stream's end down to
 * the events at global positions up to `after`, before which it cannot be.
 */
export async function findEvent(
  store: EventStore,
  streamId: string,
  eventId: string,
  after: number,
): Promise<RecordedEvent | undefined> {
  for (let fromVersion: number | undefined; ; ) {
    const page = await store.readStream(streamId, {
      direction: 'backwards',
      limit: PAGE,
      ...(fromVersion === undefined ? {} : { fromVersion }),
    });
    for (const event of page) {
      if (event.id === eventId) return event;
      if (event.position <= after) return undefined;
    }
    const last = page.at(-1);
    if (page.length < PAGE || !last || last.version === 0) return undefined;
    fromVersion = last.version - 1;
  }
}

/**
 * The first event of `type` the v1 claim's request appended (same causation id), among what the
 * store recorded after the claim and within the lease: that run made random ids.
 */
async function findByCausation(
  store: EventStore,
  type: string,
  claim: Claim,
): Promise<RecordedEvent | undefined> {
  const until = claim.recordedAt.getTime() + IDEMPOTENCY_CLAIM_LEASE_MS;
  for (let after = claim.position; ; ) {
    const page = await store.readAll({ after, limit: PAGE });
    for (const event of page) {
      if (event.recordedAt.getTime() > until) return undefined;
      if (event.type === type && event.metadata.causationId === claim.causationId) return event;
    }
    const last = page.at(-1);
    if (page.length < PAGE || !last) return undefined;
    after = last.position;
  }
}

function describe(error: unknown): string {
  const reason = (error as { reason?: unknown }).reason;
  return (typeof reason === 'string' ? reason : error instanceof Error ? error.name : 'failed').slice(0, 500);
}
