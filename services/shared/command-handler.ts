import { randomUUID } from 'node:crypto';
import {
  type AggregateCache,
  type AggregateDefinition,
  loadAggregate,
} from '../../domain/shared/aggregate.ts';
import type { Decider, DomainEvent } from '../../domain/shared/decider.ts';
import {
  type EventStore,
  type ExpectedVersion,
  type NewEvent,
  type RecordedEvent,
  WrongExpectedVersion,
} from '../../domain/shared/event-store.ts';

/** Who asked, and why: stamped on every event a command appends. */
export interface CommandMetadata {
  /** The request (or message) chain the command belongs to. */
  correlationId: string;
  /** What caused this command: the HTTP request id, or the id of the event a process manager reacted to. */
  causationId: string;
  /** Who acts: an account id, or a service name (`order-process-manager`). */
  actor: string;
}

export interface HandleCommandOptions<State> {
  /** How many times an optimistic-concurrency conflict is retried with the fresh state (default 5). */
  maxRetries?: number;
  /** Snapshots for long streams (see `AggregateDefinition.snapshot`). */
  snapshot?: AggregateDefinition<State>['snapshot'];
  /** The process's cache of this aggregate's states: loads read only newer events, appends update it. */
  cache?: AggregateCache<State>;
  /** Event ids (default `randomUUID`); a process manager passes deterministic ids to make redelivery a no-op. */
  newEventId?: (index: number) => string;
  /** When the events occurred (default now). */
  now?: () => Date;
  /**
   * Refuse to write unless the stream is in this state, instead of the version just loaded
   * (`no_stream` for a command that must create its stream: it is decided on the empty state,
   * without a read). A conflict on it is not retried.
   */
  expectedVersion?: ExpectedVersion;
}

export interface CommandResult<State, Event> {
  /** The events appended, as the decider produced them, with their ids; empty when the decider decided nothing. */
  events: Array<Event & { id: string }>;
  /** The stream's version after the command (unchanged when nothing was appended; -1 for no stream). */
  version: number;
  /** The aggregate's state after the events. */
  state: State;
  /** The global positions of the appended events. */
  positions: number[];
}

/**
 * Runs one command against one stream: load the aggregate (snapshots honoured), decide, append the
 * events with the version just loaded as the expected version. When another writer got there first
 * (`WrongExpectedVersion`), the aggregate is loaded again and the command decided again on the fresh
 * state, at most `maxRetries` times; a `DomainError` from the decider is thrown as is, never retried.
 *
 * With a cache, the first attempt decides on the cached state without reading the stream: the
 * append's expected version is what makes that safe, as a stream that moved meanwhile refuses it.
 * What the append cannot check is checked by a read: when the cached state decides nothing or
 * refuses the command, the command is decided again on the state read from the store.
 *
 * `command` may be a function of the current state, for commands whose content depends on it.
 * Generic over any decider: the HTTP API and the process managers share it.
 */
export async function handleCommand<State, Command, Event extends DomainEvent>(
  store: EventStore,
  streamId: string,
  decider: Decider<State, Command, Event>,
  command: Command | ((state: State) => Command),
  metadata: CommandMetadata,
  options: HandleCommandOptions<State> = {},
): Promise<CommandResult<State, Event>> {
  const maxRetries = options.maxRetries ?? 5;
  const definition = aggregateOf(decider, options.snapshot);
  // The cached state is trusted once, and only where a conflict is retried.
  let unread = options.expectedVersion === undefined ? options.cache?.get(streamId) : undefined;
  for (let attempt = 0; ; ) {
    const fromCache = unread;
    unread = undefined;
    // A command that must create its stream decides on the empty state, unread: when the stream
    // exists after all, the append refuses it (and that conflict is not retried).
    const loaded =
      fromCache ??
      (options.expectedVersion === 'no_stream'
        ? { state: decider.initial(), version: -1 }
        : await loadAggregate(store, streamId, definition, { cache: options.cache }));
    const resolved =
      typeof command === 'function' ? (command as (state: State) => Command)(loaded.state) : command;
    let decided: Event[];
    try {
      decided = decider.decide(resolved, loaded.state);
    } catch (error) {
      if (fromCache) continue; // refused on a state that may be old: decide again on what is stored
      throw error;
    }
    if (decided.length === 0) {
      if (fromCache) continue;
      return { events: [], version: loaded.version, state: loaded.state, positions: [] };
    }

    const occurredAt = (options.now?.() ?? new Date()).toISOString();
    const events = decided.map((event, index) => ({
      ...event,
      id: options.newEventId?.(index) ?? randomUUID(),
    }));
    const toAppend: NewEvent[] = events.map((event) => ({
      id: event.id,
      type: event.type,
      data: event.data,
      metadata: { ...metadata, occurredAt },
    }));
    try {
      const appended = await store.append(streamId, toAppend, {
        expectedVersion: options.expectedVersion ?? (loaded.version === -1 ? 'no_stream' : loaded.version),
      });
      const state = decided.reduce(decider.evolve, loaded.state);
      // An idempotent answer (these ids were stored before) may name an older version: not cached.
      if (!appended.idempotent) options.cache?.set(streamId, appended.nextExpectedVersion, state);
      return { events, version: appended.nextExpectedVersion, state, positions: appended.positions };
    } catch (error) {
      const retryable = error instanceof WrongExpectedVersion && options.expectedVersion === undefined;
      if (!retryable) throw error;
      // A cached state that was behind is not a contended stream: read it, and that is no retry.
      if (fromCache) continue;
      if (attempt >= maxRetries) throw error;
      attempt += 1;
    }
  }
}

/** A decider's `initial` and `evolve` as an aggregate definition over recorded events. */
export function aggregateOf<State, Event extends DomainEvent>(
  decider: Pick<Decider<State, unknown, Event>, 'initial' | 'evolve'>,
  snapshot?: AggregateDefinition<State>['snapshot'],
): AggregateDefinition<State> {
  return {
    initial: decider.initial,
    evolve: (state: State, event: RecordedEvent) =>
      decider.evolve(state, { type: event.type, data: event.data } as Event),
    snapshot,
  };
}
