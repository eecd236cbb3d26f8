import { expect } from 'vitest';
import type { Decider, DomainEvent } from './decider.ts';
import type { EventDefinition } from './event-schemas.ts';

/**
 * Given/when/then specifications over any decider, for vitest tests on both sides of the domain:
 *
 * ```ts
 * const given = specification(walletDecider, { events: walletEvents });
 * it('rejects a withdrawal above the available cash', () =>
 *   given([deposited(10_000)]).when(withdraw(20_000)).thenThrows(InsufficientFunds));
 * ```
 *
 * With `events`, every given and every decided event must match its registered zod schema exactly, so a
 * specification also proves that the decider only emits what the event store will accept.
 */
export function specification<State, Command, Event extends DomainEvent>(
  decider: Decider<State, Command, Event>,
  options: { events?: readonly EventDefinition[] } = {},
) {
  const definitions = options.events
    ? new Map(options.events.map((definition) => [definition.type, definition]))
    : null;
  const validate = (event: Event) => {
    if (!definitions) return;
    const definition = definitions.get(event.type);
    expect(definition, `no event definition registered for ${event.type}`).toBeDefined();
    const parsed = definition!.schema.safeParse(event.data);
    expect(parsed.success ? [] : parsed.error.issues, `${event.type} does not match its schema`).toEqual([]);
    expect(parsed.data, `${event.type} carries fields its schema drops`).toEqual(event.data);
  };

  return function given(history: readonly Event[] = []) {
    history.forEach(validate);
    const state = () => history.reduce(decider.evolve, decider.initial());
    return {
      when(command: Command) {
        const run = (): { events: Event[] } | { error: unknown } => {
          try {
            return { events: decider.decide(command, state()) };
          } catch (error) {
            return { error };
          }
        };
        return {
          /** The command leads to exactly these events, in this order. */
          // biome-ignore lint/suspicious/noThenProperty: the given/when/then vocabulary is the point of this helper
          then(expected: readonly Event[]): void {
            const outcome = run();
            if ('error' in outcome) throw outcome.error;
            outcome.events.forEach(validate);
            expect(outcome.events).toEqual(expected);
          },
          /** The command changes nothing: no events, no error (idempotent retries). */
          thenNothing(): void {
            const outcome = run();
            if ('error' in outcome) throw outcome.error;
            expect(outcome.events).toEqual([]);
          },
          /** The command is refused with this error class, and (optionally) these details. */
          thenThrows<E extends Error>(
            errorClass: abstract new (...args: never[]) => E,
            details?: Record<string, unknown>,
          ): void {
            const outcome = run();
            if (!('error' in outcome)) {
              expect.fail(`expected ${errorClass.name}, got events ${JSON.stringify(outcome.events)}`);
            }
            expect(outcome.error).toBeInstanceOf(errorClass);
            if (details) expect((outcome.error as { details?: unknown }).details).toMatchObject(details);
          },
          /** The state after the history and the decided events satisfies `check` (or equals it). */
          thenState(check: ((state: State) => void) | State): void {
            const outcome = run();
            if ('error' in outcome) throw outcome.error;
            outcome.events.forEach(validate);
            const after = outcome.events.reduce(decider.evolve, state());
            if (typeof check === 'function') (check as (state: State) => void)(after);
            else expect(after).toEqual(check);
          },
        };
      },
    };
  };
}
