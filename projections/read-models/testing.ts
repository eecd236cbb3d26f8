import { expect } from 'vitest';
import { b3EventDefinitions } from '../../domain/b3/book-events.ts';
import { quoteEventDefinitions } from '../../domain/b3/quote-events.ts';
import { brokerEvents } from '../../domain/broker/events.ts';
import type { EventDefinition } from '../../domain/shared/event-schemas.ts';
import type { NewEvent, RecordedEvent } from '../../domain/shared/event-store.ts';
import { rowKey } from '../batch.ts';
import type { Change, ProjectionDefinition, Row, Value } from '../model.ts';

/**
 * Given/when/then for projections, on pure functions only: `given` events are projected and their
 * changes applied to in-memory tables with the change language's rules; `when` is one more event;
 * `then…` checks its changes or the rows after it. Every event must match its zod schema.
 *
 * ```ts
 * given(placed, accepted).when(executed).thenRow('orders', { order_id: 'o1' }, { status: 'PARTIALLY_FILLED' });
 * ```
 */
const definitions = new Map<string, EventDefinition[]>();
for (const definition of [...brokerEvents, ...b3EventDefinitions, ...quoteEventDefinitions]) {
  definitions.set(definition.type, [...(definitions.get(definition.type) ?? []), definition]);
}

let position = 0;
const versions = new Map<string, number>();

/** A recorded event as an event store would hand it to a projector, checked against its schema. */
export function recorded(
  streamId: string,
  type: string,
  data: unknown,
  metadata: Partial<RecordedEvent['metadata']> = {},
): RecordedEvent {
  const candidates = definitions.get(type) ?? [];
  expect(candidates.length, `no schema for ${type}`).toBeGreaterThan(0);
  expect(
    candidates.some((definition) => definition.schema.safeParse(data).success),
    `${type} does not match its schema: ${JSON.stringify(data)}`,
  ).toBe(true);
  position += 1;
  const version = (versions.get(streamId) ?? -1) + 1;
  versions.set(streamId, version);
  return {
    id: `00000000-0000-4000-8000-${position.toString(16).padStart(12, '0')}`,
    streamId,
    type,
    version,
    position,
    data,
    metadata: {
      correlationId: 'corr-1',
      causationId: 'cause-1',
      actor: 'tester',
      occurredAt: '2026-01-05T13:00:00.000Z',
      schemaVersion: 1,
      ...metadata,
    },
    recordedAt: new Date('2026-01-05T13:00:00.010Z'),
  };
}

/** In-memory tables a list of changes is applied to, by the rules documented on `Change`. */
export class MemoryTables {
  readonly tables = new Map<string, Map<string, Row>>();

  apply(changes: Change[]): this {
    for (const change of changes) {
      const table = this.tables.get(change.table) ?? new Map<string, Row>();
      this.tables.set(change.table, table);
      const id = rowKey(change.table, change.key);
      if (change.kind === 'delete') {
        table.delete(id);
        continue;
      }
      const existing = table.get(id);
      if (!existing) {
        table.set(id, {
          ...change.key,
          ...change.insert,
          ...change.set,
          ...change.add,
          ...change.max,
          ...change.min,
        });
        continue;
      }
      Object.assign(existing, change.set);
      for (const [column, value] of Object.entries(change.add ?? {}))
        existing[column] = Number(existing[column] ?? 0) + value;
      for (const [column, value] of Object.entries(change.max ?? {}))
        if (
          existing[column] === null ||
          existing[column] === undefined ||
          compare(value, existing[column]) > 0
        )
          existing[column] = value;
      for (const [column, value] of Object.entries(change.min ?? {}))
        if (
          existing[column] === null ||
          existing[column] === undefined ||
          compare(value, existing[column]) < 0
        )
          existing[column] = value;
    }
    return this;
  }

  rows(table: string): Row[] {
    return [...(this.tables.get(table)?.values() ?? [])];
  }

  row(table: string, key: Row): Row | undefined {
    return this.tables.get(table)?.get(rowKey(table, key));
  }
}

function compare(a: Value, b: Value): number {
  const value = (v: Value) => (v instanceof Date ? v.getTime() : (v as number));
  return value(a) - value(b);
}

export function projectionSpecification(projection: ProjectionDefinition) {
  return (...history: RecordedEvent[]) => {
    // Stream versions count per specification: history events were created before this call.
    versions.clear();
    for (const event of history)
      versions.set(event.streamId, Math.max(versions.get(event.streamId) ?? -1, event.version));
    const tables = new MemoryTables();
    for (const event of history) tables.apply(projection.project(event));
    return {
      when(event: RecordedEvent) {
        const changes = projection.project(event);
        tables.apply(changes);
        const then = {
          thenChanges(expected: Change[]) {
            expect(changes).toEqual(expected);
            return then;
          },
          thenNothing() {
            expect(changes).toEqual([]);
            return then;
          },
          thenRow(table: string, key: Row, expected: Row) {
            expect(tables.row(table, key), `${table} ${JSON.stringify(key)}`).toMatchObject(expected);
            return then;
          },
          thenNoRow(table: string, key: Row) {
            expect(tables.row(table, key)).toBeUndefined();
            return then;
          },
          thenRows(table: string, expected: Row[]) {
            expect(tables.rows(table)).toEqual(expected);
            return then;
          },
          tables,
        };
        return then;
      },
    };
  };
}

/** A workload event as a store would record it at `position` (version = position: enough for pure projections). */
export function asRecorded(streamId: string, event: NewEvent, position: number): RecordedEvent {
  return {
    id: event.id,
    streamId,
    type: event.type,
    data: event.data,
    version: position,
    position,
    metadata: {
      ...event.metadata,
      schemaVersion: event.metadata.schemaVersion ?? 1,
    } as RecordedEvent['metadata'],
    recordedAt: new Date(0),
  };
}

/** When the specifications' trades happen, unless they say otherwise. */
export const TRADE_AT = Date.UTC(2026, 0, 5, 13, 0, 30);

/** A PETR4 trade between one buyer and one seller, for read-model specifications. */
export const tradeExecuted = (tradeId: string, price: number, quantity: number, when = TRADE_AT) =>
  recorded(`trade-${tradeId}`, 'TradeExecuted', {
    tradeId,
    symbol: 'PETR4',
    price,
    quantity,
    buyOrderId: 'b1',
    buyAccountId: 'buyer',
    sellOrderId: 's1',
    sellAccountId: 'seller',
    aggressorSide: 'BUY',
    bookSequence: 7,
    at: when,
  });
