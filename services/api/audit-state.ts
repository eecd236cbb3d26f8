import type { BookEvent } from '../../domain/b3/book-events.ts';
import { BookSnapshot, OrderBook } from '../../domain/b3/order-book.ts';
import { accountDecider } from '../../domain/broker/account/account.ts';
import { instrumentDecider } from '../../domain/broker/instrument/instrument.ts';
import { orderDecider } from '../../domain/broker/order/order.ts';
import { walletDecider } from '../../domain/broker/wallet/wallet.ts';
import { type Decider, type DomainEvent, evolveAll } from '../../domain/shared/decider.ts';
import type { EventStore, RecordedEvent } from '../../domain/shared/event-store.ts';
import { ENGINE_SNAPSHOT_SCHEMA_VERSION } from '../b3-engine/engine-service.ts';
import { aggregateOf } from '../shared/command-handler.ts';

/**
 * A stream's state at a version or a point in time, for the audit (`GET
 * /v1/audit/streams/{streamId}/state`, `tradecore audit state`): the latest snapshot at or below
 * the version asked for, then the events after it. Snapshots only make it faster; the answer is
 * the fold from the first event.
 */
export interface AuditStateDefinition {
  initial(): unknown;
  evolve(state: unknown, event: RecordedEvent): unknown;
  /** `evolve` over many events, where the decider folds faster that way (`Decider.evolveAll`). */
  evolveAll?(state: unknown, events: readonly RecordedEvent[]): unknown;
  /** Which snapshots of the stream hold this state, and how to read one. */
  snapshot: {
    schemaVersion: number;
    restore(stored: unknown): unknown;
    /** Leaves a snapshot behind after folding this many events; absent: reads snapshots only. */
    save?: { every: number; store(state: unknown): unknown };
  };
  /** The state as the audit shows it. */
  view(state: unknown): unknown;
}

export interface AuditState {
  state: unknown;
  /** The version of the last event folded in; -1 when the stream had none by then. */
  version: number;
  /** The snapshot version the fold started from, when it used one. */
  fromSnapshot?: number;
  /** Events read to answer: the fold after the snapshot, and the probes for `at`. */
  eventsRead: number;
}

/**
 * Broker aggregates' snapshots, written by the audit itself after a long fold (the command path
 * writes none today). Bump it when a decider's state changes shape: older snapshots are ignored.
 */
export const AUDIT_STATE_SNAPSHOT_SCHEMA_VERSION = 1;
export const AUDIT_SNAPSHOT_EVERY = 200;

function deciderState(
  decider: {
    initial: () => unknown;
    evolve: (state: never, event: never) => unknown;
    evolveAll?: (state: never, events: never) => unknown;
  },
  every: number,
): AuditStateDefinition {
  // The fold the command path uses: recorded events as the decider's, its `evolveAll` where it has one.
  const {
    initial,
    evolve,
    evolveAll: all,
  } = aggregateOf(decider as unknown as Decider<unknown, unknown, DomainEvent>);
  return {
    initial,
    evolve,
    ...(all ? { evolveAll: all } : {}),
    snapshot: {
      schemaVersion: AUDIT_STATE_SNAPSHOT_SCHEMA_VERSION,
      restore: (stored) => stored,
      save: { every, store: (state) => state },
    },
    view: (state) => state,
  };
}

/** The B3 engine's own book snapshots (the book and its order index); the audit reads the book. */
function bookState(symbol: string): AuditStateDefinition {
  return {
    initial: () => new OrderBook(symbol),
    evolve: (book, event) => {
      (book as OrderBook).apply({ type: event.type, data: event.data } as BookEvent);
      return book;
    },
    snapshot: {
      schemaVersion: ENGINE_SNAPSHOT_SCHEMA_VERSION,
      restore: (stored) => OrderBook.fromSnapshot(BookSnapshot.parse((stored as { book: unknown }).book)),
    },
    view: (book) => (book as OrderBook).snapshot(),
  };
}

/** The streams whose state the audit rebuilds (`audit state`, `GET …/state`), by prefix. */
export const AUDIT_STATE_PREFIXES = ['account-', 'wallet-', 'order-', 'instrument-', 'book-'] as const;

/** Why a stream's state is not rebuilt: one message for the CLI and the HTTP API. */
export function stateNotSupported(streamId: string): string {
  return `state is rebuilt for ${AUDIT_STATE_PREFIXES.join(', ')} streams, not "${streamId}"; read its events instead`;
}

/** The streams the B3 event store holds, by prefix; every other stream is the broker's. */
export const B3_STREAM_PREFIXES = ['book-', 'trade-', 'quotes-'] as const;

export function auditStoreOf(streamId: string): 'broker' | 'b3' {
  return B3_STREAM_PREFIXES.some((prefix) => streamId.startsWith(prefix)) ? 'b3' : 'broker';
}

/** The state a stream folds into, by its prefix; undefined for streams without one. */
export function auditStateOf(
  streamId: string,
  options: { snapshotEvery?: number } = {},
): AuditStateDefinition | undefined {
  const every = options.snapshotEvery ?? AUDIT_SNAPSHOT_EVERY;
  const [prefix] = streamId.split('-');
  switch (prefix) {
    case 'account':
      return deciderState(accountDecider, every);
    case 'wallet':
      return deciderState(walletDecider, every);
    case 'order':
      return deciderState(orderDecider, every);
    case 'instrument':
      return deciderState(instrumentDecider, every);
    case 'book':
      return bookState(streamId.slice('book-'.length));
    default:
      return undefined;
  }
}

/**
 * Folds `streamId` up to `version` (the current one when absent, never beyond it) or up to the last
 * event recorded at or before `at` (to the millisecond), whichever is earlier.
 */
export async function auditStateAt(
  store: EventStore,
  streamId: string,
  definition: AuditStateDefinition,
  /** `current`: the stream's version as the caller read it, which the answer then never passes. */
  options: { version?: number; at?: Date; current?: number },
): Promise<AuditState> {
  let eventsRead = 0;
  const current = options.current ?? (await store.streamVersion(streamId));
  let target = Math.min(options.version ?? current, current);
  if (options.at && target >= 0) {
    // A stream is recorded in version order, so "recorded by then" is a prefix: find its last
    // version by bisection, one event per probe, instead of reading the stream from the start.
    const at = options.at.getTime();
    let low = 0;
    let high = target;
    target = -1;
    while (low <= high) {
      const middle = Math.floor((low + high) / 2);
      const [event] = await store.readStream(streamId, { fromVersion: middle, limit: 1 });
      eventsRead += 1;
      if (event && event.recordedAt.getTime() <= at) {
        target = middle;
        low = middle + 1;
      } else high = middle - 1;
    }
  }
  if (target < 0) return { state: definition.view(definition.initial()), version: -1, eventsRead };

  const snapshot = await store.loadSnapshot(streamId, {
    schemaVersion: definition.snapshot.schemaVersion,
    atOrBelowVersion: target,
  });
  let state = snapshot ? definition.snapshot.restore(snapshot.state) : definition.initial();
  const start = snapshot?.version ?? -1;
  const events =
    target > start ? await store.readStream(streamId, { fromVersion: start + 1, toVersion: target }) : [];
  eventsRead += events.length;
  state = evolveAll(definition, state, events);

  const save = definition.snapshot.save;
  if (save && events.length >= save.every)
    await store
      .saveSnapshot({
        streamId,
        version: target,
        state: save.store(state),
        schemaVersion: definition.snapshot.schemaVersion,
      })
      // Never required for correctness: a failed snapshot only means the next fold reads more.
      .catch(() => {});
  return {
    state: definition.view(state),
    version: target,
    ...(snapshot ? { fromSnapshot: snapshot.version } : {}),
    eventsRead,
  };
}

/** Fields no audit shows: a password's hash, and a request's fingerprint (a register's covers its password). */
const SECRET_FIELDS = new Set(['passwordHash', 'fingerprint']);

/**
 * Secrets stay inside, whoever audits (the API, the CLI): an auditor sees that a password changed,
 * or that an idempotency key was claimed, never the hash or the fingerprint. Fingerprints are keyed
 * now (services/api/idempotency.ts); those stored before were plain digests.
 */
export function redactSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redactSecrets);
  if (value === null || typeof value !== 'object' || value instanceof Date) return value;
  return Object.fromEntries(
    Object.entries(value as Record<string, unknown>).map(([key, item]) =>
      SECRET_FIELDS.has(key) ? [key, '[redacted]'] : [key, redactSecrets(item)],
    ),
  );
}
