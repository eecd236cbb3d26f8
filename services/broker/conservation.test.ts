import { afterEach, describe, expect, it } from 'vitest';
import { MemoryEventStore } from '../../adapters/memory/event-store.ts';
import { MemoryPriceCache } from '../../adapters/memory/price-cache.ts';
import { isTerminal } from '../../domain/broker/order/order.ts';
import type { EventStore } from '../../domain/shared/event-store.ts';
import { FakeClock } from '../b3-engine/fake-clock.ts';
import { seededRandom } from '../market-data/quotes.ts';
import { loadConfig } from '../shared/config.ts';
import { startTradingServices, type TradingServices } from '../shared/trading.ts';
import {
  b3Schemas,
  brokerSchemas,
  deposit,
  eventually,
  listInstrument,
  orderOf,
  ordersReach,
  type PlaceOrderInput,
  placeOrder,
  requestCancel,
  totals,
  transferSharesIn,
  walletOf,
} from '../shared/trading-fixtures.ts';

const ACCOUNTS = ['ana', 'bruno', 'carla', 'davi', 'elis', 'fabio'];

/** A random but repeatable order: standard lots or fractional shares, limit or market, DAY or IOC. */
function randomOrder(random: () => number): PlaceOrderInput {
  const accountId = ACCOUNTS[Math.floor(random() * ACCOUNTS.length)]!;
  const side = random() < 0.5 ? 'BUY' : 'SELL';
  const fractional = random() < 0.25;
  const market = random() < 0.15;
  const quantity = fractional ? 1 + Math.floor(random() * 99) : 100 * (1 + Math.floor(random() * 3));
  return {
    accountId,
    symbol: fractional ? 'PETR4F' : 'PETR4',
    side,
    quantity,
    type: market ? 'MARKET' : 'LIMIT',
    ...(market ? {} : { price: 31_50 + Math.floor(random() * 200) }),
    timeInForce: !market && random() < 0.2 ? 'IOC' : 'DAY',
  };
}

/**
 * A store that dies at `crash()`, as under kill -9: from then on nothing asked of it answers, and
 * a subscriber is handed nothing more. What was written before stays in the store underneath,
 * which the services started after the "crash" open directly.
 */
function crashable(
  store: EventStore,
  slowAppend: (events: readonly { type: string }[]) => number = () => 0,
  /** Runs once an append is in the store, before it answers: a crash here loses the answer. */
  afterAppend: (events: readonly { type: string }[]) => void = () => {},
): EventStore & { crash(): void } {
  let dead = false;
  const never = new Promise<never>(() => {});
  const guard = <T>(work: () => Promise<T>): Promise<T> =>
    dead ? never : work().then((value) => (dead ? never : value));
  return {
    append: (streamId, events, options) =>
      guard(async () => {
        const ms = slowAppend(events);
        if (ms > 0) await new Promise((resolve) => setTimeout(resolve, ms));
        const result = await store.append(streamId, events, options);
        afterAppend(events);
        return result;
      }),
    readStream: (streamId, options) => guard(() => store.readStream(streamId, options)),
    readAll: (options) => guard(() => store.readAll(options)),
    streamVersion: (streamId) => guard(() => store.streamVersion(streamId)),
    headPosition: () => guard(() => store.headPosition()),
    subscribeToAll: (options) =>
      store.subscribeToAll({
        ...options,
        ...(options.onEvent ? { onEvent: (event) => (dead ? never : options.onEvent!(event)) } : {}),
        ...(options.onBatch ? { onBatch: (events) => (dead ? never : options.onBatch!(events)) } : {}),
      }),
    saveSnapshot: (snapshot) => guard(() => store.saveSnapshot(snapshot)),
    loadSnapshot: (streamId, options) => guard(() => store.loadSnapshot(streamId, options)),
    close: async () => {},
    crash: () => {
      dead = true;
    },
  };
}

/**
 * Funds every account, then places 60 orders of 100 PETR4 at one price, sells and buys in turn:
 * sells rest, buys trade with them, so every trade has a resting side.
 */
async function fundAndTrade(broker: EventStore) {
  await listInstrument(broker, 'PETR4', 32_50);
  for (const account of ACCOUNTS) {
    await deposit(broker, account, 5_000_000);
    await transferSharesIn(broker, account, 'PETR4', 1_000, 30_00);
  }
  const before = await totals(broker, ACCOUNTS);
  const orders = await Promise.all(
    Array.from({ length: 60 }, (_, index) =>
      placeOrder(broker, {
        accountId: ACCOUNTS[index % ACCOUNTS.length]!,
        symbol: 'PETR4',
        side: index % 2 === 0 ? 'SELL' : 'BUY',
        quantity: 100,
        type: 'LIMIT',
        price: 32_50,
        timeInForce: 'DAY',
      }),
    ),
  );
  return { before, orders };
}

/**
 * After a restart: every order reaches B3 and back, what rests is canceled, every trade reached
 * both its orders (as many filled buys as filled sells), nothing stays reserved, and the totals
 * are what they were before trading.
 */
async function endsSettled(
  broker: EventStore,
  services: TradingServices,
  orders: string[],
  before: Awaited<ReturnType<typeof totals>>,
) {
  await ordersReach(broker, orders, ['NEW', 'PARTIALLY_FILLED', 'FILLED'], 20_000);
  await services.orderProcess.idle();
  for (const orderId of orders) {
    const order = await orderOf(broker, orderId);
    if (!isTerminal(order.status))
      await requestCancel(broker, orderId, order.accountId).catch(() => undefined);
  }
  const ended = await ordersReach(broker, orders, ['FILLED', 'CANCELED'], 20_000);
  const filled = ended.filter((order) => order.status === 'FILLED');
  expect(filled.length).toBeGreaterThan(0);
  expect(filled.filter((order) => order.side === 'BUY').length).toBe(
    filled.filter((order) => order.side === 'SELL').length,
  );
  await eventually(async () => {
    const wallets = await Promise.all(ACCOUNTS.map((account) => walletOf(broker, account)));
    return wallets.every((wallet) => wallet.cash.reserved === 0);
  }, 20_000);
  expect(await totals(broker, ACCOUNTS)).toEqual(before);
}

// The services and stores a test started, stopped and closed after it.
let services: TradingServices | undefined;
let stores: EventStore[] = [];

afterEach(async () => {
  await services?.stop();
  for (const store of stores) await store.close();
  services = undefined;
  stores = [];
});

describe('conservation: cash and shares summed over every wallet are unchanged by trading', () => {
  it('holds across a graceful stop in the middle of trading: no fill is lost', async () => {
    const broker = new MemoryEventStore({ schemas: brokerSchemas() });
    const b3 = new MemoryEventStore({ schemas: b3Schemas() });
    stores = [broker, b3];
    const config = loadConfig({ QUOTE_SOURCE: 'off', QUOTES_ENABLED: 'false' });
    // The price caches outlive a restart, as Redis's would.
    const prices = { brokerPrices: new MemoryPriceCache(), marketPrices: new MemoryPriceCache() };
    const start = () =>
      startTradingServices({ config, eventStores: { broker, b3 }, retryDelaysMs: [10, 20], ...prices });
    services = await start();
    await services.marketData.setReferencePrice('PETR4', 32_50);
    const { before, orders } = await fundAndTrade(broker);
    // Stopped while orders and execution reports are on their way, then started again.
    await eventually(async () => (await b3.headPosition()) > 40, 10_000);
    await services.stop();
    services = await start();
    await endsSettled(broker, services, orders, before);
  }, 60_000);

  it('holds across a crash in the middle of trading: every trade B3 made is settled after the restart', async () => {
    const broker = new MemoryEventStore({ schemas: brokerSchemas() });
    const b3 = new MemoryEventStore({ schemas: b3Schemas() });
    stores = [broker, b3];
    const config = loadConfig({ QUOTE_SOURCE: 'off', QUOTES_ENABLED: 'false' });
    const prices = { brokerPrices: new MemoryPriceCache(), marketPrices: new MemoryPriceCache() };
    // Not closed afterwards: the frozen services' subscriptions on them never end.
    stores = [];
    // Settlements are slowed down, so that execution reports queue in the transport while the
    // order process's checkpoint (saved every second) moves past the orders they belong to.
    const settling = (events: readonly { type: string }[]) =>
      events.some((event) => event.type === 'BuySettled' || event.type === 'SellSettled') ? 400 : 0;
    const dying = { broker: crashable(broker, settling), b3: crashable(b3) };
    const crashed = await startTradingServices({
      config,
      eventStores: dying,
      retryDelaysMs: [10, 20],
      ...prices,
    });
    await crashed.marketData.setReferencePrice('PETR4', 32_50);
    const { before, orders } = await fundAndTrade(broker);
    // Killed while orders and execution reports are on their way: the in-process transport's
    // messages die with it. The old services are left as they are, frozen.
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    dying.broker.crash();
    dying.b3.crash();
    services = await startTradingServices({
      config,
      eventStores: { broker, b3 },
      retryDelaysMs: [10, 20],
      ...prices,
    });
    await endsSettled(broker, services, orders, before);
  }, 60_000);

  it('holds when a session closed while it was down: the start expires the DAY order and releases its cash', async () => {
    const broker = new MemoryEventStore({ schemas: brokerSchemas() });
    const b3 = new MemoryEventStore({ schemas: b3Schemas() });
    stores = [broker, b3];
    const config = loadConfig({ QUOTE_SOURCE: 'off', QUOTES_ENABLED: 'false', B3_SESSION_CLOSE: '18:00' });
    const prices = { brokerPrices: new MemoryPriceCache(), marketPrices: new MemoryPriceCache() };
    // 17:59 in São Paulo (UTC−3), a minute before the close.
    const clock = new FakeClock(Date.parse('2025-03-14T20:59:00Z'));
    const start = () => startTradingServices({ config, eventStores: { broker, b3 }, clock, ...prices });
    services = await start();
    await services.marketData.setReferencePrice('PETR4', 32_50);
    await listInstrument(broker, 'PETR4', 32_50);
    await deposit(broker, 'ana', 1_000_000);
    const before = await totals(broker, ['ana']);
    const buy = await placeOrder(broker, {
      accountId: 'ana',
      symbol: 'PETR4',
      side: 'BUY',
      quantity: 100,
      type: 'LIMIT',
      price: 32_00,
      timeInForce: 'DAY',
    });
    await ordersReach(broker, [buy], ['NEW']);
    await services.orderProcess.idle();
    await services.stop();

    // Down through the close. The engine's first act on start reports the expiry: the broker
    // takes reports before the engine starts, or the in-process transport's confirm never comes.
    await clock.advanceTo(Date.parse('2025-03-14T22:00:00Z'));
    services = await start();
    await ordersReach(broker, [buy], ['EXPIRED']);
    await eventually(async () => (await walletOf(broker, 'ana')).cash.reserved === 0);
    expect(await totals(broker, ['ana'])).toEqual(before);
  });

  for (const seed of [7, 2024, 31337]) {
    it(`holds for a random session of orders and cancels (seed ${seed})`, async () => {
      const broker = new MemoryEventStore({ schemas: brokerSchemas() });
      const b3 = new MemoryEventStore({ schemas: b3Schemas() });
      stores = [broker, b3];
      services = await startTradingServices({
        config: loadConfig({ QUOTE_SOURCE: 'off', QUOTES_ENABLED: 'false' }),
        eventStores: { broker, b3 },
        retryDelaysMs: [10, 20],
      });
      await services.marketData.setReferencePrice('PETR4', 32_50);
      await listInstrument(broker, 'PETR4', 32_50);
      for (const account of ACCOUNTS) {
        await deposit(broker, account, 2_000_000);
        await transferSharesIn(broker, account, 'PETR4', 1_000, 30_00);
      }
      const before = await totals(broker, ACCOUNTS);

      const random = seededRandom(seed);
      const orders: string[] = [];
      for (let index = 0; index < 40; index++) orders.push(await placeOrder(broker, randomOrder(random)));
      // Every order reaches B3 and back: accepted (maybe resting), or ended.
      await ordersReach(broker, orders, [
        'NEW',
        'PARTIALLY_FILLED',
        'FILLED',
        'CANCELED',
        'REJECTED',
        'EXPIRED',
      ]);
      await services.orderProcess.idle();
      // Cancel whatever rests, so every reservation must come back.
      for (const orderId of orders) {
        const order = await orderOf(broker, orderId);
        if (!isTerminal(order.status))
          await requestCancel(broker, orderId, order.accountId).catch(() => undefined);
      }
      const ended = await ordersReach(broker, orders, ['FILLED', 'CANCELED', 'REJECTED', 'EXPIRED'], 20_000);
      expect(ended.some((order) => order.filledQuantity > 0)).toBe(true);

      await eventually(async () => {
        const wallets = await Promise.all(ACCOUNTS.map((account) => walletOf(broker, account)));
        return wallets.every(
          (wallet) => Object.keys(wallet.reservations).length === 0 && wallet.cash.reserved === 0,
        );
      });
      expect(await totals(broker, ACCOUNTS)).toEqual(before);
      for (const account of ACCOUNTS) {
        const wallet = await walletOf(broker, account);
        expect(wallet.cash.available).toBeGreaterThanOrEqual(0);
        for (const held of Object.values(wallet.positions)) expect(held.reserved).toBe(0);
      }
    });
  }
});

describe('conservation when B3 fills beyond what the broker reserved: the fill is booked, never dropped', () => {
  it('settles a stop buy that fills above the band edge it reserved at; the excess leaves the wallet owing', async () => {
    const broker = new MemoryEventStore({ schemas: brokerSchemas() });
    const b3 = new MemoryEventStore({ schemas: b3Schemas() });
    stores = [broker, b3];
    services = await startTradingServices({
      config: loadConfig({ QUOTE_SOURCE: 'off', QUOTES_ENABLED: 'false' }),
      eventStores: { broker, b3 },
      retryDelaysMs: [10, 20],
    });
    const accounts = ['alice', 'bob', 'carla', 'dave'];
    await services.marketData.setReferencePrice('BBAS3', 20_00);
    await listInstrument(broker, 'BBAS3', 20_00);
    // Alice has exactly what her stop reserves: 100 × 22.00, the band's upper edge around 20.00.
    await deposit(broker, 'alice', 2_200_00);
    await transferSharesIn(broker, 'bob', 'BBAS3', 200, 18_00);
    await deposit(broker, 'carla', 10_000_00);
    // Dave's cash is within a sale's proceeds of the largest exact balance.
    await deposit(broker, 'dave', Number.MAX_SAFE_INTEGER - 1_000_00);
    await transferSharesIn(broker, 'dave', 'BBAS3', 100, 18_00);
    const before = await totals(broker, accounts);

    const stop = await placeOrder(broker, {
      accountId: 'alice',
      symbol: 'BBAS3',
      side: 'BUY',
      type: 'STOP',
      quantity: 100,
      stopPrice: 21_00,
      timeInForce: 'GTC',
    });
    await ordersReach(broker, [stop], ['NEW']);
    expect((await walletOf(broker, 'alice')).cash).toEqual({ available: 0, reserved: 2_200_00 });
    // NEW at the broker is reserved, not yet booked: B3 takes the stop before the price moves, or
    // the stop price is outside the new band and B3 rejects it.
    await eventually(async () =>
      (await b3.readStream('book-BBAS3')).some(
        (event) => event.type === 'OrderAccepted' && (event.data as { orderId: string }).orderId === stop,
      ),
    );

    // The admin moves the reference price past the band alice reserved for; then trading at 25.00
    // triggers her stop, which fills at 25.00.
    await services.marketData.setReferencePrice('BBAS3', 24_00);
    const sell = await placeOrder(broker, {
      accountId: 'bob',
      symbol: 'BBAS3',
      side: 'SELL',
      type: 'LIMIT',
      quantity: 200,
      price: 25_00,
      timeInForce: 'GTC',
    });
    await ordersReach(broker, [sell], ['NEW']);
    const buy = await placeOrder(broker, {
      accountId: 'carla',
      symbol: 'BBAS3',
      side: 'BUY',
      type: 'LIMIT',
      quantity: 100,
      price: 25_00,
    });
    const [stopOrder, sellOrder, buyOrder] = await ordersReach(broker, [stop, sell, buy], ['FILLED'], 20_000);
    expect(stopOrder).toMatchObject({ status: 'FILLED', filledQuantity: 100, averagePrice: 25_00 });
    expect(sellOrder?.filledQuantity).toBe(200);
    expect(buyOrder?.filledQuantity).toBe(100);

    // Dave's sale is refused before it reaches B3, not after it traded.
    const daveSell = await placeOrder(broker, {
      accountId: 'dave',
      symbol: 'BBAS3',
      side: 'SELL',
      type: 'LIMIT',
      quantity: 100,
      price: 24_00,
    });
    const [daveOrder] = await ordersReach(broker, [daveSell], ['REJECTED']);
    expect(daveOrder?.rejectReason).toBe('BALANCE_TOO_LARGE');

    await services.orderProcess.idle();
    const alice = await eventually(async () => {
      const wallet = await walletOf(broker, 'alice');
      return wallet.cash.reserved === 0 && Object.keys(wallet.reservations).length === 0 ? wallet : undefined;
    });
    // 2 500.00 paid for shares 2 200.00 was reserved for: she owes the 300.00.
    expect(alice.cash).toEqual({ available: -300_00, reserved: 0 });
    expect(alice.positions.BBAS3).toMatchObject({ available: 100, reserved: 0, costBasis: 2_500_00 });
    expect((await walletOf(broker, 'bob')).cash.available).toBe(5_000_00);
    expect(await totals(broker, accounts)).toEqual(before);
    expect(await services.transport.deadLetters('b3-to-broker')).toEqual([]);

    // The debit blocks her next buy until she covers it.
    const next = await placeOrder(broker, {
      accountId: 'alice',
      symbol: 'BBAS3',
      side: 'BUY',
      type: 'LIMIT',
      quantity: 100,
      price: 24_00,
    });
    const [refused] = await ordersReach(broker, [next], ['REJECTED']);
    expect(refused).toMatchObject({ rejectReason: 'INSUFFICIENT_FUNDS' });
    const rejection = (await broker.readStream(`order-${next}`)).find(
      (event) => event.type === 'OrderRejected',
    );
    expect((rejection?.data as { detail?: string } | undefined)?.detail).toMatch(/owes 300\.00/);
  }, 60_000);
});

describe('conservation across a crash between what B3 decided on its own and its reports', () => {
  /**
   * Services on stores that die together, as under kill -9, right after the B3 store took an
   * expiry: the engine has decided it and no report of it has gone out, and no message will come
   * again to make the engine re-send it. The second start runs on the stores underneath.
   */
  async function servicesThatDieAtAnExpiry(
    clock: FakeClock,
    config = loadConfig({ QUOTE_SOURCE: 'off', QUOTES_ENABLED: 'false' }),
  ) {
    const broker = new MemoryEventStore({ schemas: brokerSchemas() });
    const b3 = new MemoryEventStore({ schemas: b3Schemas() });
    // Not closed afterwards: the frozen services' subscriptions on them never end.
    stores = [];
    let crashed = false;
    const dying = {
      broker: crashable(broker),
      b3: crashable(b3, undefined, (events) => {
        if (!events.some((event) => event.type === 'OrderExpired')) return;
        dying.broker.crash();
        dying.b3.crash();
        crashed = true;
      }),
    };
    const prices = { brokerPrices: new MemoryPriceCache(), marketPrices: new MemoryPriceCache() };
    const dead = await startTradingServices({ config, eventStores: dying, clock, ...prices });
    await dead.marketData.setReferencePrice('PETR4', 32_50);
    await listInstrument(broker, 'PETR4', 32_50);
    await deposit(broker, 'ana', 1_000_000);
    return {
      broker,
      b3,
      orderProcess: dead.orderProcess,
      crashed: () => crashed,
      restart: () => startTradingServices({ config, eventStores: { broker, b3 }, clock, ...prices }),
    };
  }

  /** The order ended EXPIRED once, and its reservation was released once: the totals are back. */
  async function expiredOnce(
    broker: EventStore,
    orderId: string,
    before: Awaited<ReturnType<typeof totals>>,
  ) {
    await ordersReach(broker, [orderId], ['EXPIRED']);
    await services!.orderProcess.idle();
    await eventually(async () => (await walletOf(broker, 'ana')).cash.reserved === 0);
    expect(await totals(broker, ['ana'])).toEqual(before);
    const order = await broker.readStream(`order-${orderId}`);
    expect(order.filter((event) => event.type === 'OrderExpired')).toHaveLength(1);
    const wallet = await broker.readStream('wallet-ana');
    const released = wallet.filter(
      (event) =>
        event.type === 'ReservationReleased' && (event.data as { orderId: string }).orderId === orderId,
    );
    expect(released).toHaveLength(1);
  }

  it('expires at the broker a DAY order whose session close B3 booked just before the crash', async () => {
    // 17:59 in São Paulo (UTC−3), a minute before the close.
    const clock = new FakeClock(Date.parse('2025-03-14T20:59:00Z'));
    const run = await servicesThatDieAtAnExpiry(
      clock,
      loadConfig({ QUOTE_SOURCE: 'off', QUOTES_ENABLED: 'false', B3_SESSION_CLOSE: '18:00' }),
    );
    const before = await totals(run.broker, ['ana']);
    const buy = await placeOrder(run.broker, {
      accountId: 'ana',
      symbol: 'PETR4',
      side: 'BUY',
      quantity: 100,
      type: 'LIMIT',
      price: 32_00,
      timeInForce: 'DAY',
    });
    await ordersReach(run.broker, [buy], ['NEW']);
    await run.orderProcess.idle();

    // The close: B3 books the expiry, and the process dies before any report of it goes out.
    await clock.advanceTo(Date.parse('2025-03-14T21:00:01Z'));
    await eventually(async () => run.crashed());
    expect((await run.b3.readStream('book-PETR4')).map((event) => event.type)).toContain('OrderExpired');
    expect((await orderOf(run.broker, buy)).status).toBe('NEW');

    services = await run.restart();
    await expiredOnce(run.broker, buy, before);
  });

  it('expires at the broker a GTD order whose expiry B3 booked just before the crash', async () => {
    const clock = new FakeClock(Date.now());
    const run = await servicesThatDieAtAnExpiry(clock);
    const before = await totals(run.broker, ['ana']);
    const expiresAt = clock.now() + 60_000;
    const buy = await placeOrder(run.broker, {
      accountId: 'ana',
      symbol: 'PETR4',
      side: 'BUY',
      quantity: 100,
      type: 'LIMIT',
      price: 32_00,
      timeInForce: 'GTD',
      expiresAt: new Date(expiresAt).toISOString(),
    });
    await ordersReach(run.broker, [buy], ['NEW']);
    await run.orderProcess.idle();

    // The book's GTD timer: B3 books the expiry, and the process dies before any report of it goes out.
    await clock.advanceTo(expiresAt + 1);
    await eventually(async () => run.crashed());
    expect((await orderOf(run.broker, buy)).status).toBe('NEW');

    services = await run.restart();
    await expiredOnce(run.broker, buy, before);
  });
});
