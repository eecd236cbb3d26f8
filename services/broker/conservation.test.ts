import { afterEach, describe, expect, it } from 'vitest';
import { MemoryEventStore } from '../../adapters/memory/event-store.ts';
import { MemoryPriceCache } from '../../adapters/memory/price-cache.ts';
import { isTerminal } from '../../domain/broker/order/order.ts';
import type { EventStore } from '../../domain/shared/event-store.ts';
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

describe('conservation: cash and shares summed over every wallet are unchanged by trading', () => {
  let services: TradingServices | undefined;
  let stores: EventStore[] = [];

  afterEach(async () => {
    await services?.stop();
    for (const store of stores) await store.close();
    services = undefined;
    stores = [];
  });

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
    await listInstrument(broker, 'PETR4', 32_50);
    for (const account of ACCOUNTS) {
      await deposit(broker, account, 5_000_000);
      await transferSharesIn(broker, account, 'PETR4', 1_000, 30_00);
    }
    const before = await totals(broker, ACCOUNTS);
    // Sells rest, buys at the same price trade with them: every trade has a resting side.
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
    // Stopped while orders and execution reports are on their way, then started again.
    await eventually(async () => (await b3.headPosition()) > 40, 10_000);
    await services.stop();
    services = await start();
    await ordersReach(broker, orders, ['NEW', 'PARTIALLY_FILLED', 'FILLED'], 20_000);
    await services.orderProcess.idle();
    for (const orderId of orders) {
      const order = await orderOf(broker, orderId);
      if (!isTerminal(order.status))
        await requestCancel(broker, orderId, order.accountId).catch(() => undefined);
    }
    const ended = await ordersReach(broker, orders, ['FILLED', 'CANCELED'], 20_000);
    expect(ended.filter((order) => order.status === 'FILLED').length).toBeGreaterThan(0);
    await eventually(async () => {
      const wallets = await Promise.all(ACCOUNTS.map((account) => walletOf(broker, account)));
      return wallets.every((wallet) => wallet.cash.reserved === 0);
    }, 20_000);
    expect(await totals(broker, ACCOUNTS)).toEqual(before);
  }, 60_000);

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
