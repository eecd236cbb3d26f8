import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryPriceCache } from '../../adapters/memory/price-cache.ts';
import { MemoryTransport } from '../../adapters/memory/transport.ts';
import { openPgliteEventStore } from '../../adapters/pglite/event-store.ts';
import { bookStreamId } from '../../domain/b3/book-events.ts';
import type { NewOrderBody, ResumeTradingBody } from '../../domain/b3/order-messages.ts';
import type { EventStore } from '../../domain/shared/event-store.ts';
import type { Transport } from '../../domain/shared/transport.ts';
import { MemoryRelayCheckpoints } from '../../projections/relay.ts';
import { loadConfig } from '../shared/config.ts';
import { startTradingServices, type TradingServices } from '../shared/trading.ts';
import {
  b3Schemas,
  brokerSchemas,
  deposit,
  eventually,
  haltInstrument,
  listInstrument,
  ordersReach,
  placeOrder,
  requestCancel,
  resumeInstrument,
  transferSharesIn,
  walletOf,
} from '../shared/trading-fixtures.ts';
import { OrderProcess } from './order-process.ts';

/**
 * The in-process transport of embedded mode, able to hold a message on the wire: a NewOrder (by
 * order id) that has left the broker (accepted, its cash reserved) and not reached B3 yet, or a
 * ResumeTrading (by `resume:{symbol}`).
 */
class WireWithHolds implements Transport {
  private readonly holding = new Set<string>();
  private readonly held = new Map<string, () => void>();
  constructor(private readonly inner: MemoryTransport) {}

  hold(orderId: string): void {
    this.holding.add(orderId);
  }

  isHeld(orderId: string): boolean {
    return this.held.has(orderId);
  }

  release(orderId: string): void {
    this.holding.delete(orderId);
    this.held.get(orderId)?.();
    this.held.delete(orderId);
  }

  publish: Transport['publish'] = async (channel, message, options) => {
    const key =
      message.type === 'NewOrder'
        ? (message.body as NewOrderBody).orderId
        : message.type === 'ResumeTrading'
          ? `resume:${(message.body as ResumeTradingBody).symbol}`
          : undefined;
    if (key !== undefined && this.holding.has(key))
      await new Promise<void>((resolve) => this.held.set(key, resolve));
    return this.inner.publish(channel, message, options);
  };
  consume: Transport['consume'] = (channel, handler, options) =>
    this.inner.consume(channel, handler, options);
  deadLetters: Transport['deadLetters'] = (channel, options) => this.inner.deadLetters(channel, options);
  settled: NonNullable<Transport['settled']> = (channel, timeoutMs) =>
    this.inner.settled?.(channel, timeoutMs) ?? Promise.resolve(true);
  close = () => this.inner.close();
}

/** An admin's halt and resume reaching the B3 books, embedded (PGlite, the in-process transport). */
describe('an admin halt at B3, in process', () => {
  let broker: EventStore;
  let b3: EventStore;
  let wire: WireWithHolds;
  let services: TradingServices | undefined;

  const start = async () => {
    services = await startTradingServices({
      config: loadConfig({ QUOTES_ENABLED: 'false', QUOTE_SOURCE: 'off' }),
      eventStores: { broker, b3 },
      transport: wire,
      retryDelaysMs: [20, 50],
    });
    return services;
  };
  const bookStatus = async (symbol: string) => (await services!.engine.book(symbol)).bookStatus;
  const bookEvents = async (symbol: string) => (await b3.readStream(bookStreamId(symbol))).map((e) => e.type);
  const haltsAndResumes = async (symbol: string) =>
    (await bookEvents(symbol)).filter((type) => type === 'TradingHalted' || type === 'TradingResumed');

  beforeAll(async () => {
    broker = await openPgliteEventStore({ schema: 'broker', schemas: brokerSchemas() });
    b3 = await openPgliteEventStore({ schema: 'b3', schemas: b3Schemas() });
    wire = new WireWithHolds(new MemoryTransport({ confirm: 'handled' }));
    await start();
    await services!.marketData.setReferencePrice('PETR4', 32_50);
    await listInstrument(broker, 'PETR4', 32_50);
    await deposit(broker, 'buyer', 2_000_000);
    await transferSharesIn(broker, 'seller', 'PETR4', 300, 30_00);
  });

  afterAll(async () => {
    await services?.stop();
    await wire?.close();
    await broker?.close();
    await b3?.close();
  });

  it('halts both books: the resting order stays, an order in flight is rejected INSTRUMENT_HALTED, a cancel goes through, nothing trades; resumed, it trades', async () => {
    const sell = await placeOrder(broker, {
      accountId: 'seller',
      symbol: 'PETR4',
      side: 'SELL',
      quantity: 100,
      price: 32_50,
    });
    const lowBuy = await placeOrder(broker, {
      accountId: 'buyer',
      symbol: 'PETR4',
      side: 'BUY',
      quantity: 100,
      price: 31_00,
    });
    await ordersReach(broker, [sell, lowBuy], ['NEW']);
    await eventually(async () => (await services!.engine.book('PETR4')).size === 2);

    // A crossing buy the broker accepted, held on its way to B3 while the admin halts.
    const inFlight = crypto.randomUUID();
    wire.hold(inFlight);
    await placeOrder(broker, {
      orderId: inFlight,
      accountId: 'buyer',
      symbol: 'PETR4',
      side: 'BUY',
      quantity: 100,
      price: 32_50,
    });
    await eventually(async () => wire.isHeld(inFlight));
    expect((await walletOf(broker, 'buyer')).cash.reserved).toBe(310_000 + 325_000);

    await haltInstrument(broker, 'PETR4', 'material fact pending');
    await eventually(
      async () => (await bookStatus('PETR4')) === 'HALTED' && (await bookStatus('PETR4F')) === 'HALTED',
    );
    // As the engine stored it (its book in memory changes just before the append).
    for (const symbol of ['PETR4', 'PETR4F']) {
      const halt = await eventually(async () =>
        (await b3.readStream(bookStreamId(symbol))).find((event) => event.type === 'TradingHalted'),
      );
      expect(halt.data, symbol).toMatchObject({ reason: 'material fact pending' });
    }

    wire.release(inFlight);
    const [rejected] = await ordersReach(broker, [inFlight], ['REJECTED']);
    expect(rejected).toMatchObject({ rejectReason: 'INSTRUMENT_HALTED', filledQuantity: 0 });
    await eventually(async () => (await walletOf(broker, 'buyer')).cash.reserved === 310_000);

    await requestCancel(broker, lowBuy, 'buyer');
    await ordersReach(broker, [lowBuy], ['CANCELED']);
    await eventually(async () => (await walletOf(broker, 'buyer')).cash.reserved === 0);

    expect(await bookEvents('PETR4')).not.toContain('OrdersMatched');
    const halted = await services!.engine.book('PETR4');
    expect(halted.depth().asks).toEqual([{ price: 32_50, quantity: 100, orders: 1 }]);
    expect(halted.depth().bids).toEqual([]);

    await resumeInstrument(broker, 'PETR4');
    await eventually(async () => (await bookStatus('PETR4')) === 'OPEN');
    // The fractional book was halted before its first order: resumed, it is still to be opened.
    await eventually(async () => (await bookStatus('PETR4F')) === 'NOT_OPEN');
    const buy = await placeOrder(broker, {
      accountId: 'buyer',
      symbol: 'PETR4',
      side: 'BUY',
      quantity: 100,
      price: 32_50,
    });
    const [bought, sold] = await ordersReach(broker, [buy, sell], ['FILLED']);
    expect(bought).toMatchObject({ filledQuantity: 100, averagePrice: 32_50 });
    expect(sold).toMatchObject({ filledQuantity: 100 });
  });

  it('sends an order placed after a resume only once the resume has reached B3', async () => {
    await haltInstrument(broker, 'PETR4', 'auction');
    await eventually(async () => (await bookStatus('PETR4')) === 'HALTED');
    await transferSharesIn(broker, 'late-seller', 'PETR4', 100, 30_00);
    wire.hold('resume:PETR4');
    await resumeInstrument(broker, 'PETR4');
    await eventually(async () => wire.isHeld('resume:PETR4'));
    const sell = await placeOrder(broker, {
      accountId: 'late-seller',
      symbol: 'PETR4',
      side: 'SELL',
      quantity: 100,
      price: 33_00,
    });
    await ordersReach(broker, [sell], ['NEW']);
    // Accepted by the broker, it waits behind the resume instead of meeting a book still halted.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await services!.engine.book('PETR4')).order(sell)).toBeUndefined();
    wire.release('resume:PETR4');
    await eventually(async () => (await services!.engine.book('PETR4')).order(sell));
    expect(await bookStatus('PETR4')).toBe('OPEN');
    await requestCancel(broker, sell, 'late-seller');
    await ordersReach(broker, [sell], ['CANCELED']);
  });

  it('applies a halt recorded while the engine was down when it starts, once', async () => {
    await services!.orderProcess.idle();
    await services!.stop();
    services = undefined;
    const before = await haltsAndResumes('PETR4');

    await haltInstrument(broker, 'PETR4', 'engine down when halted');
    expect(await haltsAndResumes('PETR4')).toEqual(before);

    await start();
    await eventually(async () => (await bookStatus('PETR4')) === 'HALTED');
    await services!.orderProcess.idle();
    const applied = await haltsAndResumes('PETR4');
    expect(applied.slice(before.length)).toEqual(['TradingHalted']);
    // Sent again (a manager replaying from an older checkpoint), it books nothing.
    const replaying = new OrderProcess({
      store: broker,
      transport: wire,
      assetPrices: new MemoryPriceCache(),
      priceBandPercent: 10,
      checkpoints: new MemoryRelayCheckpoints(),
      name: 'replay-from-zero',
    });
    await replaying.start();
    await replaying.idle();
    await replaying.stop();
    expect(await bookStatus('PETR4')).toBe('HALTED');
    expect(await haltsAndResumes('PETR4')).toEqual(applied);

    await resumeInstrument(broker, 'PETR4');
    await eventually(async () => (await bookStatus('PETR4')) === 'OPEN');
  });

  it("takes an admin's new reason for a halt to both books; the same reason again sends nothing", async () => {
    await haltInstrument(broker, 'PETR4', 'auction');
    await eventually(
      async () => (await bookStatus('PETR4')) === 'HALTED' && (await bookStatus('PETR4F')) === 'HALTED',
    );
    await haltInstrument(broker, 'PETR4', 'material fact pending');
    const lastHaltReason = async (symbol: string) =>
      (
        (await b3.readStream(bookStreamId(symbol))).filter((event) => event.type === 'TradingHalted').at(-1)
          ?.data as { reason?: string } | undefined
      )?.reason;
    for (const symbol of ['PETR4', 'PETR4F'])
      await eventually(async () => (await lastHaltReason(symbol)) === 'material fact pending');
    expect(await bookStatus('PETR4')).toBe('HALTED');

    await services!.orderProcess.idle();
    const before = await haltsAndResumes('PETR4');
    await haltInstrument(broker, 'PETR4', 'material fact pending');
    await services!.orderProcess.idle();
    expect(await haltsAndResumes('PETR4')).toEqual(before);

    await resumeInstrument(broker, 'PETR4');
    await eventually(async () => (await bookStatus('PETR4')) === 'OPEN');
  });
});
