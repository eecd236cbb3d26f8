import type { FastifyBaseLogger } from 'fastify';
import type { EventStore, RecordedEvent } from '../../domain/shared/event-store.ts';
import { auditStateAt, auditStateOf, auditStoreOf, redactSecrets, stateNotSupported } from './audit-state.ts';
import { type App, type RouteContext, readModelsOf, requireRoles } from './context.ts';
import type { AuditEntryRow } from './ports.ts';
import { ApiProblem } from './problem.ts';
import {
  CorrelationParams,
  StateQuery,
  StreamParams,
  StreamQuery,
  TraceQuery,
  TraceResponse,
} from './schemas.ts';

const security = [{ bearerAuth: [] }];

/** B3 streams (book-, trade-, quotes-) live in the B3 event store; everything else in the broker's. */
export function storeOf(
  context: RouteContext,
  streamId: string,
): { store: EventStore; name: 'broker' | 'b3' } {
  const name = auditStoreOf(streamId);
  return { store: context[name], name };
}

export function auditEvent(
  event: Pick<
    RecordedEvent,
    'id' | 'streamId' | 'version' | 'position' | 'type' | 'data' | 'metadata' | 'recordedAt'
  >,
  store?: 'broker' | 'b3',
) {
  return {
    ...(store ? { store } : {}),
    streamId: event.streamId,
    version: event.version,
    position: event.position,
    id: event.id,
    type: event.type,
    data: redactSecrets(event.data),
    metadata: event.metadata,
    recordedAt: event.recordedAt.toISOString(),
  };
}

/** An event of a trace as the API and `tradecore audit trace --json` show it: `auditEvent`'s, with its store. */
export function traceEvent(entry: AuditEntryRow) {
  return auditEvent(
    {
      id: entry.eventId,
      streamId: entry.streamId,
      version: entry.version,
      position: entry.position,
      type: entry.type,
      data: entry.data,
      metadata: entry.metadata as RecordedEvent['metadata'],
      recordedAt: entry.recordedAt,
    },
    entry.store,
  );
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
      // The same folds as `tradecore audit state`: the broker aggregates, and B3 books.
      const definition = auditStateOf(streamId);
      if (!definition) throw new ApiProblem(400, 'STATE_NOT_SUPPORTED', stateNotSupported(streamId));
      const { store } = storeOf(context, streamId);
      const { version, at } = request.query;
      const current = await store.streamVersion(streamId);
      if (current === -1) throw new ApiProblem(404, 'STREAM_NOT_FOUND', `no stream ${streamId}`);
      if (version !== undefined && version > current)
        throw new ApiProblem(
          404,
          'VERSION_NOT_FOUND',
          `version ${version} is beyond stream ${streamId}, whose last version is ${current}`,
        );
      // From the latest snapshot at or below the version (or instant) asked for.
      const loaded = await auditStateAt(store, streamId, definition, {
        version,
        at: at ? new Date(at) : undefined,
        current,
      });
      if (loaded.version === -1)
        throw new ApiProblem(404, 'STREAM_NOT_FOUND', `stream ${streamId} had no events at ${at}`);
      // As `tradecore audit state --json` answers: where the stream is now, and the snapshot used.
      return {
        streamId,
        version: loaded.version,
        currentVersion: current,
        ...(loaded.fromSnapshot !== undefined ? { fromSnapshot: loaded.fromSnapshot } : {}),
        ...(request.query.at ? { at: request.query.at } : {}),
        state: redactSecrets(loaded.state),
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
        description:
          'Read from the audit timeline read models (`audit_broker`, `audit_b3`), a page at a time: ' +
          'by occurred time, then recording time, then broker before B3, then position. Each page ' +
          `waits up to ${TRACE_CATCH_UP_MS / 1000} s for the timeline to include every event recorded ` +
          'before the request. Amounts are integer cents: the events exactly as stored.',
        security,
        params: CorrelationParams,
        querystring: TraceQuery,
        response: { 200: TraceResponse },
      },
    },
    async (request) => {
      const { correlationId } = request.params;
      const readModels = readModelsOf(context);
      if (!readModels.auditTrace)
        throw new ApiProblem(503, 'READ_MODELS_UNAVAILABLE', 'the audit timeline is not available here');
      const page = await caughtUp(context, request.log, () =>
        readModels.auditTrace!(correlationId, request.query),
      );
      if (page.items.length === 0 && request.query.cursor === undefined)
        throw new ApiProblem(404, 'TRACE_NOT_FOUND', `no event carries correlation id ${correlationId}`);
      return {
        correlationId,
        events: page.items.map(traceEvent),
        ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}),
      };
    },
  );
}

/** How long a trace waits for the audit timeline to catch up with the event stores. */
export const TRACE_CATCH_UP_MS = 2_000;

/**
 * Reads a trace page once the audit timeline includes every event both stores held when the
 * request came in, so that a trace asked right after a request shows all of it. A projector that
 * is behind (a rebuild, or none running) costs the wait, then the page as the timeline has it.
 */
async function caughtUp<Page extends { through: { broker: number; b3: number } }>(
  context: RouteContext,
  log: FastifyBaseLogger,
  read: () => Promise<Page>,
): Promise<Page> {
  const [broker, b3] = await Promise.all([context.broker.headPosition(), context.b3.headPosition()]);
  const deadline = Date.now() + TRACE_CATCH_UP_MS;
  for (;;) {
    const page = await read();
    if (page.through.broker >= broker && page.through.b3 >= b3) return page;
    if (Date.now() >= deadline) {
      log.warn({ heads: { broker, b3 }, through: page.through }, 'audit timeline behind the event stores');
      return page;
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
