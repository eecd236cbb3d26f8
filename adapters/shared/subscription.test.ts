import { describe, expect, it } from 'vitest';
import type { RecordedEvent } from '../../domain/shared/event-store.ts';
import { type BatchRead, followAll, LiveTail, Waker } from './subscription.ts';

/** A store in memory with gaps in its positions, counting the reads that reach it. */
function fakeStore() {
  const events: RecordedEvent[] = [];
  const appended = new Waker();
  let reads = 0;
  return {
    appended,
    get reads() {
      return reads;
    },
    append(count: number) {
      for (let index = 0; index < count; index++) {
        const position = (events.at(-1)?.position ?? 0) + 2;
        events.push({
          id: `e${position}`,
          streamId: 's',
          type: 'T',
          version: events.length,
          position,
          data: {},
          metadata: { correlationId: 'c', causationId: 'c', actor: 'a', occurredAt: '', schemaVersion: 1 },
          recordedAt: new Date(0),
        });
      }
      appended.wake();
    },
    async readBatch(after: number, limit: number): Promise<BatchRead> {
      reads += 1;
      return { events: events.filter((event) => event.position > after).slice(0, limit), heldBack: false };
    },
    async head() {
      return events.at(-1)?.position ?? 0;
    },
  };
}

async function until(condition: () => boolean): Promise<void> {
  for (let attempt = 0; !condition(); attempt++) {
    if (attempt > 200) throw new Error('condition not met');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('LiveTail', () => {
  it('serves the events after a position inside its window from memory, in order, a page at a time', async () => {
    const store = fakeStore();
    store.append(3);
    const tail = new LiveTail(store.readBatch, store.head, store.appended);
    tail.start();
    await until(() => tail.read(6, 10) !== undefined);
    store.append(5);
    await until(() => tail.read(6, 10)?.events.length === 5);
    const readsBefore = store.reads;

    expect(tail.read(6, 10)?.events.map((event) => event.position)).toEqual([8, 10, 12, 14, 16]);
    expect(tail.read(9, 2)?.events.map((event) => event.position)).toEqual([10, 12]);
    expect(tail.read(16, 10)?.events).toEqual([]);
    expect(store.reads).toBe(readsBefore);
    await tail.stop();
  });

  it('leaves positions outside its window to the store: before it started, trimmed, or ahead of it', async () => {
    const store = fakeStore();
    store.append(4);
    const tail = new LiveTail(store.readBatch, store.head, store.appended, { capacity: 3 });
    tail.start();
    await until(() => tail.read(8, 10) !== undefined);
    expect(tail.read(2, 10)).toBeUndefined();

    store.append(5);
    await until(() => tail.read(16, 10) !== undefined);
    // Five new events, three kept: 14, 16, 18.
    expect(tail.read(10, 10)).toBeUndefined();
    expect(tail.read(12, 10)?.events.map((event) => event.position)).toEqual([14, 16, 18]);
    expect(tail.read(20, 10)).toBeUndefined();
    await tail.stop();
  });

  it('wakes its followers when it has read further', async () => {
    const store = fakeStore();
    const tail = new LiveTail(store.readBatch, store.head, store.appended);
    tail.start();
    await until(() => tail.read(0, 1) !== undefined);
    const generation = tail.advanced.generation;
    const woken = tail.advanced.wait(generation, 5_000, new AbortController().signal);
    store.append(1);
    await woken;
    expect(tail.read(0, 10)?.events.map((event) => event.position)).toEqual([2]);
    await tail.stop();
  });
});

describe('followAll', () => {
  it('with pacing, takes what gathered meanwhile in one batch instead of one batch per append', async () => {
    const run = async (pacingMs: number) => {
      const store = fakeStore();
      const batches: number[][] = [];
      const subscription = followAll(store.readBatch, store.appended, {
        after: 0,
        pacingMs,
        onBatch: (events) => void batches.push(events.map((event) => event.position)),
      });
      for (let append = 0; append < 10; append++) {
        store.append(1);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      await until(() => batches.flat().length === 10);
      await subscription.stop();
      return batches;
    };
    const unpaced = await run(0);
    const paced = await run(100);
    const positions = Array.from({ length: 10 }, (_, index) => (index + 1) * 2);
    expect(unpaced.flat()).toEqual(positions);
    expect(paced.flat()).toEqual(positions);
    // The first append is delivered at once; the nine that follow within ~50 ms wait for one read.
    expect(paced[0]).toEqual([2]);
    expect(paced.length).toBeLessThanOrEqual(2);
    expect(unpaced.length).toBeGreaterThan(paced.length);
  });
});
