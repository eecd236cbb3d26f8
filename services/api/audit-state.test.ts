import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MemoryEventStore } from '../../adapters/memory/event-store.ts';
import type { BookEvent } from '../../domain/b3/book-events.ts';
import { OrderBook } from '../../domain/b3/order-book.ts';
import { walletDecider } from '../../domain/broker/wallet/wallet.ts';
import type { EventStore, ReadStreamOptions, RecordedEvent } from '../../domain/shared/event-store.ts';
import { appendWorkload, tradingWorkload } from '../../projections/read-models/workload.ts';
import { ENGINE_SNAPSHOT_SCHEMA_VERSION } from '../b3-engine/engine-service.ts';
import {
  AUDIT_STATE_SNAPSHOT_SCHEMA_VERSION,
  auditStateAt,
  auditStateOf,
  stateNotSupported,
} from './audit-state.ts';
import { startTestApi } from './testing.ts';

/** A store that counts the events its callers read. */
function counting(store: EventStore): EventStore & { read: number } {
  const counter = Object.create(store) as EventStore & { read: number };
  counter.read = 0;
  counter.readStream = async (streamId: string, options?: ReadStreamOptions) => {
    const events = await store.readStream(streamId, options);
    counter.read += events.length;
    return events;
  };
  return counter;
}

/** A wallet with `count` deposits of 1..count cents, recorded a second apart from `start`. */
async function walletWithDeposits(count: number, start = Date.UTC(2026, 0, 5, 13)) {
  let clock = start;
  const store = new MemoryEventStore({ now: () => new Date(clock) });
  for (let amount = 1; amount <= count; amount += 1) {
    clock += 1000;
    await store.append('wallet-w1', [
      {
        id: randomUUID(),
        type: 'CashDeposited',
        data: { amount },
        metadata: {
          correlationId: `deposit-${amount}`,
          causationId: 'test',
          actor: 'w1',
          occurredAt: new Date(clock).toISOString(),
        },
      },
    ]);
  }
  return store;
}

/** The answer without snapshots: every event from the first, folded with the decider. */
async function fullFold(store: EventStore, keep: (event: RecordedEvent) => boolean) {
  const events = (await store.readStream('wallet-w1')).filter(keep);
  return {
    state: events.reduce(
      (wallet, event) => walletDecider.evolve(wallet, { type: event.type, data: event.data } as never),
      walletDecider.initial(),
    ),
    version: events.at(-1)?.version ?? -1,
  };
}

describe('audit state through snapshots', () => {
  it('starts from the latest snapshot at or below the version asked for, with the full fold’s answer', async () => {
    const store = await walletWithDeposits(300);
    const definition = auditStateOf('wallet-w1', { snapshotEvery: 100 })!;

    // No snapshot yet: folds from the first event, and leaves one at version 249.
    const first = counting(store);
    const cold = await auditStateAt(first, 'wallet-w1', definition, { version: 249 });
    expect(cold).toMatchObject({ version: 249, eventsRead: 250 });
    expect(cold.fromSnapshot).toBeUndefined();
    expect(cold.state).toEqual((await fullFold(store, (event) => event.version <= 249)).state);
    expect(
      await store.loadSnapshot('wallet-w1', { schemaVersion: AUDIT_STATE_SNAPSHOT_SCHEMA_VERSION }),
    ).toMatchObject({ version: 249 });

    for (const version of [249, 250, 262, 299]) {
      const reader = counting(store);
      const warm = await auditStateAt(reader, 'wallet-w1', definition, { version });
      expect(warm.fromSnapshot).toBe(249);
      expect(reader.read).toBe(version - 249);
      expect({ state: warm.state, version: warm.version }).toEqual(
        await fullFold(store, (event) => event.version <= version),
      );
    }
    // Below the snapshot it cannot help: the fold starts from the first event again.
    const early = await auditStateAt(counting(store), 'wallet-w1', definition, { version: 120 });
    expect(early.fromSnapshot).toBeUndefined();
    expect(early.state).toEqual((await fullFold(store, (event) => event.version <= 120)).state);
  });

  it('never answers past the version its caller read as current, however the stream moved since', async () => {
    const store = await walletWithDeposits(5);
    // The caller read version 2 as the stream's current one; the stream has moved on to 4 since.
    const loaded = await auditStateAt(store, 'wallet-w1', auditStateOf('wallet-w1')!, { current: 2 });
    expect(loaded.version).toBe(2);
    expect(loaded.state).toMatchObject({ cash: { available: 1 + 2 + 3 } });
  });

  it('answers a point in time through a snapshot too, finding its version by bisection', async () => {
    const start = Date.UTC(2026, 0, 5, 13);
    const store = await walletWithDeposits(300, start);
    const definition = auditStateOf('wallet-w1', { snapshotEvery: 100 })!;
    await auditStateAt(store, 'wallet-w1', definition, { version: 199 });

    for (const seconds of [200.5, 201, 260.25, 300, 1000]) {
      const at = new Date(start + seconds * 1000);
      const reader = counting(store);
      const answer = await auditStateAt(reader, 'wallet-w1', definition, { at });
      const expected = await fullFold(store, (event) => event.recordedAt.getTime() <= at.getTime());
      expect({ state: answer.state, version: answer.version }).toEqual(expected);
      // The one at 199, or one a longer fold of this loop left behind (at 299).
      expect([199, 299]).toContain(answer.fromSnapshot);
      expect(answer.fromSnapshot!).toBeLessThanOrEqual(expected.version);
      // log2(300) probes and the events after the snapshot, instead of every event up to then.
      expect(reader.read).toBeLessThanOrEqual(10 + expected.version - answer.fromSnapshot!);
    }
    const before = await auditStateAt(store, 'wallet-w1', definition, { at: new Date(start) });
    expect(before).toMatchObject({ version: -1, state: walletDecider.initial() });
  });

  it('reads the B3 engine’s snapshots for a book, and never writes its own there', async () => {
    const broker = new MemoryEventStore();
    const b3 = new MemoryEventStore();
    await appendWorkload(
      { broker, b3 },
      tradingWorkload({ seed: 7, requests: 200, accounts: 4, symbols: ['PETR4'] }),
    );
    const events = await b3.readStream('book-PETR4');
    expect(events.length).toBeGreaterThan(60);
    const replay = (upTo: number) =>
      OrderBook.replay(
        'PETR4',
        events
          .filter((event) => event.version <= upTo)
          .map((event) => ({ type: event.type, data: event.data }) as BookEvent),
      );
    // What the engine leaves behind: its book and its order index, under its own schema version.
    const at = Math.floor(events.length / 2);
    await b3.saveSnapshot({
      streamId: 'book-PETR4',
      version: at,
      state: { book: replay(at).snapshot(), index: [] },
      schemaVersion: ENGINE_SNAPSHOT_SCHEMA_VERSION,
    });
    const definition = auditStateOf('book-PETR4', { snapshotEvery: 10 })!;
    const last = events.at(-1)!.version;
    for (const version of [at, at + 1, last]) {
      const reader = counting(b3);
      const answer = await auditStateAt(reader, 'book-PETR4', definition, { version });
      expect(answer.fromSnapshot).toBe(at);
      expect(reader.read).toBe(version - at);
      expect(answer.state).toEqual(replay(version).snapshot());
    }
    const early = await auditStateAt(b3, 'book-PETR4', definition, { version: at - 1 });
    expect(early.fromSnapshot).toBeUndefined();
    expect(early.state).toEqual(replay(at - 1).snapshot());
    expect(
      await b3.loadSnapshot('book-PETR4', { schemaVersion: AUDIT_STATE_SNAPSHOT_SCHEMA_VERSION }),
    ).toBeUndefined();
  });

  it('GET /v1/audit/streams/{id}/state rebuilds a B3 book as `tradecore audit state` does, and refuses a trade alike', async () => {
    const broker = new MemoryEventStore();
    const b3 = new MemoryEventStore();
    await appendWorkload(
      { broker, b3 },
      tradingWorkload({ seed: 7, requests: 40, accounts: 2, symbols: ['PETR4'] }),
    );
    const events = await b3.readStream('book-PETR4');
    const api = await startTestApi({ broker, b3, readModels: false });
    try {
      const admin = await api.adminToken();
      const get = (url: string) =>
        api.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${admin}` } });
      const at = Math.floor(events.length / 2);
      const book = await get(`/v1/audit/streams/book-PETR4/state?version=${at}`);
      expect(book.statusCode, book.body).toBe(200);
      const { currentVersion, fromSnapshot: _snapshot, ...answer } = book.json();
      expect(currentVersion).toBe(events.at(-1)!.version);
      expect(answer).toEqual({
        streamId: 'book-PETR4',
        version: at,
        state: JSON.parse(
          JSON.stringify(
            OrderBook.replay(
              'PETR4',
              events
                .filter((event) => event.version <= at)
                .map((event) => ({ type: event.type, data: event.data }) as BookEvent),
            ).snapshot(),
          ),
        ),
      });
      const tradeId = (await b3.readAll({ limit: 10_000 })).find((event) =>
        event.streamId.startsWith('trade-'),
      )!.streamId;
      const trade = await get(`/v1/audit/streams/${tradeId}/state`);
      expect(trade.statusCode).toBe(400);
      expect(trade.json()).toMatchObject({
        reason: 'STATE_NOT_SUPPORTED',
        detail: stateNotSupported(tradeId),
      });
    } finally {
      await api.close();
    }
  });

  it('GET /v1/audit/streams/{id}/state answers through the snapshot what the full fold answers', async () => {
    const broker = counting(await walletWithDeposits(450));
    const api = await startTestApi({ broker, readModels: false });
    try {
      const admin = await api.adminToken();
      const state = async (query: string) => {
        broker.read = 0;
        const response = await api.app.inject({
          method: 'GET',
          url: `/v1/audit/streams/wallet-w1/state?${query}`,
          headers: { authorization: `Bearer ${admin}` },
        });
        expect(response.statusCode, response.body).toBe(200);
        return { body: response.json(), read: broker.read };
      };
      // The admin's token is checked against its account on its first request, which reads it.
      await api.app.inject({
        method: 'GET',
        url: '/v1/auth/me',
        headers: { authorization: `Bearer ${admin}` },
      });
      const cold = await state('version=420');
      expect(cold.read).toBe(421);
      const warm = await state('version=430');
      expect(warm.read).toBe(10);
      const expected = await fullFold(broker, (event) => event.version <= 430);
      expect(warm.body).toEqual({
        streamId: 'wallet-w1',
        version: 430,
        currentVersion: expect.any(Number),
        fromSnapshot: expect.any(Number),
        state: expected.state,
      });
      // As `tradecore audit state` does: no answer beyond the stream, before it, or to both questions.
      const refused = async (query: string) => {
        const response = await api.app.inject({
          method: 'GET',
          url: `/v1/audit/streams/wallet-w1/state?${query}`,
          headers: { authorization: `Bearer ${admin}` },
        });
        return { status: response.statusCode, reason: response.json().reason };
      };
      expect(await refused('version=450')).toEqual({ status: 404, reason: 'VERSION_NOT_FOUND' });
      expect(await refused('at=1999-01-01T00:00:00Z')).toEqual({ status: 404, reason: 'STREAM_NOT_FOUND' });
      expect(await refused('version=1&at=2030-01-01T00:00:00Z')).toEqual({
        status: 400,
        reason: 'VALIDATION_FAILED',
      });
    } finally {
      await api.close();
    }
  });
});
