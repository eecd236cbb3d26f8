import { accountDecider } from '../../domain/broker/account/account.ts';
import { instrumentDecider } from '../../domain/broker/instrument/instrument.ts';
import { orderDecider } from '../../domain/broker/order/order.ts';
import { walletDecider } from '../../domain/broker/wallet/wallet.ts';
import { type AggregateDefinition, loadAggregate } from '../../domain/shared/aggregate.ts';
import type { EventStore, RecordedEvent } from '../../domain/shared/event-store.ts';
import { aggregateOf } from '../shared/command-handler.ts';
import { type App, type RouteContext, requireRoles } from './context.ts';
import { ApiProblem } from './problem.ts';
import { CorrelationParams, StateQuery, StreamParams, StreamQuery } from './schemas.ts';

const security = [{ bearerAuth: [] }];

/** Streams whose state the audit API can rebuild: the broker aggregates, by stream prefix. */
const AGGREGATES: Record<string, AggregateDefinition<unknown>> = {
  'account-': aggregateOf(accountDecider) as AggregateDefinition<unknown>,
  'wallet-': aggregateOf(walletDecider) as AggregateDefinition<unknown>,
  'order-': aggregateOf(orderDecider) as AggregateDefinition<unknown>,
  'instrument-': aggregateOf(instrumentDecider) as AggregateDefinition<unknown>,
};

/** B3 streams live in the B3 event store; everything else in the broker's. */
export function storeOf(
  context: RouteContext,
  streamId: string,
): { store: EventStore; name: 'broker' | 'b3' } {
  return streamId.startsWith('book-') || streamId.startsWith('trade-')
    ? { store: context.b3, name: 'b3' }
    : { store: context.broker, name: 'broker' };
}

/** Password hashes stay inside: an auditor sees that a password changed, never the hash. */
function redact(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redact);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value as Record<string, unknown>).map(([key, item]) =>
      key === 'passwordHash' ? [key, '[redacted]'] : [key, redact(item)],
    ),
  );
}

export function auditEvent(event: RecordedEvent, store?: string) {
  return {
    ...(store ? { store } : {}),
    streamId: event.streamId,
    version: event.version,
    position: event.position,
    id: event.id,
    type: event.type,
    data: redact(event.data),
    metadata: event.metadata,
    recordedAt: event.recordedAt.toISOString(),
  };
}

export function auditRoutes(app: App, context: RouteContext): void {
  const auditors = { onRequest: requireRoles('auditor', 'admin') };

  app.get(
    '/v1/audit/streams/:streamId',
    {
      ...auditors,
      schema: {
        tags: ['audit'],
        summary: "A stream's events with their metadata, from a version",
        description: 'Amounts are integer cents here: the events exactly as stored.',
        security,
        params: StreamParams,
        querystring: StreamQuery,
      },
    },
    async (request) => {
      const { streamId } = request.params;
      const { store } = storeOf(context, streamId);
      const events = await store.readStream(streamId, {
        fromVersion: request.query.from,
        limit: request.query.limit + 1,
      });
      const page = events.slice(0, request.query.limit);
      if (page.length === 0 && (await store.streamVersion(streamId)) === -1)
        throw new ApiProblem(404, 'STREAM_NOT_FOUND', `no stream ${streamId}`);
      const last = page.at(-1);
      return {
        streamId,
        events: page.map((event) => auditEvent(event)),
        ...(events.length > page.length && last ? { nextFrom: last.version + 1 } : {}),
      };
    },
  );

  app.get(
    '/v1/audit/streams/:streamId/state',
    {
      ...auditors,
      schema: {
        tags: ['audit'],
        summary:
          "A stream's state rebuilt at a version (?version=N) or an instant (?at=ISO), now when neither",
        security,
        params: StreamParams,
        querystring: StateQuery,
      },
    },
    async (request) => {
      const { streamId } = request.params;
      const prefix = Object.keys(AGGREGATES).find((candidate) => streamId.startsWith(candidate));
      if (!prefix)
        throw new ApiProblem(
          400,
          'STATE_NOT_SUPPORTED',
          `state is rebuilt for ${Object.keys(AGGREGATES).join(', ')} streams; read the events of the others`,
        );
      const { store } = storeOf(context, streamId);
      if ((await store.streamVersion(streamId)) === -1)
        throw new ApiProblem(404, 'STREAM_NOT_FOUND', `no stream ${streamId}`);
      const loaded = await loadAggregate(store, streamId, AGGREGATES[prefix]!, {
        version: request.query.version,
        at: request.query.at ? new Date(request.query.at) : undefined,
      });
      return {
        streamId,
        version: loaded.version,
        ...(request.query.at ? { at: request.query.at } : {}),
        state: redact(loaded.state),
      };
    },
  );

  app.get(
    '/v1/audit/trace/:correlationId',
    {
      ...auditors,
      schema: {
        tags: ['audit'],
        summary: 'Every event of one request, across streams and both event stores, in order',
        security,
        params: CorrelationParams,
      },
    },
    async (request) => {
      const { correlationId } = request.params;
      const found = (
        await Promise.all([
          scan(context.broker, correlationId).then((events) =>
            events.map((event) => ({ event, store: 'broker' })),
          ),
          scan(context.b3, correlationId).then((events) => events.map((event) => ({ event, store: 'b3' }))),
        ])
      ).flat();
      found.sort(
        (a, b) =>
          a.event.metadata.occurredAt.localeCompare(b.event.metadata.occurredAt) ||
          a.event.recordedAt.getTime() - b.event.recordedAt.getTime() ||
          a.event.position - b.event.position,
      );
      if (found.length === 0)
        throw new ApiProblem(404, 'TRACE_NOT_FOUND', `no event carries correlation id ${correlationId}`);
      return { correlationId, events: found.map(({ event, store }) => auditEvent(event, store)) };
    },
  );
}

/**
 * Reads a whole store for one correlation id. The audit trace is an investigation tool, so a full
 * scan is acceptable at simulator scale; the audit timeline read model is the indexed way.
 */
async function scan(store: EventStore, correlationId: string): Promise<RecordedEvent[]> {
  const found: RecordedEvent[] = [];
  let after = 0;
  for (;;) {
    const batch = await store.readAll({ after, limit: 2000 });
    for (const event of batch) if (event.metadata.correlationId === correlationId) found.push(event);
    const last = batch.at(-1);
    if (!last || batch.length < 2000) return found;
    after = last.position;
  }
}
