import { describe, expect, it } from 'vitest';
import { AggregateCache, type AggregateDefinition, loadAggregate } from '../../domain/shared/aggregate.ts';
import type { EventStore } from '../../domain/shared/event-store.ts';
import { MemoryEventStore } from '../memory/event-store.ts';
import { SqlEventStore } from '../postgres/event-store.ts';
import { newEvent, streamName } from '../shared/event-store-contract.ts';
import { pgliteClient } from './client.ts';

interface Balance {
  cash: number;
  deposits: number;
}

const balance = (every?: number): AggregateDefinition<Balance> => ({
  initial: () => ({ cash: 0, deposits: 0 }),
  evolve: (state, event) => {
    const amount = (event.data as { amount: number }).amount;
    return { cash: state.cash + amount, deposits: state.deposits + 1 };
  },
  snapshot: every ? { every, schemaVersion: 1 } : undefined,
});

const stores: Array<[string, () => Promise<EventStore>]> = [
  ['memory', async () => new MemoryEventStore()],
  [
    'PGlite',
    async () =>
      SqlEventStore.open({
        client: await pgliteClient(),
        schema: 'broker',
        ownsClient: true,
        exclusiveWriter: true,
      }),
  ],
];

describe.each(stores)('loading an aggregate with snapshots (%s)', (_, openStore) => {
  it('gives the same state with and without snapshots, now and at any version', async () => {
    const store = await openStore();
    const stream = streamName('wallet');
    for (let i = 1; i <= 25; i++) {
      await store.append(stream, [newEvent('Deposited', { amount: i })]);
      await loadAggregate(store, stream, balance(5));
    }
    const withSnapshots = await loadAggregate(store, stream, balance(5));
    const plain = await loadAggregate(store, stream, balance());
    expect(withSnapshots.state).toEqual({ cash: 325, deposits: 25 });
    expect(withSnapshots.state).toEqual(plain.state);
    expect(withSnapshots.version).toBe(24);
    expect(withSnapshots.fromSnapshot).toBeGreaterThanOrEqual(19);
    for (const version of [0, 4, 12, 24]) {
      const at = await loadAggregate(store, stream, balance(5), { version });
      expect(at.state.deposits).toBe(version + 1);
      expect(at.state.cash).toBe(((version + 1) * (version + 2)) / 2);
      expect(at.version).toBe(version);
    }
    await store.close();
  });

  it('writes a snapshot only every N events, and ignores one of another shape', async () => {
    const store = await openStore();
    const stream = streamName('wallet');
    await store.append(
      stream,
      Array.from({ length: 4 }, (_, i) => newEvent('Deposited', { amount: i + 1 })),
    );
    await loadAggregate(store, stream, balance(5));
    expect(await store.loadSnapshot(stream, { schemaVersion: 1 })).toBeUndefined();
    await store.append(stream, [newEvent('Deposited', { amount: 5 })]);
    await loadAggregate(store, stream, balance(5));
    expect(await store.loadSnapshot(stream, { schemaVersion: 1 })).toMatchObject({
      version: 4,
      state: { cash: 15 },
    });
    // A snapshot of an older state shape is never used.
    await store.saveSnapshot({ streamId: stream, version: 4, state: { wrong: true }, schemaVersion: 0 });
    const loaded = await loadAggregate(store, stream, {
      ...balance(),
      snapshot: { every: 100, schemaVersion: 2 },
    });
    expect(loaded).toEqual({ state: { cash: 15, deposits: 5 }, version: 4, fromSnapshot: undefined });
    await store.close();
  });

  it('rebuilds the state as it was at a point in time', async () => {
    const store = await openStore();
    const stream = streamName('wallet');
    await store.append(stream, [
      newEvent('Deposited', { amount: 10 }),
      newEvent('Deposited', { amount: 20 }),
    ]);
    const [, second] = await store.readStream(stream);
    await new Promise((resolve) => setTimeout(resolve, 20));
    await store.append(stream, [newEvent('Deposited', { amount: 40 })]);
    const then = await loadAggregate(store, stream, balance(1), { at: second!.recordedAt });
    expect(then).toEqual({ state: { cash: 30, deposits: 2 }, version: 1 });
    expect((await loadAggregate(store, stream, balance(1), { at: new Date(0) })).version).toBe(-1);
    await store.close();
  });

  it('through a cache, reads only the events after the cached version and sees other writers', async () => {
    const store = await openStore();
    const stream = streamName('wallet');
    await store.append(stream, [
      newEvent('Deposited', { amount: 10 }),
      newEvent('Deposited', { amount: 20 }),
    ]);
    const cache = new AggregateCache<Balance>();
    const read = store.readStream.bind(store);
    const fromVersions: number[] = [];
    store.readStream = (streamId, options) => {
      fromVersions.push(options?.fromVersion ?? 0);
      return read(streamId, options);
    };
    expect((await loadAggregate(store, stream, balance(), { cache })).state).toEqual({
      cash: 30,
      deposits: 2,
    });
    // Another process appends: the next load folds just that onto the cached state.
    await store.append(stream, [newEvent('Deposited', { amount: 40 })]);
    const loaded = await loadAggregate(store, stream, balance(), { cache });
    expect(loaded).toEqual({ state: { cash: 70, deposits: 3 }, version: 2 });
    expect(fromVersions).toEqual([0, 2]);
    // The store is the only writer and saw the last append: the cached state is known current.
    expect(store.knownVersion?.(stream)).toBe(2);
    expect((await loadAggregate(store, stream, balance(), { cache })).state.cash).toBe(70);
    expect(fromVersions).toEqual([0, 2]);
    // A load at a version never comes from the cache, nor changes it.
    expect((await loadAggregate(store, stream, balance(), { cache, version: 0 })).state.cash).toBe(10);
    expect(cache.get(stream)).toEqual({ version: 2, state: { cash: 70, deposits: 3 } });
    await store.close();
  });
});

describe('AggregateCache', () => {
  it('keeps the newer of two states, and drops the least recently used stream first', () => {
    const cache = new AggregateCache<number>(2);
    cache.set('a', 5, 50);
    cache.set('a', 3, 30);
    expect(cache.get('a')).toEqual({ version: 5, state: 50 });
    cache.set('b', 1, 10);
    cache.get('a');
    cache.set('c', 1, 10);
    expect(cache.get('b')).toBeUndefined();
    expect(cache.get('a')).toBeDefined();
    expect(cache.get('c')).toBeDefined();
  });
});

describe('AggregateCache.follow', () => {
  const recorded = (streamId: string, version: number, amount: number) =>
    ({ ...newEvent('Deposited', { amount }), streamId, version, position: version + 1 }) as never;

  it("folds in a stream's first event and each next one, and ignores any other", () => {
    const cache = new AggregateCache<Balance>();
    cache.follow(recorded('w-1', 1, 5), balance()); // not the first, and nothing cached: unknown
    expect(cache.get('w-1')).toBeUndefined();
    cache.follow(recorded('w-1', 0, 10), balance());
    cache.follow(recorded('w-1', 1, 20), balance());
    expect(cache.get('w-1')).toEqual({ version: 1, state: { cash: 30, deposits: 2 } });
    cache.follow(recorded('w-1', 3, 40), balance()); // a gap: the cached state stays as it was
    cache.follow(recorded('w-1', 1, 20), balance()); // seen before
    cache.follow(recorded('w-1', 0, 10), balance());
    expect(cache.get('w-1')).toEqual({ version: 1, state: { cash: 30, deposits: 2 } });
  });

  it('lets a load of the only writer’s stream read nothing', async () => {
    const store = await stores[1]![1]();
    const stream = streamName('wallet');
    const appended = await store.append(stream, [newEvent('Deposited', { amount: 7 })]);
    const cache = new AggregateCache<Balance>();
    for (const event of await store.readStream(stream)) cache.follow(event, balance());
    let reads = 0;
    const read = store.readStream.bind(store);
    store.readStream = (streamId, options) => {
      reads += 1;
      return read(streamId, options);
    };
    const loaded = await loadAggregate(store, stream, balance(), { cache });
    expect(loaded).toEqual({ state: { cash: 7, deposits: 1 }, version: appended.nextExpectedVersion });
    expect(reads).toBe(0);
    await store.close();
  });
});
