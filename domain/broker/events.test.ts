import { describe, expect, it } from 'vitest';
import { EventSchemas } from '../shared/event-schemas.ts';
import { brokerEvents } from './events.ts';

describe('broker event registry', () => {
  it('defines every event type once', () => {
    expect(() => new EventSchemas([...brokerEvents])).not.toThrow();
    expect(brokerEvents.length).toBe(26);
  });
  it('refuses an event whose data does not match its schema', () => {
    const schemas = new EventSchemas([...brokerEvents]);
    const metadata = { correlationId: 'c', causationId: 'c', actor: 't', occurredAt: '2025-03-14T13:00:00Z' };
    expect(() =>
      schemas.encode({ id: 'e1', type: 'CashDeposited', data: { amount: 10.5 }, metadata }),
    ).toThrow();
    expect(() =>
      schemas.encode({ id: 'e1', type: 'CashDeposited', data: { amount: 1, extra: 1 }, metadata }),
    ).toThrow();
    expect(
      schemas.encode({ id: 'e1', type: 'CashDeposited', data: { amount: 1 }, metadata }).metadata
        .schemaVersion,
    ).toBe(1);
  });
});
