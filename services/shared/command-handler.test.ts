import { describe, expect, it } from 'vitest';
import { MemoryEventStore } from '../../adapters/memory/event-store.ts';
import { AggregateCache } from '../../domain/shared/aggregate.ts';
import type { Decider } from '../../domain/shared/decider.ts';
import { DomainError } from '../../domain/shared/domain-error.ts';
import { type AppendResult, type EventStore, WrongExpectedVersion } from '../../domain/shared/event-store.ts';
import { BACKOFF_BASE_MS, BACKOFF_CAP_MS, handleCommand, jitteredBackoff } from './command-handler.ts';

type CounterEvent = { type: 'Incremented'; data: { by: number } };
type CounterCommand = { type: 'Increment'; by: number; max: number };

class TooHigh extends DomainError {
  readonly reason = 'TOO_HIGH';
}

const counter: Decider<number, CounterCommand, CounterEvent> = {
  initial: () => 0,
  decide: (command, state) => {
    // Nothing to do: no change asked for, or already at the maximum.
    if (command.by === 0 || state === command.max) return [];
    if (state + command.by > command.max) throw new TooHigh('too high');
    return [{ type: 'Incremented', data: { by: command.by } }];
  },
  evolve: (state, event) => state + event.data.by,
};

const metadata = { correlationId: 'c-1', causationId: 'cause-1', actor: 'tester' };

/** A store whose first `conflicts` appends lose the race to another writer. */
function racingStore(store: MemoryEventStore, conflicts: number): EventStore {
  let left = conflicts;
  return new Proxy(store, {
    get(target, property, receiver) {
      if (property !== 'append') return Reflect.get(target, property, receiver);
      return async (...args: Parameters<EventStore['append']>): Promise<AppendResult> => {
        if (left > 0) {
          left -= 1;
          await target.append(args[0], [
            {
              id: crypto.randomUUID(),
              type: 'Incremented',
              data: { by: 1 },
              metadata: { ...metadata, actor: 'rival', occurredAt: new Date().toISOString() },
            },
          ]);
        }
        return target.append(...args);
      };
    },
  });
}

describe('handleCommand', () => {
  it('appends what the decider decides, with the metadata, and returns the new version and state', async () => {
    const store = new MemoryEventStore();
    const result = await handleCommand(
      store,
      'counter-1',
      counter,
      { type: 'Increment', by: 2, max: 10 },
      metadata,
    );
    expect(result).toMatchObject({ version: 0, state: 2 });
    const [event] = await store.readStream('counter-1');
    expect(event?.metadata).toMatchObject(metadata);
    expect(event?.id).toBe(result.events[0]?.id);
  });

  it('appends nothing when the decider decides nothing', async () => {
    const store = new MemoryEventStore();
    const result = await handleCommand(
      store,
      'counter-1',
      counter,
      { type: 'Increment', by: 0, max: 10 },
      metadata,
    );
    expect(result).toMatchObject({ events: [], version: -1 });
  });

  it('retries a conflict with the fresh state, deciding again', async () => {
    const store = new MemoryEventStore();
    const result = await handleCommand(
      racingStore(store, 2),
      'counter-1',
      counter,
      { type: 'Increment', by: 5, max: 10 },
      metadata,
    );
    expect(result.state).toBe(7);
    expect((await store.readStream('counter-1')).map((event) => event.metadata.actor)).toEqual([
      'rival',
      'rival',
      'tester',
    ]);
  });

  it('waits a jittered pause before each retry, its range doubling from one retry to the next', async () => {
    const store = new MemoryEventStore();
    const waits: number[] = [];
    const result = await handleCommand(
      racingStore(store, 4),
      'counter-1',
      counter,
      { type: 'Increment', by: 1, max: 100 },
      metadata,
      {
        // Half of each range, so that every pause is there to see: a random one may be 0, not slept.
        retryDelay: (attempt) => jitteredBackoff(attempt, () => 0.5),
        sleep: async (ms) => void waits.push(ms),
      },
    );
    expect(result.state).toBe(5);
    expect(waits).toEqual([0.5, 1, 2, 4].map((share) => share * BACKOFF_BASE_MS));
    // The range: full jitter under base·2^(n-1), capped.
    expect([1, 2, 3, 4, 20].map((attempt) => jitteredBackoff(attempt, () => 0.999))).toEqual([
      9,
      19,
      39,
      79,
      BACKOFF_CAP_MS - 1,
    ]);
    expect(jitteredBackoff(3, () => 0)).toBe(0);
  });

  it('gives up after maxRetries conflicts', async () => {
    const store = new MemoryEventStore();
    await expect(
      handleCommand(
        racingStore(store, 5),
        'counter-1',
        counter,
        { type: 'Increment', by: 1, max: 100 },
        metadata,
        {
          maxRetries: 2,
        },
      ),
    ).rejects.toBeInstanceOf(WrongExpectedVersion);
  });

  it('throws a domain error as is, and the fresh state can turn a retry into a refusal', async () => {
    const store = new MemoryEventStore();
    await expect(
      handleCommand(
        racingStore(store, 3),
        'counter-1',
        counter,
        { type: 'Increment', by: 8, max: 10 },
        metadata,
      ),
    ).rejects.toBeInstanceOf(TooHigh);
  });

  it('does not retry an explicit expected version', async () => {
    const store = new MemoryEventStore();
    await handleCommand(store, 'counter-1', counter, { type: 'Increment', by: 1, max: 10 }, metadata);
    await expect(
      handleCommand(store, 'counter-1', counter, { type: 'Increment', by: 1, max: 10 }, metadata, {
        expectedVersion: 'no_stream',
      }),
    ).rejects.toBeInstanceOf(WrongExpectedVersion);
  });

  describe('with a cache', () => {
    /** The store, counting the stream reads that reach it. */
    function countingStore() {
      const store = new MemoryEventStore();
      let reads = 0;
      const counted = new Proxy(store, {
        get(target, property, receiver) {
          if (property !== 'readStream') return Reflect.get(target, property, receiver);
          return (...args: Parameters<EventStore['readStream']>) => {
            reads += 1;
            return target.readStream(...args);
          };
        },
      });
      return { store, counted, reads: () => reads };
    }
    const increment = (by: number, max = 100): CounterCommand => ({ type: 'Increment', by, max });

    it('decides on the cached state without reading, the expected version guarding the append', async () => {
      const { counted, reads } = countingStore();
      const cache = new AggregateCache<number>();
      await handleCommand(counted, 'counter-1', counter, increment(2), metadata, { cache });
      const before = reads();
      const result = await handleCommand(counted, 'counter-1', counter, increment(3), metadata, { cache });
      expect(result).toMatchObject({ version: 1, state: 5 });
      expect(reads()).toBe(before);
    });

    it('reads the stream when another writer moved it, and decides again on what is stored', async () => {
      const { store, counted } = countingStore();
      const cache = new AggregateCache<number>();
      await handleCommand(counted, 'counter-1', counter, increment(2), metadata, { cache });
      // Another process appends: this cache does not know.
      await handleCommand(store, 'counter-1', counter, increment(10), metadata);
      const result = await handleCommand(counted, 'counter-1', counter, increment(3), metadata, { cache });
      expect(result).toMatchObject({ version: 2, state: 15 });
      expect((await store.readStream('counter-1')).map((event) => event.data)).toEqual([
        { by: 2 },
        { by: 10 },
        { by: 3 },
      ]);
    });

    it('does not take a refusal or a no-op on the cached state for the answer: it reads and decides again', async () => {
      const { store, counted } = countingStore();
      const cache = new AggregateCache<number>();
      await handleCommand(counted, 'counter-1', counter, increment(10, 10), metadata, { cache });
      // Another process takes the counter down to 3: this cache still says 10.
      await handleCommand(store, 'counter-1', counter, increment(-7, 20), metadata);
      // At the maximum on the cached state, nothing to do; on the stored one, 3 + 1.
      const added = await handleCommand(counted, 'counter-1', counter, increment(1, 10), metadata, { cache });
      expect(added).toMatchObject({ version: 2, state: 4 });
      // Another process takes it down again, to 0: the cached 4 + 8 is too high, the stored 0 + 8 is not.
      await handleCommand(store, 'counter-1', counter, increment(-4, 20), metadata);
      const raised = await handleCommand(counted, 'counter-1', counter, increment(8, 10), metadata, {
        cache,
      });
      expect(raised).toMatchObject({ version: 4, state: 8 });
      // And a refusal on what is stored is still one.
      await expect(
        handleCommand(counted, 'counter-1', counter, increment(5, 10), metadata, { cache }),
      ).rejects.toBeInstanceOf(TooHigh);
    });
  });
});
