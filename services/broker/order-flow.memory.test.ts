import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryPriceCache } from '../../adapters/memory/price-cache.ts';
import type { MemoryTransport } from '../../adapters/memory/transport.ts';
import { tradeStreamId } from '../../domain/b3/book-events.ts';
import type { ExecutionReport } from '../../domain/b3/execution-reports.ts';
import { quoteStreamId } from '../../domain/b3/quote-events.ts';
import type { EventStore } from '../../domain/shared/event-store.ts';
import { MemoryRelayCheckpoints } from '../../projections/relay.ts';
import type { TradingServices } from '../shared/trading.ts';
import {
  deposit,
  eventually,
  type InProcessOrderPath,
  inProcessOrderPath,
  listInstrument,
  ordersReach,
  placeOrder,
  requestCancel,
  totals,
  transferSharesIn,
  walletOf,
} from '../shared/trading-fixtures.ts';
import { OrderProcess } from './order-process.ts';

/** The whole order path in one process: PGlite event stores, the in-process transport and caches. */
describe('order path, fully in process', () => {
  let path: InProcessOrderPath | undefined;
  let broker: EventStore;
  let b3: EventStore;
  let services: TradingServices;

  beforeAll(async () => {
    path = await inProcessOrderPath();
    ({ broker, b3, services } = path);
  });
  afterAll(() => path?.stop());

  it('matches a buy with a crossing sell, settles both wallets and records the trade', async () => {
    await deposit(broker, 'buyer', 1_000_000);
    await transferSharesIn(broker, 'seller', 'PETR4', 300, 30_00);
    const buy = await placeOrder(broker, {
      accountId: 'buyer',
      symbol: 'PETR4',
      side: 'BUY',
      quantity: 100,
      price: 32_50,
    });
    await ordersReach(broker, [buy], ['NEW']);
    const sell = await placeOrder(broker, {
      accountId: 'seller',
      symbol: 'PETR4',
      side: 'SELL',
      quantity: 100,
      price: 32_40,
    });

    const [buyOrder, sellOrder] = await ordersReach(broker, [buy, sell], ['FILLED']);
    // The resting buy sets the price.
    expect(buyOrder).toMatchObject({ filledQuantity: 100, averagePrice: 32_50 });
    expect(sellOrder).toMatchObject({ filledQuantity: 100, averagePrice: 32_50 });

    const buyer = await eventually(async () => {
      const wallet = await walletOf(broker, 'buyer');
      return wallet.positions.PETR4?.available === 100 && wallet.cash.reserved === 0 ? wallet : undefined;
    });
    expect(buyer.cash.available).toBe(1_000_000 - 325_000);
    const seller = await walletOf(broker, 'seller');
    expect(seller.cash.available).toBe(325_000);
    expect(seller.positions.PETR4).toMatchObject({ available: 200, reserved: 0 });

    const tradeId = buyOrder!.executions[0]!.executionId.replace(/-[RI]$/, '');
    const trade = await b3.readStream(tradeStreamId(tradeId));
    expect(trade.map((event) => event.type)).toEqual(['TradeExecuted']);
    expect(trade[0]!.data).toMatchObject({
      symbol: 'PETR4',
      price: 32_50,
      quantity: 100,
      buyOrderId: buy,
      sellOrderId: sell,
    });

    expect(await totals(broker, ['buyer', 'seller'])).toEqual({ cash: 1_000_000, shares: { PETR4: 300 } });
  });

  it('rejects an order the wallet cannot cover, with the reservation’s reason', async () => {
    const order = await placeOrder(broker, {
      accountId: 'poor',
      symbol: 'PETR4',
      side: 'BUY',
      quantity: 100,
      price: 32_50,
    });
    const [rejected] = await ordersReach(broker, [order], ['REJECTED']);
    expect(rejected!.rejectReason).toBe('INSUFFICIENT_FUNDS');
  });

  it('cancels a resting order at B3 and releases its reservation', async () => {
    await deposit(broker, 'canceler', 500_000);
    const order = await placeOrder(broker, {
      accountId: 'canceler',
      symbol: 'PETR4',
      side: 'BUY',
      quantity: 100,
      price: 31_00,
    });
    await ordersReach(broker, [order], ['NEW']);
    await eventually(async () => (await walletOf(broker, 'canceler')).cash.reserved === 310_000);
    await requestCancel(broker, order, 'canceler');
    await ordersReach(broker, [order], ['CANCELED']);
    const wallet = await eventually(async () => {
      const current = await walletOf(broker, 'canceler');
      return current.cash.reserved === 0 ? current : undefined;
    });
    expect(wallet.cash.available).toBe(500_000);
  });

  it('records who asked for a cancel: the owner, or an admin acting on its order', async () => {
    await deposit(broker, 'cancel-owner', 1_000_000);
    const reasonOf = async (requestedBy: string) => {
      const order = await placeOrder(broker, {
        accountId: 'cancel-owner',
        symbol: 'PETR4',
        side: 'BUY',
        quantity: 100,
        price: 30_00,
      });
      await ordersReach(broker, [order], ['NEW']);
      await requestCancel(broker, order, requestedBy);
      await ordersReach(broker, [order], ['CANCELED']);
      const events = await broker.readStream(`order-${order}`);
      return (
        events.find((event) => event.type === 'OrderCanceled')?.data as { reason?: unknown } | undefined
      )?.reason;
    };
    expect(await reasonOf('cancel-owner')).toBe('CANCELED_BY_TRADER');
    expect(await reasonOf('admin')).toBe('CANCELED_BY_ADMIN');
  });

  it('rejects at B3 when the reference price is missing, and the broker releases the reservation', async () => {
    await listInstrument(broker, 'VALE3', 55_20);
    await deposit(broker, 'vale-buyer', 1_000_000);
    const order = await placeOrder(broker, {
      accountId: 'vale-buyer',
      symbol: 'VALE3',
      side: 'BUY',
      quantity: 100,
      price: 55_00,
    });
    const [rejected] = await ordersReach(broker, [order], ['REJECTED']);
    expect(rejected!.rejectReason).toBe('REFERENCE_PRICE_MISSING');
    const events = await broker.readStream(`order-${order}`);
    expect(events.find((event) => event.type === 'OrderRejected')?.data).toMatchObject({
      detail: 'B3 has no reference price for the instrument yet',
    });
    await eventually(async () => (await walletOf(broker, 'vale-buyer')).cash.available === 1_000_000);
  });

  it('rejects a limit price outside the band at B3, naming the band and the price tried', async () => {
    await deposit(broker, 'band-buyer', 400_000);
    const order = await placeOrder(broker, {
      accountId: 'band-buyer',
      symbol: 'PETR4',
      side: 'BUY',
      quantity: 100,
      price: 40_00,
    });
    const [rejected] = await ordersReach(broker, [order], ['REJECTED']);
    expect(rejected!.rejectReason).toBe('PRICE_BAND');
    const events = await broker.readStream(`order-${order}`);
    // 32.50 ± 10%: 29.25 to 35.75.
    expect(events.find((event) => event.type === 'OrderRejected')?.data).toMatchObject({
      reason: 'PRICE_BAND',
      detail:
        'the price 40.00 is outside the price band around the reference price, which accepts 29.25 to 35.75',
    });
    await eventually(async () => (await walletOf(broker, 'band-buyer')).cash.available === 400_000);
  });

  it('records admin reference prices as quotes, and drops feed quotes while switched off', async () => {
    expect(services.marketData.quotesEnabled).toBe(false);
    expect(
      await services.marketData.publish({ symbol: 'PETR4', price: 1, at: Date.now(), source: 'test' }),
    ).toBe(false);
    const quotes = await b3.readStream(quoteStreamId('PETR4'));
    expect(quotes.map((event) => (event.data as { last: number; source: string }).source)).toEqual(['admin']);
    expect(await services.marketPrices.get('PETR4')).toMatchObject({ price: 32_50, pinned: true });
    expect(await services.brokerPrices.get('PETR4')).toMatchObject({ price: 32_50, pinned: true });
  });

  it('reserves a market buy at the price band’s upper edge and releases what the fill did not use', async () => {
    await deposit(broker, 'market-buyer', 1_000_000);
    await transferSharesIn(broker, 'market-seller', 'PETR4', 100, 30_00);
    const sell = await placeOrder(broker, {
      accountId: 'market-seller',
      symbol: 'PETR4',
      side: 'SELL',
      quantity: 100,
      price: 33_00,
    });
    await ordersReach(broker, [sell], ['NEW']);
    const buy = await placeOrder(broker, {
      accountId: 'market-buyer',
      symbol: 'PETR4',
      side: 'BUY',
      quantity: 100,
      type: 'MARKET',
    });
    await ordersReach(broker, [buy, sell], ['FILLED']);
    const reserved = (await broker.readStream(`wallet-market-buyer`)).find(
      (event) => event.type === 'CashReserved',
    );
    // 32.50 + 10 % = 35.75 per share.
    expect(reserved?.data).toMatchObject({ price: 35_75, amount: 357_500, basis: 'PRICE_BAND_UPPER_EDGE' });
    const wallet = await eventually(async () => {
      const current = await walletOf(broker, 'market-buyer');
      return current.cash.reserved === 0 ? current : undefined;
    });
    expect(wallet.cash.available).toBe(1_000_000 - 330_000);
  });

  it('expires DAY orders at the end of the session and releases their reservations', async () => {
    await deposit(broker, 'day-trader', 400_000);
    const order = await placeOrder(broker, {
      accountId: 'day-trader',
      symbol: 'PETR4',
      side: 'BUY',
      quantity: 100,
      price: 30_00,
    });
    await ordersReach(broker, [order], ['NEW']);
    // NEW is the broker's word; wait for B3 to have it in the book before closing the session.
    await eventually(async () => (await services.engine.book('PETR4')).order(order));
    await services.engine.session('PETR4', 'EndOfDay', crypto.randomUUID());
    await ordersReach(broker, [order], ['EXPIRED']);
    await eventually(async () => (await walletOf(broker, 'day-trader')).cash.available === 400_000);
  });

  it('dead-letters an execution report for an order the broker does not know, after its retries', async () => {
    const transport = services.transport as MemoryTransport;
    await transport.publish('b3-to-broker', {
      messageId: crypto.randomUUID(),
      type: 'ExecutionReport',
      correlationId: 'unknown-order',
      causationId: 'test',
      schemaVersion: 1,
      body: {
        executionId: 'PETR4-999-I',
        type: 'FILL',
        symbol: 'PETR4',
        orderId: 'nobody',
        accountId: 'nobody',
        price: 32_50,
        quantity: 100,
        remaining: 0,
        sequence: 999,
        at: 0,
      },
    });
    const letters = await eventually(async () => {
      const found = await transport.deadLetters('b3-to-broker');
      return found.length > 0 ? found : undefined;
    });
    expect(letters[0]).toMatchObject({ reason: 'handler-failed', correlationId: 'unknown-order' });
    expect(letters[0]!.detail).toMatch(/unknown order nobody/);
  });

  it("ends an order only once B3's fills before the end have arrived: a cancel that overtakes a fill waits for it", async () => {
    await services.marketData.setReferencePrice('ITUB4', 30_00);
    await listInstrument(broker, 'ITUB4', 30_00);
    await transferSharesIn(broker, 'overtaken', 'ITUB4', 200, 25_00);
    const sell = await placeOrder(broker, {
      accountId: 'overtaken',
      symbol: 'ITUB4',
      side: 'SELL',
      quantity: 200,
      price: 31_00,
    });
    await ordersReach(broker, [sell], ['NEW']);
    // B3 sold 100 of it, then canceled the other 100; the cancel's report comes first (a fill
    // retried, or re-sent by an engine that crashed before sending it).
    const transport = services.transport as MemoryTransport;
    const report = (body: Partial<ExecutionReport>) =>
      transport.publish('b3-to-broker', {
        messageId: crypto.randomUUID(),
        type: 'ExecutionReport',
        correlationId: 'overtaken',
        causationId: 'test',
        schemaVersion: 1,
        body: {
          executionId: `ITUB4-${body.sequence}`,
          symbol: 'ITUB4',
          orderId: sell,
          accountId: 'overtaken',
          side: 'SELL',
          at: Date.now(),
          ...body,
        } as ExecutionReport,
      });
    // (The in-process transport confirms a publish once it is handled: not awaited here.)
    const canceled = report({
      type: 'CANCELED',
      quantity: 100,
      remaining: 0,
      reason: 'CANCELED_BY_TRADER',
      sequence: 9002,
    });
    const filled = report({
      type: 'PARTIAL_FILL',
      executionId: 'ITUB4-9001-R',
      quantity: 100,
      price: 31_00,
      remaining: 100,
      sequence: 9001,
    });
    await Promise.all([canceled, filled]);
    const [order] = await ordersReach(broker, [sell], ['CANCELED']);
    expect(order).toMatchObject({ filledQuantity: 100 });
    const wallet = await eventually(async () => {
      const found = await walletOf(broker, 'overtaken');
      return found.positions.ITUB4?.reserved === 0 ? found : undefined;
    });
    expect(wallet.positions.ITUB4).toMatchObject({ available: 100, reserved: 0 });
    expect(wallet.cash.available).toBe(100 * 31_00);
    expect(await transport.deadLetters('b3-to-broker')).not.toContainEqual(
      expect.objectContaining({ correlationId: 'overtaken' }),
    );
  });

  it('changes nothing when a second manager replays the whole store from position 0', async () => {
    await services.orderProcess.idle();
    const brokerHead = await broker.headPosition();
    const b3Head = await b3.headPosition();
    const replaying = new OrderProcess({
      store: broker,
      transport: services.transport,
      assetPrices: new MemoryPriceCache(),
      priceBandPercent: 10,
      checkpoints: new MemoryRelayCheckpoints(),
      name: 'replay-from-zero',
    });
    await replaying.start();
    try {
      await replaying.idle();
      // Re-sent NewOrders of resting orders come back from B3 as the same reports: nothing new anywhere.
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(await broker.headPosition()).toBe(brokerHead);
      expect(await b3.headPosition()).toBe(b3Head);
    } finally {
      await replaying.stop();
    }
  });
});
