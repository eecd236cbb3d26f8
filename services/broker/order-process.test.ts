import { afterEach, describe, expect, it } from 'vitest';
import { MemoryEventStore } from '../../adapters/memory/event-store.ts';
import { MemoryPriceCache } from '../../adapters/memory/price-cache.ts';
import { MemoryTransport } from '../../adapters/memory/transport.ts';
import type { TransportChannelName, TransportMessage } from '../../domain/shared/transport.ts';
import { EngineService } from '../b3-engine/engine-service.ts';
import {
  b3Schemas,
  brokerSchemas,
  deposit,
  eventually,
  listInstrument,
  ordersReach,
  placeOrder,
  walletOf,
} from '../shared/trading-fixtures.ts';
import { OrderProcess } from './order-process.ts';

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

describe('order process manager', () => {
  const stoppers: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const stop of stoppers.splice(0).reverse()) await stop();
  });

  it('follows the store again from its checkpoint when a step fails, and routes the order then', async () => {
    const broker = new MemoryEventStore({ schemas: brokerSchemas() });
    const b3 = new MemoryEventStore({ schemas: b3Schemas() });
    const transport = new FlakyTransport();
    const prices = new MemoryPriceCache();
    await prices.set({ symbol: 'PETR4', price: 32_50, at: 0, source: 'admin', pinned: true });
    const engine = new EngineService({
      store: b3,
      transport,
      marketPrices: prices,
      priceMaxAgeMs: 1,
      priceBandBps: 1_000,
    });
    const process = new OrderProcess({
      store: broker,
      transport,
      assetPrices: prices,
      priceBandPercent: 10,
      restartDelayMs: 20,
    });
    await engine.start();
    await process.start();
    stoppers.push(
      () => engine.stop(),
      () => process.stop(),
      () => transport.close(),
    );

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
    release();
    await process.idle();
    expect(process.checkpoint).toBe(await broker.headPosition());
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
});
