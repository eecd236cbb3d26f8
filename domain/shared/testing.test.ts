import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { Decider, DomainEvent } from './decider.ts';
import { handle, replay } from './decider.ts';
import { DomainError } from './domain-error.ts';
import { defineEvent } from './event-schemas.ts';
import { specification } from './testing.ts';

// A counter that cannot go above its limit: the smallest decider worth specifying.
type Added = DomainEvent<'Added', { amount: number }>;
type Command = { type: 'Add'; amount: number };
class OverLimit extends DomainError {
  readonly reason = 'OVER_LIMIT';
  constructor(readonly total: number) {
    super(`total ${total} over the limit`, { total });
  }
}
const counter: Decider<number, Command, Added> = {
  initial: () => 0,
  decide: (command, total) => {
    if (total + command.amount > 10) throw new OverLimit(total + command.amount);
    return command.amount === 0 ? [] : [{ type: 'Added', data: { amount: command.amount } }];
  },
  evolve: (total, event) => total + event.data.amount,
};
const events = [
  defineEvent({ type: 'Added', version: 1, schema: z.strictObject({ amount: z.number().int() }) }),
];
const given = specification(counter, { events });
const added = (amount: number): Added => ({ type: 'Added', data: { amount } });

describe('given/when/then', () => {
  it('passes when the decided events match', () =>
    given([added(3)])
      .when({ type: 'Add', amount: 2 })
      .then([added(2)]));
  it('fails when they do not', () =>
    expect(() =>
      given([])
        .when({ type: 'Add', amount: 2 })
        .then([added(3)]),
    ).toThrow());
  it('passes on an expected rejection, checking its details', () =>
    given([added(9)])
      .when({ type: 'Add', amount: 2 })
      .thenThrows(OverLimit, { total: 11 }));
  it('fails when the rejection is missing or different', () => {
    expect(() => given([]).when({ type: 'Add', amount: 2 }).thenThrows(OverLimit)).toThrow();
    expect(() =>
      given([added(9)])
        .when({ type: 'Add', amount: 2 })
        .thenThrows(TypeError),
    ).toThrow();
    expect(() =>
      given([added(9)])
        .when({ type: 'Add', amount: 2 })
        .thenThrows(OverLimit, { total: 12 }),
    ).toThrow();
  });
  it('rethrows an unexpected rejection from then', () =>
    expect(() =>
      given([added(9)])
        .when({ type: 'Add', amount: 2 })
        .then([]),
    ).toThrow(OverLimit));
  it('checks that nothing happened', () =>
    given([added(1)])
      .when({ type: 'Add', amount: 0 })
      .thenNothing());
  it('checks the state after the decision', () => {
    given([added(1)])
      .when({ type: 'Add', amount: 4 })
      .thenState(5);
    given([added(1)])
      .when({ type: 'Add', amount: 4 })
      .thenState((total) => expect(total).toBe(5));
  });
  it('fails when an event does not match its registered schema', () =>
    expect(() => given([added(1.5)])).toThrow());
  it('folds histories with replay and handle', () => {
    expect(replay(counter, [added(1), added(2)])).toBe(3);
    expect(handle(counter, 3, { type: 'Add', amount: 4 })).toEqual({ events: [added(4)], state: 7 });
  });
  it('names a domain error after its class and keeps its reason', () => {
    const error = new OverLimit(11);
    expect(error.name).toBe('OverLimit');
    expect(error.reason).toBe('OVER_LIMIT');
    expect(error).toBeInstanceOf(Error);
  });
});
