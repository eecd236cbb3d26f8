import { describe, it } from 'vitest';
import { AUDIT_EVENTS, brokerAuditProjection } from './audit.ts';
import { projectionSpecification, recorded } from './testing.ts';

describe('audit timeline', () => {
  const given = projectionSpecification(brokerAuditProjection);
  it('records every event with its stream, version, position, type and metadata', () => {
    const event = recorded(
      'wallet-a1',
      'CashDeposited',
      { amount: 100 },
      { correlationId: 'req-9', actor: 'a1' },
    );
    given()
      .when(event)
      .thenRow(
        `${AUDIT_EVENTS}_broker`,
        { event_id: event.id },
        {
          correlation_id: 'req-9',
          actor: 'a1',
          store: 'broker',
          stream_id: 'wallet-a1',
          version: event.version,
          position: event.position,
          type: 'CashDeposited',
          metadata: event.metadata,
          data: { amount: 100 },
        },
      );
  });
});
