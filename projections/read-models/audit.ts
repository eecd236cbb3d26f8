import type { RecordedEvent } from '../../domain/shared/event-store.ts';
import type { Change, ProjectionDefinition } from '../model.ts';

/**
 * The audit timeline (`GET /v1/audit/trace/{correlationId}`): every event of both event stores,
 * one document each with its stream, version, position, type, metadata and data, indexed by
 * correlation id in the trace's order (occurred, recorded, position). A projection follows one
 * store, so there are two, one per store, with the same shape; the trace query
 * (`audit-trace.ts`) merges them in time order.
 */
export const AUDIT_EVENTS = 'audit_events';

export function auditTimelineProjection(source: 'broker' | 'b3'): ProjectionDefinition {
  const table = `${AUDIT_EVENTS}_${source}`;
  return {
    name: `audit_${source}`,
    // 2: the index follows the trace's order, so a page is one index range per store.
    version: 2,
    source,
    store: 'mongo',
    tables: [
      {
        name: table,
        columns: {
          event_id: { type: 'text' },
          correlation_id: { type: 'text' },
          causation_id: { type: 'text' },
          actor: { type: 'text' },
          occurred_at: { type: 'timestamp' },
          recorded_at: { type: 'timestamp' },
          store: { type: 'text' },
          stream_id: { type: 'text' },
          version: { type: 'bigint' },
          position: { type: 'bigint' },
          type: { type: 'text' },
          schema_version: { type: 'int' },
          metadata: { type: 'json' },
          data: { type: 'json' },
        },
        primaryKey: ['event_id'],
        indexes: [['correlation_id', 'occurred_at', 'recorded_at', 'position']],
        appendOnly: true,
      },
    ],
    project(event: RecordedEvent): Change[] {
      const { correlationId, causationId, actor, occurredAt, schemaVersion } = event.metadata;
      return [
        {
          kind: 'upsert',
          table,
          key: { event_id: event.id },
          set: {
            correlation_id: correlationId,
            causation_id: causationId,
            actor,
            occurred_at: new Date(occurredAt),
            recorded_at: event.recordedAt,
            store: source,
            stream_id: event.streamId,
            version: event.version,
            position: event.position,
            type: event.type,
            schema_version: schemaVersion,
            metadata: event.metadata,
            data: event.data as Record<string, unknown>,
          },
        },
      ];
    },
  };
}

export const brokerAuditProjection = auditTimelineProjection('broker');
export const b3AuditProjection = auditTimelineProjection('b3');
