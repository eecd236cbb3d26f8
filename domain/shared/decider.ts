/** What a decider emits and evolves on: the `type` and `data` of a `NewEvent`, without ids or metadata. */
export interface DomainEvent<Type extends string = string, Data = unknown> {
  type: Type;
  data: Data;
}

/**
 * The three pure functions of an aggregate (STYLE.md): the state before any event, the decision a
 * command leads to (events, or a thrown `DomainError`), and the state after one event.
 */
export interface Decider<State, Command, Event> {
  initial: () => State;
  decide: (command: Command, state: State) => Event[];
  evolve: (state: State, event: Event) => State;
  /**
   * The state after many events, as reducing `evolve` gives it: for a state that holds what grows
   * with its stream, where a fold that owns its copies is faster than copying at every event.
   */
  evolveAll?: (state: State, events: readonly Event[]) => State;
}

/** The state after `events`: the decider's `evolveAll` where it has one, else `evolve` one by one. */
export function evolveAll<State, Event>(
  decider: Pick<Decider<State, unknown, Event>, 'evolve' | 'evolveAll'>,
  state: State,
  events: readonly Event[],
): State {
  return decider.evolveAll ? decider.evolveAll(state, events) : events.reduce(decider.evolve, state);
}

/** The state a stream's events lead to, from the decider's initial state. */
export function replay<State, Event>(
  decider: Pick<Decider<State, unknown, Event>, 'initial' | 'evolve' | 'evolveAll'>,
  events: readonly Event[],
  from: State = decider.initial(),
): State {
  return evolveAll(decider, from, events);
}

/** Decides and evolves in one step: the events a command leads to and the state after them. */
export function handle<State, Command, Event>(
  decider: Decider<State, Command, Event>,
  state: State,
  command: Command,
): { events: Event[]; state: State } {
  const events = decider.decide(command, state);
  return { events, state: evolveAll(decider, state, events) };
}
