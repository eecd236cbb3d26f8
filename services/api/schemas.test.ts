import { describe, expect, it } from 'vitest';
import { Instant, InstantParam } from './schemas.ts';

describe('an instant, as a body or a query gives it', () => {
  it('takes the same instant in UTC, whatever its zone, and a lower-case t and z as RFC 3339 does', () => {
    expect(Instant.parse('2026-11-27T22:00:00+05:00')).toBe('2026-11-27T17:00:00.000Z');
    expect(Instant.parse('2026-11-27t14:00:00z')).toBe('2026-11-27T14:00:00.000Z');
    // An unencoded `+` of a query's offset arrives as a space.
    expect(InstantParam.parse('2026-11-27T22:00:00 05:00')).toBe('2026-11-27T17:00:00.000Z');
  });

  it('refuses one without seconds or zone, a leap second, and one outside 1970 to 9999', () => {
    for (const text of ['2026-11-27T14:00Z', '2026-11-27T14:00:00', '2016-12-31T23:59:60Z', 'yesterday'])
      expect(Instant.safeParse(text).error?.issues[0]?.message, text).toContain(
        'must be an ISO 8601 date and time with seconds and a time zone',
      );
    expect(Instant.safeParse('1969-12-31T23:59:59Z').error?.issues[0]?.message).toBe(
      'must be between 1970-01-01T00:00:00Z and 9999-12-31T23:59:59Z',
    );
  });
});
