/**
 * The one contract every EventStore adapter passes. Each adapter's test file calls
 * `eventStoreContract` with a factory; the factory's `reopen` gives a second handle on the same
 * storage (another process, or the same data read with other event schemas).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineEvent, EventSchemas } from '../../domain/shared/event-schemas.ts';
import {
  DuplicateEventId,
  type EventStore,
  InvalidEvent,
  type NewEvent,
  type RecordedEvent,
  WrongExpectedVersion,
} from '../../domain/shared/event-store.ts';

export interface EventStoreFactory {
  /** False where the store keeps event ids unique per stream only (EventStoreDB). */
  globalEventIds?: boolean;
  /** A store over fresh, empty storage. */
  create(options?: { schemas?: EventSchemas }): Promise<EventStoreHandle>;
}

export interface EventStoreHandle {
  store: EventStore;
  /** Another store over the same storage. */
  reopen(options?: { schemas?: EventSchemas }): Promise<EventStore>;
}

let sequence = 0;
export const streamName = (prefix = 'order') => `${prefix}-${randomUUID()}`;

export function newEvent(type = 'Deposited', data: unknown = { amount: 100 }, id = randomUUID()): NewEvent {
  sequence += 1;
  return {
    id,
    type,
    data,
    metadata: {
      correlationId: `corr-${sequence}`,
      causationId: `cause-${sequence}`,
      actor: 'contract-test',
      occurredAt: new Date().toISOString(),
    },
  };
}

const events = (count: number, type = 'Deposited') =>
  Array.from({ length: count }, (_, index) => newEvent(type, { amount: index + 1 }));

export function eventStoreContract(name: string, factory: EventStoreFactory): void {
  describe(`EventStore contract: ${name}`, () => {
    const opened: EventStore[] = [];
    const open = async (options?: { schemas?: EventSchemas }) => {
      const handle = await factory.create(options);
      opened.push(handle.store);
      const reopen = async (again?: { schemas?: EventSchemas }) => {
        const store = await handle.reopen(again);
        opened.push(store);
        return store;
      };
      return { store: handle.store, reopen };
    };
    afterAll(async () => {
      for (const store of opened.reverse()) await store.close();
    });

    describe('append', () => {
      it('numbers a new stream from version 0 and gives growing global positions', async () => {
        const { store } = await open();
        const stream = streamName();
        const first = await store.append(stream, events(3), { expectedVersion: 'no_stream' });
        const second = await store.append(stream, events(2), { expectedVersion: 2 });
        expect(first.nextExpectedVersion).toBe(2);
        expect(second.nextExpectedVersion).toBe(4);
        const positions = [...first.positions, ...second.positions];
        expect(positions).toHaveLength(5);
        for (let i = 1; i < positions.length; i++) expect(positions[i]!).toBeGreaterThan(positions[i - 1]!);
        const read = await store.readStream(stream);
        expect(read.map((event) => event.version)).toEqual([0, 1, 2, 3, 4]);
        expect(read.map((event) => event.position)).toEqual(positions);
        expect(await store.streamVersion(stream)).toBe(4);
        expect(await store.streamVersion(streamName())).toBe(-1);
      });

      it('stores data and metadata as given, with the schema version stamped', async () => {
        const { store } = await open();
        const stream = streamName('wallet');
        const event = newEvent('CashReserved', { orderId: 'o-1', amount: 32_500, nested: { list: [1, 2] } });
        await store.append(stream, [event]);
        const [read] = await store.readStream(stream);
        expect(read).toMatchObject({
          id: event.id,
          streamId: stream,
          type: 'CashReserved',
          data: event.data,
        });
        expect(read!.metadata).toEqual({ ...event.metadata, schemaVersion: 1 });
        expect(read!.recordedAt).toBeInstanceOf(Date);
      });

      it('enforces no_stream, stream_exists and an exact version, reporting the actual version', async () => {
        const { store } = await open();
        const stream = streamName();
        const missing = await store
          .append(stream, events(1), { expectedVersion: 'stream_exists' })
          .catch((e) => e);
        expect(missing).toBeInstanceOf(WrongExpectedVersion);
        expect(missing.actualVersion).toBe(-1);

        await store.append(stream, events(2), { expectedVersion: 'no_stream' });
        const exists = await store
          .append(stream, events(1), { expectedVersion: 'no_stream' })
          .catch((e) => e);
        expect(exists).toBeInstanceOf(WrongExpectedVersion);
        expect(exists.actualVersion).toBe(1);

        const stale = await store.append(stream, events(1), { expectedVersion: 0 }).catch((e) => e);
        expect(stale).toBeInstanceOf(WrongExpectedVersion);
        expect(stale).toMatchObject({ streamId: stream, expectedVersion: 0, actualVersion: 1 });

        const ahead = await store.append(stream, events(1), { expectedVersion: 5 }).catch((e) => e);
        expect(ahead).toBeInstanceOf(WrongExpectedVersion);

        await store.append(stream, events(1), { expectedVersion: 'stream_exists' });
        await store.append(stream, events(1), { expectedVersion: 'any' });
        expect(await store.streamVersion(stream)).toBe(3);
      });

      it('appends a batch atomically: a refused batch leaves nothing behind', async () => {
        const { store } = await open();
        const stream = streamName();
        await store.append(stream, events(1));
        await expect(store.append(stream, events(5), { expectedVersion: 7 })).rejects.toThrow(
          WrongExpectedVersion,
        );
        const bad = [...events(2), { ...newEvent(), id: 'not-a-uuid' }];
        await expect(store.append(stream, bad)).rejects.toThrow(InvalidEvent);
        expect(await store.readStream(stream)).toHaveLength(1);
      });

      it('lets exactly one of many concurrent writers at the same expected version win', async () => {
        const { store } = await open();
        const stream = streamName();
        await store.append(stream, events(1));
        const results = await Promise.allSettled(
          Array.from({ length: 12 }, () => store.append(stream, events(2), { expectedVersion: 0 })),
        );
        const won = results.filter((result) => result.status === 'fulfilled');
        const lost = results.filter((result) => result.status === 'rejected');
        expect(won).toHaveLength(1);
        for (const result of lost) {
          expect(result.reason).toBeInstanceOf(WrongExpectedVersion);
          expect(result.reason.actualVersion).toBe(2);
        }
        expect(await store.readStream(stream)).toHaveLength(3);
      });

      it('lets exactly one of many concurrent creators of a stream win', async () => {
        const { store } = await open();
        const stream = streamName();
        const results = await Promise.allSettled(
          Array.from({ length: 8 }, () => store.append(stream, events(1), { expectedVersion: 'no_stream' })),
        );
        expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(1);
        expect(await store.readStream(stream)).toHaveLength(1);
      });

      it('keeps every event of concurrent writers with expected version any, versions without gaps', async () => {
        const { store } = await open();
        const stream = streamName();
        await Promise.all(
          Array.from({ length: 10 }, () => store.append(stream, events(3), { expectedVersion: 'any' })),
        );
        const read = await store.readStream(stream);
        expect(read.map((event) => event.version)).toEqual(Array.from({ length: 30 }, (_, index) => index));
      });

      it('gives appends made at once positions in the order they were made, whatever their streams', async () => {
        const { store } = await open();
        const prefix = streamName();
        // A sweep's trades, one stream each: their order is the tape's, and streams sort otherwise.
        const streams = [`${prefix}-9`, `${prefix}-10`, `${prefix}-11`, `${prefix}-b`, `${prefix}-a`];
        const results = await Promise.all(streams.map((stream) => store.append(stream, events(2))));
        const positions = results.flatMap((result) => result.positions);
        expect(positions).toEqual([...positions].sort((a, b) => a - b));
        const read = await store.readAll({ after: positions[0]! - 1 });
        expect(
          read.filter((event) => event.streamId.startsWith(prefix)).map((event) => event.streamId),
        ).toEqual(streams.flatMap((stream) => [stream, stream]));
      });

      it('gives each of many appends made at once its own outcome', async () => {
        const { store } = await open();
        const existing = streamName();
        const stored = events(2);
        const original = await store.append(existing, stored);
        const fresh = Array.from({ length: 6 }, () => streamName());
        const results = await Promise.allSettled([
          ...fresh.map((stream) => store.append(stream, events(2), { expectedVersion: 'no_stream' })),
          store.append(existing, events(1), { expectedVersion: 5 }),
          store.append(existing, stored, { expectedVersion: 'no_stream' }),
          store.append(existing, events(1), { expectedVersion: 1 }),
          ...(factory.globalEventIds !== false ? [store.append(streamName(), [stored[0]!])] : []),
        ]);
        const [conflict, retry, next, reused] = results.slice(fresh.length);
        for (const result of results.slice(0, fresh.length)) {
          expect(result.status).toBe('fulfilled');
          if (result.status === 'fulfilled') expect(result.value.nextExpectedVersion).toBe(1);
        }
        expect(conflict).toMatchObject({ status: 'rejected', reason: expect.any(WrongExpectedVersion) });
        expect(retry).toMatchObject({
          status: 'fulfilled',
          value: { idempotent: true, positions: original.positions },
        });
        expect(next).toMatchObject({
          status: 'fulfilled',
          value: { nextExpectedVersion: 2, idempotent: false },
        });
        if (reused)
          expect(reused).toMatchObject({ status: 'rejected', reason: expect.any(DuplicateEventId) });
        expect(await store.readStream(existing)).toHaveLength(3);
        for (const stream of fresh) expect(await store.readStream(stream)).toHaveLength(2);
      });

      it('answers a retry of stored events with their original positions and writes nothing', async () => {
        const { store } = await open();
        const stream = streamName();
        const batch = events(3);
        const original = await store.append(stream, batch, { expectedVersion: 'no_stream' });
        await store.append(stream, events(1));
        // The retry carries the expected version of the first attempt: still a no-op, not a conflict.
        const retry = await store.append(stream, batch, { expectedVersion: 'no_stream' });
        expect(retry).toEqual({ nextExpectedVersion: 3, positions: original.positions, idempotent: true });
        expect(await store.readStream(stream)).toHaveLength(4);
      });

      it('answers concurrent retries of the same events with one write', async () => {
        const { store } = await open();
        const stream = streamName();
        const batch = events(2);
        const results = await Promise.all(Array.from({ length: 6 }, () => store.append(stream, batch)));
        expect(new Set(results.map((result) => result.positions.join(','))).size).toBe(1);
        expect(results.filter((result) => !result.idempotent)).toHaveLength(1);
        expect(await store.readStream(stream)).toHaveLength(2);
      });

      it('refuses a batch mixing stored and new event ids, or reusing an id of another stream', async () => {
        const { store } = await open();
        const stream = streamName();
        const [stored] = events(1);
        await store.append(stream, [stored!]);
        await expect(store.append(stream, [stored!, newEvent()])).rejects.toThrow(DuplicateEventId);
        if (factory.globalEventIds !== false) {
          await expect(store.append(streamName(), [stored!])).rejects.toThrow(DuplicateEventId);
        }
        expect(await store.readStream(stream)).toHaveLength(1);
      });

      it('refuses events with bad ids or metadata, naming the field', async () => {
        const { store } = await open();
        const stream = streamName();
        const noActor = newEvent();
        noActor.metadata = { ...noActor.metadata, actor: '' };
        await expect(store.append(stream, [noActor])).rejects.toThrow(/metadata\.actor/);
        const badTime = newEvent();
        badTime.metadata = { ...badTime.metadata, occurredAt: 'yesterday' };
        await expect(store.append(stream, [badTime])).rejects.toThrow(/metadata\.occurredAt/);
        await expect(store.append(stream, [])).rejects.toThrow(/at least one event/);
        await expect(store.append('', events(1))).rejects.toThrow(/stream id/);
        expect(await store.streamVersion(stream)).toBe(-1);
      });
    });

    describe('read', () => {
      it('reads a stream forwards and backwards from a version, with a limit', async () => {
        const { store } = await open();
        const stream = streamName();
        await store.append(stream, events(10));
        const forwards = await store.readStream(stream, { fromVersion: 4, limit: 3 });
        expect(forwards.map((event) => event.version)).toEqual([4, 5, 6]);
        const backwards = await store.readStream(stream, { direction: 'backwards', limit: 3 });
        expect(backwards.map((event) => event.version)).toEqual([9, 8, 7]);
        const backwardsFrom = await store.readStream(stream, { direction: 'backwards', fromVersion: 2 });
        expect(backwardsFrom.map((event) => event.version)).toEqual([2, 1, 0]);
        expect(await store.readStream(streamName())).toEqual([]);
      });

      it('reads a stream up to a version and up to a point in time', async () => {
        const { store } = await open();
        const stream = streamName();
        await store.append(stream, events(3));
        const [, , third] = await store.readStream(stream);
        await new Promise((resolve) => setTimeout(resolve, 20));
        await store.append(stream, events(2));
        expect((await store.readStream(stream, { toVersion: 1 })).map((event) => event.version)).toEqual([
          0, 1,
        ]);
        const atThen = await store.readStream(stream, { until: third!.recordedAt });
        expect(atThen.map((event) => event.version)).toEqual([0, 1, 2]);
        expect(await store.readStream(stream, { until: new Date(0) })).toEqual([]);
      });

      it('reads all events in position order from a position, across streams', async () => {
        const { store } = await open();
        const before = await store.headPosition();
        const a = streamName('wallet');
        const b = streamName('order');
        await store.append(a, events(2));
        await store.append(b, events(3));
        await store.append(a, events(1));
        const all = await readEverything(store, before);
        expect(all.map((event) => event.streamId)).toEqual([a, a, b, b, b, a]);
        const positions = all.map((event) => event.position);
        expect([...positions].sort((x, y) => x - y)).toEqual(positions);
        expect(await store.headPosition()).toBe(positions.at(-1));
        const page = await store.readAll({ after: positions[1]!, limit: 2 });
        expect(page.map((event) => event.position)).toEqual(positions.slice(2, 4));
      });
    });

    describe('subscribe to all', () => {
      it('catches up from a checkpoint, then follows live appends, and stops cleanly', async () => {
        const { store } = await open();
        const stream = streamName();
        const start = await store.headPosition();
        await store.append(stream, events(3));
        const [first] = await store.readStream(stream);
        const seen: RecordedEvent[] = [];
        let caughtUp = false;
        const subscription = store.subscribeToAll({
          after: first!.position,
          onEvent: (event) => {
            if (event.streamId === stream) seen.push(event);
          },
          onCaughtUp: () => {
            caughtUp = true;
          },
        });
        await waitFor(() => seen.length === 2 && caughtUp);
        await store.append(stream, events(2));
        await waitFor(() => seen.length === 4);
        expect(seen.map((event) => event.version)).toEqual([1, 2, 3, 4]);
        await subscription.stop();
        await store.append(stream, events(1));
        await new Promise((resolve) => setTimeout(resolve, 50));
        expect(seen).toHaveLength(4);
        expect(start).toBeLessThan(first!.position);
      });

      it('delivers a live append within a few milliseconds, without waiting for a poll', async () => {
        const { store } = await open();
        const stream = streamName();
        const arrivals: number[] = [];
        let caughtUp = false;
        const subscription = store.subscribeToAll({
          after: await store.headPosition(),
          onEvent: (event) => {
            if (event.streamId === stream) arrivals.push(performance.now());
          },
          onCaughtUp: () => {
            caughtUp = true;
          },
        });
        await waitFor(() => caughtUp);
        const latencies: number[] = [];
        for (let i = 0; i < 5; i++) {
          const sent = performance.now();
          await store.append(stream, events(1));
          await waitFor(() => arrivals.length === i + 1);
          latencies.push(arrivals[i]! - sent);
        }
        await subscription.stop();
        // The idle poll is a second: a median far below it shows notifications wake the reader.
        expect(latencies.sort((a, b) => a - b)[2]!).toBeLessThan(250);
      });

      it('delivers batches of at most batchSize events, in order, to onBatch', async () => {
        const { store } = await open();
        const stream = streamName();
        const after = await store.headPosition();
        await store.append(stream, events(10));
        const batches: RecordedEvent[][] = [];
        const subscription = store.subscribeToAll({
          after,
          batchSize: 4,
          onBatch: (batch) => void batches.push(batch.filter((event) => event.streamId === stream)),
        });
        await waitFor(() => batches.flat().length === 10);
        await subscription.stop();
        expect(batches.every((batch) => batch.length <= 4)).toBe(true);
        expect(batches.flat().map((event) => event.version)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      });

      it('hands an error of the handler to onError and stops', async () => {
        const { store } = await open();
        const stream = streamName();
        await store.append(stream, events(1));
        const errors: unknown[] = [];
        const subscription = store.subscribeToAll({
          after: 0,
          onEvent: () => {
            throw new Error('projection failed');
          },
          onError: (error) => errors.push(error),
        });
        await subscription.done;
        expect(errors).toHaveLength(1);
        expect((errors[0] as Error).message).toBe('projection failed');
      });
    });

    describe('snapshots', () => {
      it('loads the latest snapshot at or below a version, of the same schema version only', async () => {
        const { store } = await open();
        const stream = streamName('wallet');
        expect(await store.loadSnapshot(stream, { schemaVersion: 1 })).toBeUndefined();
        await store.saveSnapshot({ streamId: stream, version: 9, state: { cash: 900 }, schemaVersion: 1 });
        await store.saveSnapshot({ streamId: stream, version: 19, state: { cash: 1900 }, schemaVersion: 1 });
        await store.saveSnapshot({ streamId: stream, version: 29, state: { money: 1 }, schemaVersion: 2 });
        expect(await store.loadSnapshot(stream, { schemaVersion: 1 })).toMatchObject({
          version: 19,
          state: { cash: 1900 },
        });
        expect(await store.loadSnapshot(stream, { schemaVersion: 1, atOrBelowVersion: 18 })).toMatchObject({
          version: 9,
          state: { cash: 900 },
        });
        expect(await store.loadSnapshot(stream, { schemaVersion: 3 })).toBeUndefined();
      });

      it('replaces a snapshot saved again at the same version', async () => {
        const { store } = await open();
        const stream = streamName('checkpoint');
        await store.saveSnapshot({ streamId: stream, version: 0, state: { position: 5 }, schemaVersion: 2 });
        await store.saveSnapshot({ streamId: stream, version: 0, state: { position: 9 }, schemaVersion: 2 });
        expect(await store.loadSnapshot(stream, { schemaVersion: 2 })).toMatchObject({
          version: 0,
          state: { position: 9 },
        });
      });
    });

    describe('schemas', () => {
      const depositedV1 = defineEvent({
        type: 'Deposited',
        version: 1,
        schema: z.object({ amount: z.number() }),
      });
      const depositedV2 = defineEvent({
        type: 'Deposited',
        version: 2,
        schema: z.object({ amountCents: z.number().int(), currency: z.literal('BRL') }),
        upcasters: { 1: (data) => ({ amountCents: (data as { amount: number }).amount, currency: 'BRL' }) },
      });

      it('refuses data that does not match its schema, naming the field, and writes nothing', async () => {
        const { store } = await open({ schemas: new EventSchemas([depositedV2]) });
        const stream = streamName('wallet');
        const error = await store
          .append(stream, [newEvent('Deposited', { amountCents: 'ten' })])
          .catch((e) => e);
        expect(error).toBeInstanceOf(InvalidEvent);
        expect(error.message).toMatch(/amountCents/);
        await expect(store.append(stream, [newEvent('Teleported', {})])).rejects.toThrow(
          /unknown event type/,
        );
        expect(await store.streamVersion(stream)).toBe(-1);
      });

      it('upcasts events stored under an older schema version when read', async () => {
        const { store, reopen } = await open({ schemas: new EventSchemas([depositedV1]) });
        const stream = streamName('wallet');
        await store.append(stream, [newEvent('Deposited', { amount: 500 })]);
        const upgraded = await reopen({ schemas: new EventSchemas([depositedV2]) });
        await upgraded.append(stream, [newEvent('Deposited', { amountCents: 700, currency: 'BRL' })]);
        const read = await upgraded.readStream(stream);
        expect(read.map((event) => event.data)).toEqual([
          { amountCents: 500, currency: 'BRL' },
          { amountCents: 700, currency: 'BRL' },
        ]);
        expect(read.map((event) => event.metadata.schemaVersion)).toEqual([2, 2]);
        const all = await readEverything(upgraded, read[0]!.position - 1);
        expect(all[0]!.data).toEqual({ amountCents: 500, currency: 'BRL' });
      });
    });

    describe('read all under concurrent writers', () => {
      it('a concurrent reader sees every committed event exactly once, in position order', async () => {
        const { store } = await open();
        const after = await store.headPosition();
        const writers = 8;
        const appendsPerWriter = 25;
        const written = new Set<string>();
        const seen: RecordedEvent[] = [];
        const subscription = store.subscribeToAll({ after, onEvent: (event) => void seen.push(event) });
        await Promise.all(
          Array.from({ length: writers }, async (_, writer) => {
            for (let i = 0; i < appendsPerWriter; i++) {
              const batch = events(1 + (i % 3));
              await store.append(streamName(`writer${writer}`), batch);
              for (const event of batch) written.add(event.id);
            }
          }),
        );
        await waitFor(() => seen.length >= written.size, 20_000);
        await subscription.stop();
        expect(seen.length).toBe(written.size);
        expect(new Set(seen.map((event) => event.id))).toEqual(written);
        for (let i = 1; i < seen.length; i++)
          expect(seen[i]!.position).toBeGreaterThan(seen[i - 1]!.position);
      });
    });
  });
}

export async function readEverything(store: EventStore, after = 0): Promise<RecordedEvent[]> {
  const all: RecordedEvent[] = [];
  for (;;) {
    const page = await store.readAll({ after: all.at(-1)?.position ?? after, limit: 500 });
    if (page.length === 0) return all;
    all.push(...page);
  }
}

export async function waitFor(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}
