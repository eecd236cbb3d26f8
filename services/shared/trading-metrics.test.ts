import { randomUUID } from 'node:crypto';
import type { Counter, Histogram } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryEventStore } from '../../adapters/memory/event-store.ts';
import { type Order, orderDecider, orderStreamId } from '../../domain/broker/order/order.ts';
import { AggregateCache } from '../../domain/shared/aggregate.ts';
import type { EventStore } from '../../domain/shared/event-store.ts';
import { handleCommand } from './command-handler.ts';
import { deterministicId } from './deterministic-id.ts';
import type { TradingServices } from './trading.ts';
import {
  brokerSchemas,
  deposit,
  type InProcessOrderPath,
  inProcessOrderPath,
  listInstrument,
  orderOf,
  ordersReach,
  placeOrder,
  transferSharesIn,
} from './trading-fixtures.ts';
import {
  countOrdersEnded,
  engineMessages,
  matchingSeconds,
  orderProcessSteps,
  ordersEnded,
  trades,
} from './trading-metrics.ts';

/** A series' value: the sample whose labels are exactly these (0 when it has none yet). */
async function sampleOf(
  metric: Counter<string> | Histogram<string>,
  labels: Record<string, string>,
  name?: string,
): Promise<number> {
  const wanted = Object.entries(labels);
  const sample = (await metric.get()).values.find(
    (value) =>
      (name === undefined || (value as { metricName?: string }).metricName === name) &&
      Object.keys(value.labels).length === wanted.length &&
      wanted.every(([label, expected]) => value.labels[label] === expected),
  );
  return sample?.value ?? 0;
}

/** The order path in process: a replay after a crash and a redelivery count nothing twice. */
describe('trading metrics on replay and redelivery', () => {
  let path: InProcessOrderPath | undefined;
  let broker: EventStore;
  let services: TradingServices;

  beforeAll(async () => {
    path = await inProcessOrderPath();
    ({ broker, services } = path);
  });
  afterAll(() => path?.stop());

  it('counts a trade and its filled orders once when the order process replays their events after a crash', async () => {
    await deposit(broker, 'replay-buyer', 1_000_000);
    await transferSharesIn(broker, 'replay-seller', 'PETR4', 100);
    const sell = await placeOrder(broker, {
      accountId: 'replay-seller',
      symbol: 'PETR4',
      side: 'SELL',
      quantity: 100,
      price: 32_50,
    });
    await ordersReach(broker, [sell], ['NEW']);
    const buy = await placeOrder(broker, {
      accountId: 'replay-buyer',
      symbol: 'PETR4',
      side: 'BUY',
      quantity: 100,
      price: 32_50,
    });
    await ordersReach(broker, [buy, sell], ['FILLED']);

    const read = async () => ({
      filled: await sampleOf(ordersEnded, { outcome: 'FILLED' }),
      accepted: await sampleOf(engineMessages, { type: 'NewOrder', outcome: 'accepted' }),
      duplicate: await sampleOf(engineMessages, { type: 'NewOrder', outcome: 'duplicate' }),
      matched: await sampleOf(
        matchingSeconds,
        { type: 'NewOrder' },
        'tradecore_engine_matching_seconds_count',
      ),
      trades: await sampleOf(trades, { symbol: 'PETR4' }),
      settled: await sampleOf(orderProcessSteps, { step: 'settled' }),
    });
    const before = await read();
    expect(before).toMatchObject({ filled: 2, accepted: 2, matched: 2, trades: 1, settled: 2 });

    // As after a crash before the checkpoint passed them: every event of both orders handled again.
    // The order process sends each NewOrder again (same message id), B3 finds it booked and re-sends
    // its reports, the order process takes each fill again, and releases what the ends released.
    for (const orderId of [sell, buy])
      for (const event of await broker.readStream(orderStreamId(orderId)))
        await services.orderProcess.onEvent(event);
    await expect.poll(async () => (await read()).settled, { timeout: 10_000 }).toBe(before.settled + 2);
    expect(await services.transport.settled?.('b3-to-broker')).not.toBe(false);

    expect(await read()).toEqual({ ...before, duplicate: before.duplicate + 2, settled: before.settled + 2 });
    expect((await orderOf(broker, buy)).executions).toHaveLength(1);
  });
});

describe('orders ended', () => {
  it('never counts an end twice, even when repeats are answered "stored already" (an end whose answer was lost goes uncounted)', async () => {
    const memory = new MemoryEventStore({ schemas: brokerSchemas() });
    // The first fill's append is stored, but its answer lost (the connection dropped after the commit).
    let loseAnswer = false;
    const store = new Proxy(memory, {
      get(target, property, receiver) {
        if (property !== 'append') return Reflect.get(target, property, receiver);
        return async (...args: Parameters<EventStore['append']>) => {
          const result = await target.append(...args);
          if (loseAnswer) {
            loseAnswer = false;
            throw new Error('connection lost after the commit');
          }
          return result;
        };
      },
    });
    await listInstrument(store, 'PETR4', 32_50);
    const cache = new AggregateCache<Order>();
    const metadata = { correlationId: randomUUID(), causationId: randomUUID(), actor: 'test' };
    const acceptedOrder = async () => {
      const orderId = await placeOrder(store, {
        accountId: 'lost-answer',
        symbol: 'PETR4',
        side: 'BUY',
        quantity: 100,
        price: 32_50,
      });
      const at = new Date().toISOString();
      await handleCommand(
        store,
        orderStreamId(orderId),
        orderDecider,
        { type: 'AcceptOrder', at },
        metadata,
        {
          cache,
        },
      );
      return orderStreamId(orderId);
    };
    const fill = (streamId: string) =>
      handleCommand(
        store,
        streamId,
        orderDecider,
        {
          type: 'RecordExecution',
          executionId: `${streamId}-1`,
          quantity: 100,
          price: 32_50,
          at: new Date().toISOString(),
        },
        metadata,
        { cache, newEventId: (index) => deterministicId(streamId, 'fill', String(index)) },
      );
    const filled = () => sampleOf(ordersEnded, { outcome: 'FILLED' });
    const before = await filled();

    countOrdersEnded(await fill(await acceptedOrder()));
    expect(await filled()).toBe(before + 1);

    const lost = await acceptedOrder();
    loseAnswer = true;
    await expect(fill(lost)).rejects.toThrow('connection lost');
    // The report comes again, twice: the cache never saw the fill, so each repeat decides it again,
    // and the store answers that its events are stored already.
    for (const _ of [1, 2]) {
      const repeat = await fill(lost);
      expect(repeat).toMatchObject({
        idempotent: true,
        events: [{ type: 'ExecutionRecorded' }, { type: 'OrderFilled' }],
      });
      countOrdersEnded(repeat);
    }
    expect(await filled()).toBe(before + 1);
  });
});
