import type { EventStore, RecordedEvent } from './event-store.ts';

/** How an aggregate's state is folded from its events, and how often its state is snapshotted. */
export interface AggregateDefinition<State> {
  initial: () => State;
  evolve: (state: State, event: RecordedEvent) => State;
  /** Write a snapshot when this many events were folded past the last one. Omit for none. */
  snapshot?: { every: number; schemaVersion: number };
}

export interface LoadedAggregate<State> {
  state: State;
  /** The version of the last event folded in, or -1 for a stream with no events (yet). */
  version: number;
  /** The snapshot version the load started from, when it used one. */
  fromSnapshot?: number;
}

/**
 * Loads an aggregate's state now, at a version, or as it was at a point in time. Snapshots only
 * make it faster: a missing or older-shaped snapshot means folding from the first event.
 * The store is passed in, so this stays free of I/O of its own.
 */
export async function loadAggregate<State>(
  store: EventStore,
  streamId: string,
  definition: AggregateDefinition<State>,
  options: { version?: number; at?: Date } = {},
): Promise<LoadedAggregate<State>> {
  if (options.at) {
    // A point in time is a version we only learn by reading: fold what was recorded by then.
    const events = await store.readStream(streamId, { until: options.at, toVersion: options.version });
    return fold(definition, definition.initial(), -1, events);
  }
  const snapshot = definition.snapshot
    ? await store.loadSnapshot(streamId, {
        schemaVersion: definition.snapshot.schemaVersion,
        atOrBelowVersion: options.version,
      })
    : undefined;
  const start = snapshot ? (snapshot.state as State) : definition.initial();
  const startVersion = snapshot?.version ?? -1;
  const events = await store.readStream(streamId, {
    fromVersion: startVersion + 1,
    toVersion: options.version,
  });
  const loaded = { ...fold(definition, start, startVersion, events), fromSnapshot: snapshot?.version };

  if (definition.snapshot && loaded.version - startVersion >= definition.snapshot.every) {
    await store
      .saveSnapshot({
        streamId,
        version: loaded.version,
        state: loaded.state,
        schemaVersion: definition.snapshot.schemaVersion,
      })
      // Never required for correctness: a failed snapshot only means the next load folds more.
      .catch(() => {});
  }
  return loaded;
}

function fold<State>(
  definition: AggregateDefinition<State>,
  state: State,
  version: number,
  events: RecordedEvent[],
): LoadedAggregate<State> {
  let current = state;
  let currentVersion = version;
  for (const event of events) {
    current = definition.evolve(current, event);
    currentVersion = event.version;
  }
  return { state: current, version: currentVersion };
}
