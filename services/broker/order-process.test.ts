import { afterEach, describe, expect, it, vi } from 'vitest';
import { MemoryEventStore } from '../../adapters/memory/event-store.ts';
import { MemoryPriceCache } from '../../adapters/memory/price-cache.ts';
import { MemoryTransport } from '../../adapters/memory/transport.ts';
import { openPgliteEventStore } from '../../adapters/pglite/event-store.ts';
import {
  type EventStore,
  type ExpectedVersion,
  type NewEvent,
  WrongExpectedVersion,
} from '../../domain/shared/event-store.ts';
import type { Transport, TransportChannelName, TransportMessage } from '../../domain/shared/transport.ts';
import { EngineService } from '../b3-engine/engine-service.ts';
import { DEFAULT_MAX_RETRIES } from '../shared/command-handler.ts';
import {
  b3Schemas,
  brokerSchemas,
  deposit,
  eventually,
  listInstrument,
  ordersReach,
  placeOrder,
  requestCancel,
  walletOf,
} from '../shared/trading-fixtures.ts';
import { orderProcessLag } from '../shared/trading-metrics.ts';
import { OrderProcess, type OrderProcessOptions } from './order-process.ts';

/** The in-process transport, with publishes to B3 failing while `failing` is set (RabbitMQ unreachable). */
class FlakyTransport extends MemoryTransport {
  failing = 0;
  override async publish<Body>(
    channel: TransportChannelName,
    message: TransportMessage<Body>,
  ): Promise<void> {
    if (channel === 'broker-to-b3' && this.failing > 0) {
      this.failing -= 1;
      throw new Error('test: RabbitMQ unreachable');
    }
    return super.publish(channel, message);
  }
}

/**
 * The in-process transport, with the NewOrders of `held` orders confirmed to the publisher but
 * delivered only on `release`: what RabbitMQ does to a NewOrder retried behind a later message.
 */
class HoldingTransport extends MemoryTransport {
  readonly held = new Set<string>();
  private readonly waiting: Array<() => Promise<void>> = [];
  /** Holds the held orders' messages of this type on this channel (B3's reports: `ExecutionReport`). */
  constructor(
    private readonly holding: { channel: TransportChannelName; type: string } = {
      channel: 'broker-to-b3',
      type: 'NewOrder',
    },
  ) {
    super();
  }
  override async publish<Body>(
    channel: TransportChannelName,
    message: TransportMessage<Body>,
  ): Promise<void> {
    const orderId = (message.body as { orderId?: string }).orderId;
    if (
      channel === this.holding.channel &&
      message.type === this.holding.type &&
      orderId &&
      this.held.has(orderId)
    ) {
      this.waiting.push(() => super.publish(channel, message));
      return;
    }
    return super.publish(channel, message);
  }
  async release(): Promise<void> {
    this.held.clear();
    for (const deliver of this.waiting.splice(0)) void deliver();
  }
}

/** What the manager logged at warn and error level, and whether each line carried an error (a stack). */
function capturingLogger() {
  const lines: Array<{ level: 'warn' | 'error'; message: string; stack: boolean; correlationId?: string }> =
    [];
  const line = (level: 'warn' | 'error') => (details: { correlationId?: string }, message: string) =>
    lines.push({ level, message, stack: 'err' in details, correlationId: details.correlationId });
  return { lines, logger: { info() {}, warn: line('warn'), error: line('error') } };
}

describe('order process manager', () => {
  const stoppers: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const stop of stoppers.splice(0).reverse()) await stop();
  });

  /** The order path on these stores: B3's engine and an order process that follows again after 20 ms, both stopped after the test. */
  async function startOrderPath(
    broker: EventStore,
    b3: EventStore,
    transport: Transport,
    quote: { symbol: string; price: number },
    options: Partial<OrderProcessOptions> = {},
  ) {
    const prices = new MemoryPriceCache();
    await prices.set({ symbol: quote.symbol, price: quote.price, at: 0, source: 'admin', pinned: true });
    const engine = new EngineService({
      store: b3,
      transport,
      marketPrices: prices,
      priceMaxAgeMs: 1,
      priceBandBps: 1_000,
    });
    const { lines, logger } = capturingLogger();
    const process = new OrderProcess({
      store: broker,
      transport,
      assetPrices: prices,
      priceBandPercent: 10,
      restartDelayMs: 20,
      logger,
      ...options,
    });
    await engine.start();
    await process.start();
    stoppers.push(
      () => engine.stop(),
      () => process.stop(),
      () => transport.close(),
    );
    return { engine, process, lines };
  }

  /** A buy of 100 PETR4 at 32.00 by a funded `accountId`, NEW, with its messages `holding` held. */
  async function heldBuy(accountId: string, holding?: ConstructorParameters<typeof HoldingTransport>[0]) {
    const broker = new MemoryEventStore({ schemas: brokerSchemas() });
    const b3 = new MemoryEventStore({ schemas: b3Schemas() });
    const transport = new HoldingTransport(holding);
    const { process } = await startOrderPath(broker, b3, transport, { symbol: 'PETR4', price: 32_50 });
    await listInstrument(broker, 'PETR4', 32_50);
    await deposit(broker, accountId, 400_000);
    const orderId = crypto.randomUUID();
    transport.held.add(orderId);
    await placeOrder(broker, {
      orderId,
      accountId,
      symbol: 'PETR4',
      side: 'BUY',
      quantity: 100,
      price: 32_00,
    });
    await ordersReach(broker, [orderId], ['NEW']);
    return { broker, b3, transport, process, orderId };
  }

  /** Every message the order process sent to B3, by type and order. */
  class RecordingTransport extends MemoryTransport {
    readonly toB3: Array<{ type: string; orderId?: string }> = [];
    override async publish<Body>(
      channel: TransportChannelName,
      message: TransportMessage<Body>,
    ): Promise<void> {
      if (channel === 'broker-to-b3')
        this.toB3.push({ type: message.type, orderId: (message.body as { orderId?: string }).orderId });
      return super.publish(channel, message);
    }
  }

  it('cancels an order whose cancel was asked for before its acceptance, without reserving or sending it', async () => {
    const broker = new MemoryEventStore({ schemas: brokerSchemas() });
    const b3 = new MemoryEventStore({ schemas: b3Schemas() });
    const transport = new RecordingTransport();
    await listInstrument(broker, 'PETR4', 32_50);
    await deposit(broker, 'early-canceler', 400_000);
    const orderId = crypto.randomUUID();
    await placeOrder(broker, {
      orderId,
      accountId: 'early-canceler',
      symbol: 'PETR4',
      side: 'BUY',
      quantity: 100,
      price: 32_00,
    });
    // Asked by an admin while the order is PENDING_NEW, before the order process has seen it.
    await requestCancel(broker, orderId, 'admin-1');
    await startOrderPath(broker, b3, transport, { symbol: 'PETR4', price: 32_50 });

    const [order] = await ordersReach(broker, [orderId], ['CANCELED']);
    expect(order).toMatchObject({ filledQuantity: 0 });
    const events = await broker.readStream(`order-${orderId}`);
    expect(events.map((event) => event.type)).toEqual([
      'OrderPlaced',
      'OrderCancelRequested',
      'OrderCanceled',
    ]);
    expect(events[2]!.data).toMatchObject({ canceledQuantity: 100, reason: 'CANCELED_BY_ADMIN' });
    const wallet = await broker.readStream('wallet-early-canceler');
    expect(wallet.map((event) => event.type)).toEqual(['CashDeposited']);
    expect(transport.toB3.filter((message) => message.orderId === orderId)).toEqual([]);
  });

  it('cancels, not accepts, an order whose cancel lands while its reservation is made, and releases it', async () => {
    const broker = new MemoryEventStore({ schemas: brokerSchemas() });
    const b3 = new MemoryEventStore({ schemas: b3Schemas() });
    const transport = new RecordingTransport();
    await listInstrument(broker, 'PETR4', 32_50);
    await deposit(broker, 'late-canceler', 400_000);
    const orderId = crypto.randomUUID();
    // The owner's cancel is recorded right after the reservation, before the order is accepted.
    const append = broker.append.bind(broker);
    broker.append = async (streamId, events, options) => {
      const appended = await append(streamId, events, options);
      if (streamId === 'wallet-late-canceler' && events.some((event) => event.type === 'CashReserved'))
        await requestCancel(broker, orderId, 'late-canceler');
      return appended;
    };
    await startOrderPath(broker, b3, transport, { symbol: 'PETR4', price: 32_50 });
    await placeOrder(broker, {
      orderId,
      accountId: 'late-canceler',
      symbol: 'PETR4',
      side: 'BUY',
      quantity: 100,
      price: 32_00,
    });

    await ordersReach(broker, [orderId], ['CANCELED']);
    const events = await broker.readStream(`order-${orderId}`);
    expect(events.map((event) => event.type)).toEqual([
      'OrderPlaced',
      'OrderCancelRequested',
      'OrderCanceled',
    ]);
    expect(events[2]!.data).toMatchObject({ reason: 'CANCELED_BY_TRADER' });
    const wallet = await eventually(async () => {
      const state = await walletOf(broker, 'late-canceler');
      return state.cash.reserved === 0 ? state : undefined;
    });
    expect(wallet.cash.available).toBe(400_000);
    expect(transport.toB3.filter((message) => message.orderId === orderId)).toEqual([]);
  });

  it('cancels an order whose cancel reached B3 before the order did, once B3 has booked it', async () => {
    const { broker, b3, transport, orderId } = await heldBuy('overtaken-buyer');
    await requestCancel(broker, orderId, 'overtaken-buyer');
    // B3 refuses the cancel of an order it has not seen…
    await eventually(async () =>
      (await b3.readStream('book-PETR4')).some((event) => event.type === 'RequestRejected')
        ? true
        : undefined,
    );
    // …then books the order, which must not be left resting with its cancel asked.
    await transport.release();
    const [order] = await ordersReach(broker, [orderId], ['CANCELED']);
    expect(order).toMatchObject({ status: 'CANCELED', filledQuantity: 0 });
    expect((await walletOf(broker, 'overtaken-buyer')).cash).toEqual({ available: 400_000, reserved: 0 });
    const book = (await b3.readStream('book-PETR4')).map((event) => event.type);
    expect(book.filter((type) => type === 'OrderCanceled')).toHaveLength(1);
  });

  it('sends no second cancel for an order whose cancel B3 took, however late its ACK is handled', async () => {
    const { broker, b3, transport, process, orderId } = await heldBuy('quick-canceler', {
      channel: 'b3-to-broker',
      type: 'ExecutionReport',
    });
    const book = async () => (await b3.readStream('book-PETR4')).map((event) => event.type);
    await eventually(async () => ((await book()).includes('OrderRested') ? true : undefined));
    // The cancel is asked before the broker has seen B3's ACK, and B3 takes it.
    await requestCancel(broker, orderId, 'quick-canceler');
    await eventually(async () => ((await book()).includes('OrderCanceled') ? true : undefined));
    await transport.release();
    await ordersReach(broker, [orderId], ['CANCELED']);
    await process.idle();
    expect(await book()).not.toContain('RequestRejected');
  });

  it('follows the store again from its checkpoint when a step fails, and routes the order then', async () => {
    const broker = new MemoryEventStore({ schemas: brokerSchemas() });
    const b3 = new MemoryEventStore({ schemas: b3Schemas() });
    const transport = new FlakyTransport();
    const { process, lines } = await startOrderPath(broker, b3, transport, { symbol: 'PETR4', price: 32_50 });

    await listInstrument(broker, 'PETR4', 32_50);
    await deposit(broker, 'retry-buyer', 400_000);
    transport.failing = 2;
    const order = await placeOrder(broker, {
      accountId: 'retry-buyer',
      symbol: 'PETR4',
      side: 'BUY',
      quantity: 100,
      price: 32_00,
    });
    await ordersReach(broker, [order], ['NEW']);
    await process.idle();
    expect(transport.failing).toBe(0);
    // Routed exactly once at B3, reserved exactly once in the wallet, despite the replays.
    const book = await eventually(async () => {
      const events = await b3.readStream('book-PETR4');
      return events.some((event) => event.type === 'OrderRested') ? events : undefined;
    });
    expect(book.filter((event) => event.type === 'OrderAccepted')).toHaveLength(1);
    const wallet = await broker.readStream('wallet-retry-buyer');
    expect(wallet.filter((event) => event.type === 'CashReserved')).toHaveLength(1);
    expect((await walletOf(broker, 'retry-buyer')).cash).toEqual({ available: 80_000, reserved: 320_000 });
    expect(process.checkpoint).toBeGreaterThan(0);
    // A step that really failed is an error, with its stack and the request's correlation id.
    const { correlationId } = (await broker.readStream(`order-${order}`))[0]!.metadata;
    expect(lines).toEqual([
      { level: 'error', message: 'order process step failed, following again', stack: true, correlationId },
      { level: 'error', message: 'order process step failed, following again', stack: true, correlationId },
    ]);
  });

  it('logs a wallet conflict that outlasts the retries as a warning, and reserves on following again', async () => {
    // Another writer moving the wallet under every attempt: the first step runs out of retries
    // (the attempt on the cached wallet, then the first and every retry), the second one lands.
    class ContendedStore extends MemoryEventStore {
      conflicts = DEFAULT_MAX_RETRIES + 4;
      override async append(
        streamId: string,
        events: NewEvent[],
        options?: { expectedVersion?: ExpectedVersion },
      ) {
        if (streamId.startsWith('wallet-') && events[0]?.type === 'CashReserved' && this.conflicts > 0) {
          this.conflicts -= 1;
          throw new WrongExpectedVersion(streamId, options?.expectedVersion ?? 'any', 99);
        }
        return super.append(streamId, events, options);
      }
    }
    const broker = new ContendedStore({ schemas: brokerSchemas() });
    const transport = new MemoryTransport();
    const { lines, logger } = capturingLogger();
    const process = new OrderProcess({
      store: broker,
      transport,
      assetPrices: new MemoryPriceCache(),
      priceBandPercent: 10,
      restartDelayMs: 20,
      logger,
    });
    await process.start();
    stoppers.push(
      () => process.stop(),
      () => transport.close(),
    );
    await listInstrument(broker, 'PETR4', 32_50);
    await deposit(broker, 'contended', 400_000);
    const order = await placeOrder(broker, {
      accountId: 'contended',
      symbol: 'PETR4',
      side: 'BUY',
      quantity: 100,
      price: 32_00,
    });
    await ordersReach(broker, [order], ['NEW']);
    expect(broker.conflicts).toBe(0);
    expect((await walletOf(broker, 'contended')).cash).toEqual({ available: 80_000, reserved: 320_000 });
    expect(lines).toEqual([
      {
        level: 'warn',
        message: 'order process step conflicted, following again',
        stack: false,
        correlationId: (await broker.readStream(`order-${order}`))[0]!.metadata.correlationId,
      },
    ]);
  });

  it('says it is stuck, for readiness, once one step has kept failing for the bound, and moves on after', async () => {
    const broker = new MemoryEventStore({ schemas: brokerSchemas() });
    const b3 = new MemoryEventStore({ schemas: b3Schemas() });
    const transport = new FlakyTransport();
    const { process, lines } = await startOrderPath(
      broker,
      b3,
      transport,
      { symbol: 'PETR4', price: 32_50 },
      {
        stuckAfterMs: 300,
      },
    );
    await listInstrument(broker, 'PETR4', 32_50);
    await deposit(broker, 'stuck-buyer', 400_000);
    transport.failing = Number.POSITIVE_INFINITY;
    const order = await placeOrder(broker, {
      accountId: 'stuck-buyer',
      symbol: 'PETR4',
      side: 'BUY',
      quantity: 100,
      price: 32_00,
    });
    const placed = (await broker.readStream(`order-${order}`))[0]!.position;
    // Failing, but not for long yet: still ready.
    await eventually(async () => (lines.length > 0 ? true : undefined));
    await expect(process.progress()).resolves.toBeUndefined();
    await vi.waitFor(() => expect(process.progress()).rejects.toThrow(`stuck at position ${placed}`), {
      timeout: 5_000,
    });
    await expect(process.progress()).rejects.toThrow('test: RabbitMQ unreachable');
    transport.failing = 0;
    await ordersReach(broker, [order], ['NEW']);
    await process.idle();
    await expect(process.progress()).resolves.toBeUndefined();
  });

  it('moves other orders on while one is stuck, and keeps its checkpoint below the stuck one', async () => {
    const broker = new MemoryEventStore({ schemas: brokerSchemas() });
    const prices = new MemoryPriceCache();
    let release = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const routed: string[] = [];
    class StuckTransport extends MemoryTransport {
      override async publish<Body>(channel: TransportChannelName, message: TransportMessage<Body>) {
        const { orderId } = message.body as { orderId: string };
        if (channel === 'broker-to-b3' && routed.length === 0 && orderId) {
          routed.push(orderId);
          await held;
        } else if (channel === 'broker-to-b3') routed.push(orderId);
      }
    }
    const transport = new StuckTransport();
    const process = new OrderProcess({ store: broker, transport, assetPrices: prices, priceBandPercent: 10 });
    await process.start();
    stoppers.push(
      () => process.stop(),
      () => transport.close(),
    );
    await listInstrument(broker, 'PETR4', 32_50);
    await deposit(broker, 'stuck-buyer', 400_000);
    await deposit(broker, 'other-buyer', 400_000);
    const order = { symbol: 'PETR4', side: 'BUY' as const, quantity: 100, price: 32_00 };
    const stuck = await placeOrder(broker, { accountId: 'stuck-buyer', ...order });
    await eventually(async () => (routed.length === 1 ? true : undefined));
    const stuckPlaced = (await broker.readStream(`order-${stuck}`))[0]!.position;
    const other = await placeOrder(broker, { accountId: 'other-buyer', ...order });

    await eventually(async () => (routed.includes(other) ? true : undefined));
    expect(routed).toEqual([stuck, other]);
    expect(process.checkpoint).toBeLessThan(stuckPlaced);
    // What waits behind the stuck order shows, for an operator, as the process's lag.
    const lag = async () =>
      (await orderProcessLag.get()).values.find((sample) => sample.labels.process === 'order-process')?.value;
    expect(await lag()).toBeGreaterThan(0);
    release();
    await process.idle();
    expect(process.checkpoint).toBe(await broker.headPosition());
    expect(await lag()).toBe(0);
  });

  it('saves its checkpoint on stop and resumes from it', async () => {
    const broker = new MemoryEventStore({ schemas: brokerSchemas() });
    const transport = new MemoryTransport();
    const prices = new MemoryPriceCache();
    const first = new OrderProcess({ store: broker, transport, assetPrices: prices, priceBandPercent: 10 });
    await first.start();
    await deposit(broker, 'someone', 1_000);
    await first.idle();
    await first.stop();
    const second = new OrderProcess({ store: broker, transport, assetPrices: prices, priceBandPercent: 10 });
    await second.start();
    stoppers.push(
      () => second.stop(),
      () => transport.close(),
    );
    await second.idle();
    expect(second.checkpoint).toBe(await broker.headPosition());
  });
  it('reserves, accepts and releases one account’s many concurrent orders one wallet command at a time', async () => {
    // The trial that found it: one account sending orders 8 at a time. Its reservations raced on
    // the wallet's version, ran out of retries and made the manager follow again from its checkpoint.
    const broker = await openPgliteEventStore({ schema: 'broker', schemas: brokerSchemas() });
    const b3 = new MemoryEventStore({ schemas: b3Schemas() });
    const transport = new MemoryTransport();
    const append = broker.append.bind(broker);
    let walletConflicts = 0;
    vi.spyOn(broker, 'append').mockImplementation(async (streamId, events, options) => {
      try {
        return await append(streamId, events, options);
      } catch (error) {
        if (error instanceof WrongExpectedVersion && streamId.startsWith('wallet-')) walletConflicts += 1;
        throw error;
      }
    });
    stoppers.push(() => broker.close());
    const { engine, process, lines } = await startOrderPath(broker, b3, transport, {
      symbol: 'ITUB4',
      price: 30_00,
    });

    const perOrder = 100 * 29_50;
    await listInstrument(broker, 'ITUB4', 30_00);
    await deposit(broker, 'carol', 45 * perOrder);
    const orders = await Promise.all(
      Array.from({ length: 60 }, () =>
        placeOrder(broker, { accountId: 'carol', symbol: 'ITUB4', side: 'BUY', quantity: 100, price: 29_50 }),
      ),
    );
    const placed = await ordersReach(broker, orders, ['NEW', 'REJECTED'], 60_000);
    const open = orders.filter((_, index) => placed[index]!.status === 'NEW');
    expect(open).toHaveLength(45);
    expect(placed.filter((order) => order.status === 'REJECTED').map((order) => order.rejectReason)).toEqual(
      Array(15).fill('INSUFFICIENT_FUNDS'),
    );
    expect((await walletOf(broker, 'carol')).cash).toEqual({ available: 0, reserved: 45 * perOrder });

    // Twenty cancels at once: their releases are wallet commands too.
    await eventually(async () => {
      const book = await engine.book('ITUB4');
      return open.every((orderId) => book.order(orderId)) ? true : undefined;
    });
    const canceled = open.slice(0, 20);
    await Promise.all(canceled.map((orderId) => requestCancel(broker, orderId, 'carol')));
    await ordersReach(broker, canceled, ['CANCELED'], 60_000);
    await process.idle(60_000);
    const wallet = await walletOf(broker, 'carol');
    expect(wallet.cash).toEqual({ available: 20 * perOrder, reserved: 25 * perOrder });
    expect(Object.keys(wallet.reservations).sort()).toEqual(open.slice(20).sort());

    expect(walletConflicts).toBe(0);
    expect(lines).toEqual([]);
  }, 120_000);
});
