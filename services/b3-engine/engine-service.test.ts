import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MemoryEventStore } from '../../adapters/memory/event-store.ts';
import { MemoryPriceCache } from '../../adapters/memory/price-cache.ts';
import { MemoryTransport } from '../../adapters/memory/transport.ts';
import { openPgliteEventStore } from '../../adapters/pglite/event-store.ts';
import { newEvent } from '../../adapters/shared/event-store-contract.ts';
import { bookStreamId } from '../../domain/b3/book-events.ts';
import type { ExecutionReport } from '../../domain/b3/execution-reports.ts';
import { quoteStreamId } from '../../domain/b3/quote-events.ts';
import type { EventStore } from '../../domain/shared/event-store.ts';
import type {
  TransportConsumer,
  TransportMessage,
  TransportPublisher,
} from '../../domain/shared/transport.ts';
import { b3Schemas, eventually } from '../shared/trading-fixtures.ts';
import { ENGINE_SNAPSHOT_SCHEMA_VERSION, EngineService, referenceSymbol } from './engine-service.ts';
import { haltMessage, newOrderMessage, resumeMessage } from './testing.ts';

const NOW = Date.parse('2025-03-14T13:00:00Z');

/** Records what the engine publishes; consuming is driven by the test through `engine.handle`. */
function recordingTransport(): TransportPublisher &
  TransportConsumer & { sent: TransportMessage<ExecutionReport>[] } {
  const sent: TransportMessage<ExecutionReport>[] = [];
  return {
    sent,
    async publish(_channel, message) {
      sent.push(message as TransportMessage<ExecutionReport>);
    },
    async consume() {
      return { stop: async () => {} };
    },
  };
}

const newOrder = newOrderMessage;

async function setup(
  options: {
    price?: { price: number; at: number; pinned?: boolean };
    snapshotEvery?: number;
    store?: EventStore;
  } = {},
) {
  const store = options.store ?? new MemoryEventStore({ schemas: b3Schemas() });
  const prices = new MemoryPriceCache();
  if (options.price) await prices.set({ symbol: 'PETR4', source: 'test', pinned: false, ...options.price });
  const transport = recordingTransport();
  const make = (over: TransportPublisher & TransportConsumer = transport) =>
    new EngineService({
      store,
      transport: over,
      marketPrices: prices,
      priceMaxAgeMs: 60_000,
      priceBandBps: 1_000,
      now: () => NOW,
      snapshotEvery: options.snapshotEvery,
    });
  return { store, prices, transport, engine: make(), make };
}

describe('B3 engine service', () => {
  it('rejects an order when the reference price is missing or stale, and never crashes', async () => {
    const missing = await setup();
    await missing.engine.handle(newOrder());
    expect(missing.transport.sent.map((message) => [message.body.type, message.body.reason])).toEqual([
      ['REJECTED', 'REFERENCE_PRICE_MISSING'],
    ]);

    const stale = await setup({ price: { price: 32_50, at: NOW - 61_000 } });
    await stale.engine.handle(newOrder());
    expect(stale.transport.sent[0]!.body).toMatchObject({
      type: 'REJECTED',
      reason: 'REFERENCE_PRICE_STALE',
    });

    // An admin's pinned price never goes stale.
    const pinned = await setup({ price: { price: 32_50, at: NOW - 3_600_000, pinned: true } });
    await pinned.engine.handle(newOrder());
    expect(pinned.transport.sent[0]!.body).toMatchObject({ type: 'ACK' });
  });

  it('takes the last recorded quote when the market cache has none, and puts it back', async () => {
    const { store, prices, transport, engine } = await setup();
    const quote = { symbol: 'PETR4', bid: null, ask: null, bidSize: 0, askSize: 0, volume: 0 };
    await store.append(quoteStreamId('PETR4'), [
      newEvent('QuoteReceived', { ...quote, last: 32_50, source: 'admin', at: NOW - 3_600_000 }),
    ]);
    await engine.handle(newOrder());
    expect(transport.sent[0]!.body).toMatchObject({ type: 'ACK' });
    expect(await prices.get('PETR4')).toMatchObject({ price: 32_50, pinned: true });
  });

  it('opens the book at the cached reference price and follows it when it moves', async () => {
    const { store, prices, engine } = await setup({ price: { price: 32_50, at: NOW } });
    await engine.handle(newOrder());
    await prices.set({ symbol: 'PETR4', price: 33_00, at: NOW + 1, source: 'test', pinned: false });
    await engine.handle(newOrder({ price: 33_00 }));
    const types = (await store.readStream(bookStreamId('PETR4'))).map((event) => event.type);
    expect(types).toEqual([
      'BookOpened',
      'OrderAccepted',
      'OrderRested',
      'ReferencePriceSet',
      'OrderAccepted',
      'OrderRested',
    ]);
  });

  it('books a redelivered NewOrder once and re-sends the same reports', async () => {
    const { store, transport, engine } = await setup({ price: { price: 32_50, at: NOW } });
    await engine.handle(newOrder({ orderId: 'resting', side: 'SELL', accountId: 'seller' }));
    const incoming = newOrder({ orderId: 'incoming' });
    await engine.handle(incoming);
    const first = transport.sent.map((message) => message.messageId);
    await engine.handle(incoming);
    // Same order id under another message id (a broker that lost its own dedupe): still once.
    await engine.handle(newOrder({ orderId: 'incoming' }));

    const book = await store.readStream(bookStreamId('PETR4'));
    expect(book.filter((event) => event.type === 'OrdersMatched')).toHaveLength(1);
    expect(book.filter((event) => event.type === 'OrderAccepted')).toHaveLength(2);
    const resent = transport.sent.slice(first.length).map((message) => message.messageId);
    // The resting sell had one report (its ACK); the incoming buy its ACK and two fills.
    const incomingReports = first.slice(1);
    expect(incomingReports).toHaveLength(3);
    expect(resent).toEqual([...incomingReports, ...incomingReports]);
  });

  it('recovers its books from a snapshot and the events after it, dedupe index included', async () => {
    const { store, transport, engine, make } = await setup({
      price: { price: 32_50, at: NOW },
      snapshotEvery: 3,
    });
    const messages = [30_00, 30_10, 30_20, 30_30, 30_40].map((price) => newOrder({ price }));
    for (const message of messages) await engine.handle(message);
    expect(
      await store.loadSnapshot(bookStreamId('PETR4'), { schemaVersion: ENGINE_SNAPSHOT_SCHEMA_VERSION }),
    ).toBeDefined();

    const restarted = make();
    expect((await restarted.book('PETR4')).depth()).toEqual((await engine.book('PETR4')).depth());
    const version = await store.streamVersion(bookStreamId('PETR4'));
    const sent = transport.sent.length;
    await restarted.handle(messages[0]!);
    await restarted.handle(messages[4]!);
    expect(await store.streamVersion(bookStreamId('PETR4'))).toBe(version);
    expect(transport.sent.length).toBeGreaterThan(sent);
  });

  it('serializes one symbol’s messages, whatever arrives at once', async () => {
    const { store, engine } = await setup({ price: { price: 32_50, at: NOW } });
    await Promise.all(
      Array.from({ length: 20 }, (_, index) => engine.handle(newOrder({ price: 31_00 + index }))),
    );
    const book = await store.readStream(bookStreamId('PETR4'));
    expect(book.map((event) => (event.data as { sequence: number }).sequence)).toEqual(
      book.map((_, index) => index + 1),
    );
    expect((await engine.book('PETR4')).size).toBe(20);
  });

  it('books what queued during an append with the next one, the same as one at a time', async () => {
    const burst = [30_00, 33_00, 30_50, 32_00, 31_00, 34_00].map((price, index) =>
      newOrder({ price, side: index % 2 ? 'SELL' : 'BUY', accountId: `acc-${index}` }),
    );
    const oneByOne = await setup({ price: { price: 32_50, at: NOW } });
    for (const message of burst) await oneByOne.engine.handle(message);

    const together = await setup({ price: { price: 32_50, at: NOW } });
    const append = together.store.append.bind(together.store);
    let appends = 0;
    together.store.append = async (...args: Parameters<typeof append>) => {
      appends += 1;
      await new Promise((resolve) => setTimeout(resolve, 5));
      return append(...args);
    };
    // The first message again inside the burst: booked once.
    await Promise.all([...burst, burst[0]!].map((message) => together.engine.handle(message)));

    const books = await Promise.all(
      [oneByOne, together].map(async ({ store }) =>
        (await store.readStream(bookStreamId('PETR4'))).filter((event) => event.type !== 'TradeExecuted'),
      ),
    );
    expect(books[1]!.map((event) => [event.type, event.data])).toEqual(
      books[0]!.map((event) => [event.type, event.data]),
    );
    expect((await together.engine.book('PETR4')).depth()).toEqual(
      (await oneByOne.engine.book('PETR4')).depth(),
    );
    const bookAppends = appends - books[1]!.filter((event) => event.type === 'OrdersMatched').length;
    expect(bookAppends).toBeLessThan(burst.length);
    // Every report the one-by-one engine sent, in the same order, then the duplicate's again.
    const ids = (sent: TransportMessage<ExecutionReport>[]) => sent.map((message) => message.messageId);
    expect(ids(together.transport.sent).slice(0, oneByOne.transport.sent.length)).toEqual(
      ids(oneByOne.transport.sent),
    );
  });

  it('runs session commands once per request id: end of day expires the DAY orders', async () => {
    const { store, transport, engine } = await setup({ price: { price: 32_50, at: NOW } });
    await engine.handle(newOrder({ orderId: 'day-order' }));
    await engine.handle(newOrder({ orderId: 'gtc-order', timeInForce: 'GTC' }));
    const requestId = randomUUID();
    await engine.session('PETR4', 'EndOfDay', requestId);
    await engine.session('PETR4', 'EndOfDay', requestId);
    const book = await store.readStream(bookStreamId('PETR4'));
    expect(book.filter((event) => event.type === 'SessionEnded')).toHaveLength(1);
    const expired = transport.sent.filter((message) => message.body.type === 'EXPIRED');
    expect(expired.map((message) => message.body.orderId)).toEqual(['day-order', 'day-order']);
    expect(new Set(expired.map((message) => message.messageId)).size).toBe(1);
    expect((await engine.book('PETR4')).order('gtc-order')).toBeDefined();
  });

  it('logs each request it refuses with its reason and correlation id: a cancel of an order it does not hold, an order outside the band', async () => {
    const lines: Array<[Record<string, unknown>, string]> = [];
    const store = new MemoryEventStore({ schemas: b3Schemas() });
    const prices = new MemoryPriceCache();
    await prices.set({ symbol: 'PETR4', source: 'test', pinned: false, price: 32_50, at: NOW });
    const engine = new EngineService({
      store,
      transport: recordingTransport(),
      marketPrices: prices,
      priceMaxAgeMs: 60_000,
      priceBandBps: 1_000,
      now: () => NOW,
      logger: {
        info: (fields, message) => lines.push([fields as Record<string, unknown>, message]),
        warn() {},
        error() {},
      },
    });
    const cancel = {
      ...newOrder(),
      type: 'CancelOrder' as const,
      body: { orderId: 'nowhere', accountId: 'acc-1', symbol: 'PETR4' },
    };
    await engine.handle(cancel);
    const outside = newOrder({ orderId: 'too-dear', price: 40_00 });
    await engine.handle(outside);
    await engine.handle(newOrder({ orderId: 'fine' }));
    expect(lines.filter(([, message]) => message === 'request refused')).toEqual([
      [
        {
          symbol: 'PETR4',
          type: 'CancelOrder',
          orderId: 'nowhere',
          reason: 'UNKNOWN_ORDER',
          correlationId: cancel.correlationId,
        },
        'request refused',
      ],
      [
        {
          symbol: 'PETR4',
          type: 'NewOrder',
          orderId: 'too-dear',
          reason: 'PRICE_BAND',
          correlationId: outside.correlationId,
        },
        'request refused',
      ],
    ]);
  });

  it('waits out an event-store outage longer than its attempts: the order is booked once the store is back, and nothing is dead-lettered', async () => {
    class OutageStore extends MemoryEventStore {
      failures = 0;
      override async append(...args: Parameters<MemoryEventStore['append']>) {
        if (this.failures > 0) {
          this.failures--;
          throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
        }
        return super.append(...args);
      }
    }
    const store = new OutageStore({ schemas: b3Schemas() });
    const prices = new MemoryPriceCache();
    await prices.set({ symbol: 'PETR4', source: 'test', pinned: false, price: 32_50, at: NOW });
    const transport = new MemoryTransport();
    const engine = new EngineService({
      store,
      transport,
      marketPrices: prices,
      priceMaxAgeMs: 60_000,
      priceBandBps: 1_000,
      now: () => NOW,
      maxAttempts: 2,
      retryDelaysMs: [10],
    });
    await engine.start();
    try {
      // Down for five attempts where two are allowed.
      store.failures = 5;
      void transport.publish('broker-to-b3', newOrder({ orderId: 'through-the-outage' }));
      await eventually(async () =>
        (await store.readStream(bookStreamId('PETR4'))).some(
          (event) =>
            event.type === 'OrderAccepted' &&
            (event.data as { orderId: string }).orderId === 'through-the-outage',
        )
          ? true
          : undefined,
      );
      expect(store.failures).toBe(0);
      expect(await transport.deadLetters('broker-to-b3')).toEqual([]);
    } finally {
      await engine.stop();
      await transport.close();
    }
  });

  it("halts a book on the broker's HaltTrading: new orders refused, cancels taken, nothing trades, until resumed", async () => {
    const { store, transport, engine, make } = await setup({ price: { price: 32_50, at: NOW } });
    await engine.handle(newOrder({ orderId: 'resting-sell', side: 'SELL', accountId: 'seller' }));
    await engine.handle(newOrder({ orderId: 'resting-buy', price: 31_00 }));
    const halt = haltMessage('PETR4', 3, 'material fact pending');
    await engine.handle(halt);
    await engine.handle(halt);
    const reports = () => transport.sent.map((message) => message.body);
    const sentBefore = transport.sent.length;

    // An order already on its way when the halt came: refused, and nothing trades.
    await engine.handle(newOrder({ orderId: 'in-flight' }));
    await engine.handle({
      ...newOrder(),
      type: 'CancelOrder',
      body: { orderId: 'resting-buy', accountId: 'acc-1', symbol: 'PETR4' },
    });
    expect(reports().slice(sentBefore)).toMatchObject([
      { type: 'REJECTED', orderId: 'in-flight', reason: 'INSTRUMENT_HALTED' },
      { type: 'CANCELED', orderId: 'resting-buy', reason: 'CANCELED_BY_TRADER' },
    ]);
    const halted = await engine.book('PETR4');
    expect(halted.bookStatus).toBe('HALTED');
    expect(halted.depth().asks).toEqual([{ price: 32_50, quantity: 100, orders: 1 }]);
    // Recovered from the store, it is still halted.
    expect((await make().book('PETR4')).bookStatus).toBe('HALTED');

    await engine.handle(resumeMessage('PETR4', 4));
    await engine.handle(newOrder({ orderId: 'after-resume' }));
    expect(reports().at(-1)).toMatchObject({ type: 'FILL', orderId: 'after-resume', price: 32_50 });

    const types = (await store.readStream(bookStreamId('PETR4'))).map((event) => event.type);
    expect(types.filter((type) => type === 'TradingHalted' || type === 'TradingResumed')).toEqual([
      'TradingHalted',
      'TradingResumed',
    ]);
    const haltEvent = (await store.readStream(bookStreamId('PETR4'))).find(
      (event) => event.type === 'TradingHalted',
    );
    expect(haltEvent?.data).toMatchObject({ reason: 'material fact pending', catalogueVersion: 3 });
    expect(types.filter((type) => type === 'OrdersMatched')).toHaveLength(1);
  });

  it('halts a book it never opened, and refuses its first order as halted even with no reference price', async () => {
    const { store, transport, engine } = await setup();
    await engine.handle(haltMessage('PETR4F', 7));
    await engine.handle(newOrder({ symbol: 'PETR4F', quantity: 10 }));
    expect(transport.sent.map((message) => message.body)).toMatchObject([
      { type: 'REJECTED', reason: 'INSTRUMENT_HALTED' },
    ]);
    expect((await store.readStream(bookStreamId('PETR4F'))).map((event) => event.type)).toEqual([
      'TradingHalted',
      'OrderRejected',
    ]);
    await engine.handle(resumeMessage('PETR4F', 8));
    expect((await engine.book('PETR4F')).bookStatus).toBe('NOT_OPEN');
  });

  it("ignores a halt the catalogue's later resume overtook (a retried message arriving last)", async () => {
    const { engine } = await setup({ price: { price: 32_50, at: NOW } });
    await engine.handle(newOrder());
    await engine.handle(resumeMessage('PETR4', 5));
    await engine.handle(haltMessage('PETR4', 4));
    expect((await engine.book('PETR4')).bookStatus).toBe('OPEN');
  });

  it('re-sends on start the reports of a session command that died before they went out, past a snapshot too', async () => {
    const { store, transport, make } = await setup({ price: { price: 32_50, at: NOW }, snapshotEvery: 1 });
    // The first engine dies with its expiries unsent: their publishes never come back.
    const unsent: TransportMessage<ExecutionReport>[] = [];
    const dying = make({
      async publish(_channel, message) {
        const report = message as TransportMessage<ExecutionReport>;
        if (report.body.type === 'EXPIRED') {
          unsent.push(report);
          await new Promise(() => {});
        }
      },
      async consume() {
        return { stop: async () => {} };
      },
    });
    await dying.handle(newOrder({ orderId: 'day-order' }));
    void dying.session('PETR4', 'EndOfDay', randomUUID());
    await eventually(async () => unsent.length === 1);
    // Snapshots are taken after every append here: one covers the expiry, and keeps it unconfirmed.
    const snapshot = await store.loadSnapshot(bookStreamId('PETR4'), {
      schemaVersion: ENGINE_SNAPSHOT_SCHEMA_VERSION,
    });
    expect(snapshot?.version).toBe(await store.streamVersion(bookStreamId('PETR4')));
    expect((snapshot!.state as { unreported: unknown[] }).unreported).toHaveLength(1);

    const restarted = make();
    await restarted.start();
    await restarted.stop();
    // The expiry, under the message id it had: the broker recognises it if it had it after all.
    expect(
      transport.sent.map((message) => [message.messageId, message.body.type, message.body.orderId]),
    ).toEqual([[unsent[0]!.messageId, 'EXPIRED', 'day-order']]);
  });

  it("re-sends on start a booked order's reports that died unsent, before the reports of anything booked after", async () => {
    const { transport, make } = await setup({ price: { price: 32_50, at: NOW }, snapshotEvery: 1 });
    // A buy rests (its ACK goes out); a sell of 200 trades 100 with it and rests the rest, and the
    // engine dies before those reports go out: RabbitMQ will redeliver the sell, but later.
    const unsent: string[] = [];
    const dying = make({
      async publish(_channel, message) {
        const report = (message as TransportMessage<ExecutionReport>).body;
        if (report.orderId === 'buy' && report.type === 'ACK') return transport.publish(_channel, message);
        unsent.push(`${report.type} ${report.orderId}`);
        await new Promise(() => {});
      },
      async consume() {
        return { stop: async () => {} };
      },
    });
    await dying.handle(newOrder({ orderId: 'buy', accountId: 'buyer' }));
    void dying.handle(newOrder({ orderId: 'sell', accountId: 'seller', side: 'SELL', quantity: 200 }));
    await eventually(async () => unsent.length > 0);

    const restarted = make();
    await restarted.start();
    // The seller cancels the rest before the sell's redelivery arrives.
    await restarted.handle({
      ...newOrder(),
      type: 'CancelOrder',
      body: { orderId: 'sell', accountId: 'seller', symbol: 'PETR4' },
    });
    await restarted.stop();
    const sent = transport.sent.map(({ body }) => `${body.type} ${body.orderId} ${body.quantity}`);
    // The broker hears of the trade before the cancel: it settles both sides, then releases the rest.
    expect(sent).toEqual([
      'ACK buy 100',
      'ACK sell 200',
      'FILL buy 100',
      'PARTIAL_FILL sell 100',
      'CANCELED sell 100',
    ]);
  });

  it("records a sweep's trades in the order they happened, past trade 99 to 100 (a real store's group commit)", async () => {
    const store = await openPgliteEventStore({ schema: 'b3', schemas: b3Schemas() });
    const { engine } = await setup({ price: { price: 32_50, at: NOW, pinned: true }, store });
    // Forty asks, one cent apart, from forty sellers; then one buy takes them all.
    for (let level = 0; level < 40; level++)
      await engine.handle(
        newOrder({ accountId: `seller-${level}`, side: 'SELL', quantity: 100, price: 32_00 + level }),
      );
    await engine.handle(newOrder({ accountId: 'sweeper', side: 'BUY', quantity: 4_000, price: 32_50 }));
    const trades = await eventually(async () => {
      const events = (await store.readAll()).filter((event) => event.type === 'TradeExecuted');
      return events.length === 40 ? events : undefined;
    });
    // The tape's order is the store's: each trade at the next price up, and its number after the last.
    expect(trades.map((event) => (event.data as { price: number }).price)).toEqual(
      Array.from({ length: 40 }, (_, level) => 32_00 + level),
    );
    const numbers = trades.map((event) =>
      Number((event.data as { tradeId: string }).tradeId.split('-').at(-1)),
    );
    expect(numbers).toEqual([...numbers].sort((a, b) => a - b));
    // Their streams (trade-PETR4-99, trade-PETR4-100, …) do not sort as their numbers do.
    expect(Math.min(...numbers)).toBeLessThan(100);
    expect(Math.max(...numbers)).toBeGreaterThanOrEqual(100);
    await store.close();
  });

  it('prices the fractional market against its standard ticker', () => {
    expect(referenceSymbol('PETR4F')).toBe('PETR4');
    expect(referenceSymbol('BPAC11F')).toBe('BPAC11');
    expect(referenceSymbol('PETR4')).toBe('PETR4');
  });
});
