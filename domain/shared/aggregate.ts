import { evolveAll } from './decider.ts';
import type { EventStore, RecordedEvent } from './event-store.ts';

/** How an aggregate's state is folded from its events, and how often its state is snapshotted. */
export interface AggregateDefinition<State> {
  initial: () => State;
  evolve: (state: State, event: RecordedEvent) => State;
  /** `evolve` over many events at once, where the decider folds faster that way (`Decider.evolveAll`). */
  evolveAll?: (state: State, events: readonly RecordedEvent[]) => State;
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
 * The latest states a process loaded or wrote, by stream: a load then reads only the events
 * after the cached version (usually none) instead of folding the stream again. States are never
 * mutated (deciders evolve into new objects), so a cached one is safe to share. Bounded: the
 * least recently used stream is dropped first.
 */
export class AggregateCache<State> {
  private readonly entries = new Map<string, { version: number; state: State }>();

  constructor(private readonly capacity = 10_000) {}

  get(streamId: string): { version: number; state: State } | undefined {
    const entry = this.entries.get(streamId);
    if (entry) {
      this.entries.delete(streamId);
      this.entries.set(streamId, entry);
    }
    return entry;
  }

  /**
   * Folds in an event the process saw go by (from a subscription) when it is its stream's next
   * one, or its first: a later load then has nothing to read.
   */
  follow(event: RecordedEvent, definition: AggregateDefinition<State>): void {
    const current = this.entries.get(event.streamId);
    const before =
      current?.version === event.version - 1
        ? current.state
        : event.version === 0 && !current
          ? definition.initial()
          : undefined;
    if (before !== undefined) this.set(event.streamId, event.version, definition.evolve(before, event));
  }

  set(streamId: string, version: number, state: State): void {
    const current = this.entries.get(streamId);
    // Two loads of one stream can finish out of order: keep the newer.
    if (current && current.version > version) return;
    this.entries.delete(streamId);
    this.entries.set(streamId, { version, state });
    if (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value!);
  }
}

/**
 * Loads an aggregate's state now, at a version, or as it was at a point in time. Snapshots and
 * the cache only make it faster: a missing or older-shaped snapshot means folding from the first
 * event. The store is passed in, so this stays free of I/O of its own.
 */
export async function loadAggregate<State>(
  store: EventStore,
  streamId: string,
  definition: AggregateDefinition<State>,
  options: { version?: number; at?: Date; cache?: AggregateCache<State> } = {},
): Promise<LoadedAggregate<State>> {
  const cached = options.version === undefined && !options.at ? options.cache?.get(streamId) : undefined;
  if (cached) {
    // The only writer says the stream has not moved: nothing to read.
    if (store.knownVersion?.(streamId) === cached.version) return { ...cached };
    const events = await store.readStream(streamId, { fromVersion: cached.version + 1 });
    const loaded = fold(definition, cached.state, cached.version, events);
    if (events.length > 0) options.cache!.set(streamId, loaded.version, loaded.state);
    return loaded;
  }
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
  if (options.version === undefined && loaded.version >= 0)
    options.cache?.set(streamId, loaded.version, loaded.state);

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
  if (events.length === 0) return { state, version };
  return { state: evolveAll(definition, state, events), version: events.at(-1)!.version };
}
