import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MemoryEventStore } from '../../adapters/memory/event-store.ts';
import { MemoryPriceCache } from '../../adapters/memory/price-cache.ts';
import { bookStreamId } from '../../domain/b3/book-events.ts';
import type { ExecutionReport } from '../../domain/b3/execution-reports.ts';
import type { NewOrderBody } from '../../domain/b3/order-messages.ts';
import type { EventStore } from '../../domain/shared/event-store.ts';
import type { TransportMessage } from '../../domain/shared/transport.ts';
import { b3Schemas } from '../shared/trading-fixtures.ts';
import { EngineService } from './engine-service.ts';
import { FakeClock } from './fake-clock.ts';
import {
  B3_TIME_ZONE,
  closeAfter,
  closeAtOrBefore,
  type SessionBooks,
  SessionClock,
  type SessionSchedule,
} from './session-clock.ts';
import { newOrderMessage } from './testing.ts';

const schedule: SessionSchedule = { close: { hour: 18, minute: 0 }, timeZone: B3_TIME_ZONE };
/** 17:59 in São Paulo (UTC−3): a minute before the close. */
const BEFORE_CLOSE = Date.parse('2025-03-14T20:59:00Z');
const CLOSE = Date.parse('2025-03-14T21:00:00Z');
const DAY = 86_400_000;

describe('session close times', () => {
  it('finds the last and the next close in São Paulo time', () => {
    expect(closeAtOrBefore(BEFORE_CLOSE, schedule)).toBe(CLOSE - DAY);
    expect(closeAfter(BEFORE_CLOSE, schedule)).toBe(CLOSE);
    // At the close itself: it is the last one, and the next is tomorrow's.
    expect(closeAtOrBefore(CLOSE, schedule)).toBe(CLOSE);
    expect(closeAfter(CLOSE, schedule)).toBe(CLOSE + DAY);
    // After midnight UTC, still the 14th in São Paulo.
    expect(closeAtOrBefore(Date.parse('2025-03-15T02:30:00Z'), schedule)).toBe(CLOSE);
  });

  it('follows the zone’s offset, daylight saving included (São Paulo was UTC−2 in the 2018 summer)', () => {
    expect(closeAfter(Date.parse('2018-12-03T12:00:00Z'), schedule)).toBe(Date.parse('2018-12-03T20:00:00Z'));
    expect(
      closeAfter(Date.parse('2025-03-14T12:00:00Z'), { ...schedule, close: { hour: 17, minute: 55 } }),
    ).toBe(Date.parse('2025-03-14T20:55:00Z'));
  });
});

/** Books the clock drives, recording what it asked. */
function recordingBooks(symbols: string[]) {
  const calls: string[] = [];
  /** Books whose last session has ended already: ending it again does nothing. */
  const ended = new Set<string>();
  let failures = 0;
  const books: SessionBooks = {
    symbols: async () => symbols,
    endSession: async (symbol, closedAt) => {
      calls.push(`end ${symbol} ${new Date(closedAt).toISOString()}`);
      return !ended.has(symbol);
    },
    expireOrders: async (symbol, dueAt) => {
      if (failures > 0) {
        failures--;
        throw new Error('store unreachable');
      }
      calls.push(`expire ${symbol} ${dueAt}`);
    },
  };
  return { books, calls, ended, failNext: (times: number) => (failures = times) };
}

describe('the session clock', () => {
  const silent = { info() {}, warn() {}, error() {} };

  function clockOver(symbols: string[], start = BEFORE_CLOSE) {
    const time = new FakeClock(start);
    const recorded = recordingBooks(symbols);
    const clock = new SessionClock({
      books: recorded.books,
      schedule,
      now: time.now,
      timers: time,
      retryMs: 1_000,
      logger: silent,
    });
    return { time, clock, ...recorded };
  }

  it('ends the last session on every book at start, then every book at each close', async () => {
    const { time, clock, calls } = clockOver(['PETR4', 'VALE3']);
    await clock.start();
    expect(calls).toEqual(['end PETR4 2025-03-13T21:00:00.000Z', 'end VALE3 2025-03-13T21:00:00.000Z']);
    expect(clock.nextClose).toBe(CLOSE);

    calls.length = 0;
    await time.advanceTo(CLOSE - 1);
    expect(calls).toEqual([]);
    await time.advanceTo(CLOSE);
    expect(calls).toEqual(['end PETR4 2025-03-14T21:00:00.000Z', 'end VALE3 2025-03-14T21:00:00.000Z']);
    expect(clock.nextClose).toBe(CLOSE + DAY);
    await clock.stop();
  });

  it('says at start whether it ended the last session anywhere, or found it taken on every book', async () => {
    const lines: Array<[Record<string, unknown>, string]> = [];
    const logger = {
      ...silent,
      info: (fields: Record<string, unknown>, message: string) => lines.push([fields, message]),
    };
    for (const endedBefore of [['VALE3'], ['PETR4', 'VALE3']]) {
      const time = new FakeClock(BEFORE_CLOSE);
      const recorded = recordingBooks(['PETR4', 'VALE3']);
      for (const symbol of endedBefore) recorded.ended.add(symbol);
      const clock = new SessionClock({
        books: recorded.books,
        schedule,
        now: time.now,
        timers: time,
        logger,
      });
      await clock.start();
      await clock.stop();
    }
    expect(lines.filter(([fields]) => 'books' in fields)).toEqual([
      [expect.objectContaining({ books: 2, ended: 1, failed: 0 }), 'caught up with the last session close'],
      [
        expect.objectContaining({ books: 2, ended: 0, failed: 0 }),
        'the last session close had been taken on every book already',
      ],
    ]);
  });

  it('fires a book’s GTD timer at its expiry, moves it with the book, and clears it', async () => {
    const { time, clock, calls } = clockOver([]);
    await clock.start();
    clock.watch('PETR4', BEFORE_CLOSE + 2_000);
    clock.watch('PETR4', BEFORE_CLOSE + 1_000);
    clock.watch('VALE3', BEFORE_CLOSE + 5_000);
    clock.watch('VALE3', undefined);
    expect(clock.armedExpiry('PETR4')).toBe(BEFORE_CLOSE + 1_000);
    expect(clock.armedExpiry('VALE3')).toBeUndefined();

    await time.advanceBy(999);
    expect(calls).toEqual([]);
    await time.advanceBy(1);
    expect(calls).toEqual([`expire PETR4 ${BEFORE_CLOSE + 1_000}`]);
    await time.advanceBy(10_000);
    expect(calls).toHaveLength(1);
    await clock.stop();
  });

  it('tries a failed expiry again after a pause', async () => {
    const { time, clock, calls, failNext } = clockOver([]);
    await clock.start();
    failNext(1);
    clock.watch('PETR4', BEFORE_CLOSE + 1_000);
    await time.advanceBy(1_000);
    expect(calls).toEqual([]);
    await time.advanceBy(1_000);
    expect(calls).toEqual([`expire PETR4 ${BEFORE_CLOSE + 1_000}`]);
    await clock.stop();
  });

  it('fires nothing once stopped', async () => {
    const { time, clock, calls } = clockOver(['PETR4']);
    await clock.start();
    clock.watch('PETR4', BEFORE_CLOSE + 1_000);
    calls.length = 0;
    await clock.stop();
    expect(time.armed).toBe(0);
    clock.watch('PETR4', BEFORE_CLOSE + 2_000);
    await time.advanceTo(CLOSE + DAY);
    expect(calls).toEqual([]);
  });
});

/** The engine with its session clock on a fake clock, over an in-memory B3 store. */
async function engineOn(store: EventStore, time: FakeClock) {
  const prices = new MemoryPriceCache();
  // Pinned: never stale, whatever the fake time.
  await prices.set({ symbol: 'PETR4', price: 32_50, at: 0, source: 'admin', pinned: true });
  await prices.set({ symbol: 'ITUB4', price: 32_50, at: 0, source: 'admin', pinned: true });
  const sent: TransportMessage<ExecutionReport>[] = [];
  const engine = new EngineService({
    store,
    transport: {
      async publish(_channel, message) {
        sent.push(message as TransportMessage<ExecutionReport>);
      },
      async consume() {
        return { stop: async () => {} };
      },
    },
    marketPrices: prices,
    priceMaxAgeMs: 60_000,
    priceBandBps: 1_000,
    now: time.now,
    sessionClock: { schedule, timers: time },
  });
  await engine.start();
  const expired = () =>
    sent.filter((message) => message.body.type === 'EXPIRED').map((message) => message.body);
  return { engine, sent, expired };
}

const newOrder = (body: Partial<NewOrderBody> = {}) => newOrderMessage({ price: 32_00, ...body });

const bookEvents = async (store: EventStore) =>
  (await store.readStream(bookStreamId('PETR4'))).map((event) => event.type);

describe('the engine on its session clock', () => {
  it('expires a GTD order at its time with nothing else happening, and appends nothing when nothing is due', async () => {
    const store = new MemoryEventStore({ schemas: b3Schemas() });
    const time = new FakeClock(BEFORE_CLOSE - 60_000);
    const { engine, expired } = await engineOn(store, time);
    const gtd = newOrder({ timeInForce: 'GTD', expiresAt: time.now() + 1_000 });
    const canceledEarly = newOrder({ timeInForce: 'GTD', expiresAt: time.now() + 500 });
    await engine.handle(gtd);
    await engine.handle(canceledEarly);
    await engine.handle({
      ...canceledEarly,
      messageId: randomUUID(),
      type: 'CancelOrder',
      body: { orderId: canceledEarly.body.orderId, accountId: 'acc-1', symbol: 'PETR4' },
    });
    const version = await store.streamVersion(bookStreamId('PETR4'));

    // The canceled order's expiry still arms the timer (a lower bound): it fires and books nothing.
    await time.advanceBy(999);
    expect(await store.streamVersion(bookStreamId('PETR4'))).toBe(version);
    expect(expired()).toEqual([]);

    await time.advanceBy(1);
    expect(expired()).toEqual([
      expect.objectContaining({ orderId: (gtd.body as NewOrderBody).orderId, reason: 'GOOD_TILL_DATE' }),
    ]);
    expect((await engine.book('PETR4')).order((gtd.body as NewOrderBody).orderId)).toBeUndefined();
    expect(engine.clock?.armedExpiry('PETR4')).toBeUndefined();
    await engine.stop();
  });

  it('expires DAY orders at the session close and keeps GTC ones', async () => {
    const store = new MemoryEventStore({ schemas: b3Schemas() });
    const time = new FakeClock(BEFORE_CLOSE);
    const { engine, expired } = await engineOn(store, time);
    const day = newOrder();
    const gtc = newOrder({ timeInForce: 'GTC', price: 31_90 });
    await engine.handle(day);
    await engine.handle(gtc);

    await time.advanceTo(CLOSE);
    expect(expired()).toEqual([
      expect.objectContaining({ orderId: (day.body as NewOrderBody).orderId, reason: 'END_OF_DAY' }),
    ]);
    expect((await engine.book('PETR4')).order((gtc.body as NewOrderBody).orderId)).toBeDefined();
    expect((await bookEvents(store)).slice(-2)).toEqual(['OrderExpired', 'SessionEnded']);
    await engine.stop();
  });

  it('on start, ends a session that closed while it was down, GTD expiries included', async () => {
    const store = new MemoryEventStore({ schemas: b3Schemas() });
    const time = new FakeClock(BEFORE_CLOSE);
    const first = await engineOn(store, time);
    const day = newOrder();
    const gtd = newOrder({ timeInForce: 'GTD', expiresAt: BEFORE_CLOSE + 30_000, price: 31_90 });
    await first.engine.handle(day);
    await first.engine.handle(gtd);
    await first.engine.stop();

    // Down through the close; a new instance starts an hour later, and nothing arrives on PETR4.
    await time.advanceTo(CLOSE + 3_600_000);
    expect(first.expired()).toEqual([]);
    const second = await engineOn(store, time);
    expect(second.expired().map((report) => [report.orderId, report.reason])).toEqual(
      expect.arrayContaining([
        [(day.body as NewOrderBody).orderId, 'END_OF_DAY'],
        [(gtd.body as NewOrderBody).orderId, 'GOOD_TILL_DATE'],
      ]),
    );
    expect(second.expired()).toHaveLength(2);

    // A third start, the same evening: the session already ended, nothing more is appended.
    await second.engine.stop();
    const version = await store.streamVersion(bookStreamId('PETR4'));
    const third = await engineOn(store, time);
    expect(await store.streamVersion(bookStreamId('PETR4'))).toBe(version);
    expect(third.expired()).toEqual([]);
    await third.engine.stop();
  });

  it('on start, ends nothing on a book opened after the last close, and still ends a book opened before it', async () => {
    const store = new MemoryEventStore({ schemas: b3Schemas() });
    const time = new FakeClock(BEFORE_CLOSE);
    const first = await engineOn(store, time);
    const beforeClose = newOrder();
    await first.engine.handle(beforeClose);
    await first.engine.stop();

    // Down through the close; back that night, when a new book (ITUB4) opens with a DAY order.
    await time.advanceTo(CLOSE + 2 * 3_600_000);
    const second = await engineOn(store, time);
    expect(second.expired().map((report) => [report.orderId, report.reason])).toEqual([
      [(beforeClose.body as NewOrderBody).orderId, 'END_OF_DAY'],
    ]);
    const afterClose = newOrder({ symbol: 'ITUB4' });
    await second.engine.handle(afterClose);
    await second.engine.stop();
    const itub = bookStreamId('ITUB4');
    const version = await store.streamVersion(itub);
    expect(version).toBeGreaterThan(-1);

    // Restarted the same night: the book opened after the close has no session before it to end.
    await time.advanceBy(60_000);
    const third = await engineOn(store, time);
    expect(await store.streamVersion(itub)).toBe(version);
    expect((await store.readStream(itub)).map((event) => event.type)).not.toContain('SessionEnded');
    expect(third.expired()).toEqual([]);
    expect((await third.engine.book('ITUB4')).order((afterClose.body as NewOrderBody).orderId)).toBeDefined();
    await third.engine.stop();
  });

  it('applies a close once when two engine instances run their clocks on the same books', async () => {
    const store = new MemoryEventStore({ schemas: b3Schemas() });
    const time = new FakeClock(BEFORE_CLOSE);
    const one = await engineOn(store, time);
    const two = await engineOn(store, time);
    await one.engine.handle(newOrder());
    await one.engine.handle(newOrder({ timeInForce: 'GTD', expiresAt: BEFORE_CLOSE + 1_000 }));
    // The second instance loads the book as it stands, GTD timer included.
    await two.engine.book('PETR4');
    expect(two.engine.clock?.armedExpiry('PETR4')).toBe(BEFORE_CLOSE + 1_000);

    // At the close, and through the retries of the instance whose book was behind the store.
    await time.advanceTo(CLOSE + 10_000);
    const events = await bookEvents(store);
    expect(events.filter((type) => type === 'OrderExpired')).toHaveLength(2);
    expect(events.filter((type) => type === 'SessionEnded')).toHaveLength(1);
    // Whichever instance booked an expiry, the reports carry the same message ids: the broker
    // takes one of each.
    const reportIds = new Set(
      [...one.sent, ...two.sent].filter((m) => m.body.type === 'EXPIRED').map((m) => m.messageId),
    );
    expect(reportIds.size).toBe(2);
    await one.engine.stop();
    await two.engine.stop();
  });
});
