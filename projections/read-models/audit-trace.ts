import { z } from 'zod';
import type { ProjectionDefinition, Row, Value } from '../model.ts';
import type { ReadModelStore } from '../store.ts';
import { AUDIT_EVENTS, b3AuditProjection, brokerAuditProjection } from './audit.ts';
import { CursorPosition, decodeCursor, encodeCursor, InvalidCursor, type Keyset } from './cursor.ts';
import { MAX_PAGE, type Page } from './queries.ts';

/**
 * The audit trace: every event of one correlation id, read from the audit timeline read models
 * (`audit_broker`, `audit_b3`), never from the event stores. The order is when things happened:
 * occurred time, then recording time, then broker before B3, then the store's own position — one
 * keyset over both stores, so a page never skips or repeats an event while others are projected.
 */

export interface AuditEntry {
  store: 'broker' | 'b3';
  eventId: string;
  streamId: string;
  version: number;
  position: number;
  type: string;
  occurredAt: Date;
  recordedAt: Date;
  correlationId: string;
  causationId: string;
  actor: string;
  metadata: Record<string, unknown>;
  data: unknown;
}

export interface AuditTrace extends Page<AuditEntry> {
  /**
   * The position each store's timeline included when the page was read (its checkpoint, read
   * before the rows): a caller that needs every event recorded up to some head can wait for these.
   */
  through: { broker: number; b3: number };
}

const SOURCES = [
  { store: 'broker', rank: 0, projection: brokerAuditProjection },
  { store: 'b3', rank: 1, projection: b3AuditProjection },
] as const;

/** The index every page walks: `(correlation_id, occurred_at, recorded_at, position)`. */
const ORDER: Array<[string, 'asc']> = [
  ['occurred_at', 'asc'],
  ['recorded_at', 'asc'],
  ['position', 'asc'],
];

type Stores = Record<ProjectionDefinition['store'], ReadModelStore>;

/** Whether `cursor` is one a page of `correlationId`'s trace gave out (checked before any store is opened). */
export function checkAuditTraceCursor(correlationId: string, cursor: string): boolean {
  try {
    return decodeTraceCursor(correlationId, cursor) !== undefined;
  } catch (error) {
    if (error instanceof InvalidCursor) return false;
    throw error;
  }
}

/** The cursor names the correlation id, so it cannot page through another trace. */
const traceList = (correlationId: string): string => `trace:${correlationId}`;

/**
 * An instant of the timeline, in epoch ms: 1970 to 9999, as the API's instants, which every store
 * of the timeline holds (a wider one reached the store as an invalid or out-of-range date).
 */
const Instant = z
  .number()
  .int()
  .min(0)
  .max(Date.UTC(9999, 11, 31, 23, 59, 59, 999));

/** The trace's keyset, as `keyOf` writes it: occurred and recorded instants, store rank, position. */
const TraceKeyset: Keyset<TraceKey> = z.tuple([
  Instant,
  Instant,
  z.union([z.literal(0), z.literal(1)]),
  CursorPosition,
]);
type TraceKey = [occurred: number, recorded: number, rank: 0 | 1, position: number];

function decodeTraceCursor(correlationId: string, cursor: string | undefined): TraceKey | undefined {
  return decodeCursor(traceList(correlationId), cursor, TraceKeyset);
}

/** One page of a correlation id's events, both stores merged. */
export async function readAuditTrace(
  stores: Stores,
  correlationId: string,
  query: { limit: number; cursor?: string },
): Promise<AuditTrace> {
  const limit = Math.min(MAX_PAGE, Math.max(1, Math.floor(query.limit) || 1));
  const cursor = decodeTraceCursor(correlationId, query.cursor);

  const [broker, b3] = await Promise.all(
    SOURCES.map(({ projection }) => stores[projection.store].checkpoint(projection.name, 'live')),
  );
  const pages = await Promise.all(
    SOURCES.map(async ({ projection, rank }) => {
      const rows = await stores[projection.store].find(projection, `${AUDIT_EVENTS}_${projection.source}`, {
        where: { correlation_id: correlationId },
        orderBy: ORDER,
        limit: limit + 1,
        after: cursor ? afterIn(rank, cursor) : undefined,
      });
      return rows.map(auditEntry);
    }),
  );
  const merged = pages
    .flat()
    .sort(compareEntries)
    .slice(0, limit + 1);
  const items = merged.slice(0, limit);
  const last = items.at(-1);
  return {
    items,
    ...(merged.length > limit && last
      ? { nextCursor: encodeCursor(traceList(correlationId), keyOf(last)) }
      : {}),
    through: { broker: broker ?? 0, b3: b3 ?? 0 },
  };
}

/** Every event of a correlation id, page by page (the CLI prints them all). */
export async function readWholeAuditTrace(stores: Stores, correlationId: string): Promise<AuditEntry[]> {
  const entries: AuditEntry[] = [];
  let cursor: string | undefined;
  do {
    const page = await readAuditTrace(stores, correlationId, { limit: MAX_PAGE, cursor });
    entries.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor);
  return entries;
}

export function compareEntries(a: AuditEntry, b: AuditEntry): number {
  return (
    a.occurredAt.getTime() - b.occurredAt.getTime() ||
    a.recordedAt.getTime() - b.recordedAt.getTime() ||
    rankOf(a.store) - rankOf(b.store) ||
    a.position - b.position
  );
}

const rankOf = (store: AuditEntry['store']): number => (store === 'broker' ? 0 : 1);

/** The keyset of an entry: occurred and recorded times (epoch ms), store rank, position. */
function keyOf(entry: AuditEntry): Value[] {
  return [entry.occurredAt.getTime(), entry.recordedAt.getTime(), rankOf(entry.store), entry.position];
}

/**
 * Where one store's page starts after the cursor `(occurred, recorded, rank, position)`: the
 * store's rows are all of one rank, so the merged keyset becomes a keyset over its own index.
 * Positions are positive, so position 0 means "every event of that instant" and the largest safe
 * integer "none of them".
 */
function afterIn(rank: number, [occurred, recorded, cursorRank, position]: number[]): Value[] {
  const from =
    rank === cursorRank ? (position as number) : rank > (cursorRank as number) ? 0 : Number.MAX_SAFE_INTEGER;
  return [new Date(occurred as number), new Date(recorded as number), from];
}

function auditEntry(row: Row): AuditEntry {
  const date = (value: Value | undefined) => (value instanceof Date ? value : new Date(String(value)));
  return {
    store: String(row.store) as AuditEntry['store'],
    eventId: String(row.event_id),
    streamId: String(row.stream_id),
    version: Number(row.version),
    position: Number(row.position),
    type: String(row.type),
    occurredAt: date(row.occurred_at),
    recordedAt: date(row.recorded_at),
    correlationId: String(row.correlation_id),
    causationId: String(row.causation_id ?? ''),
    actor: String(row.actor ?? ''),
    metadata: (row.metadata ?? {}) as Record<string, unknown>,
    data: row.data,
  };
}
