import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { BookEvent } from './book-events.ts';
import { checkSchema, SYMBOL, T0 } from './book-specification.ts';
import type { BookCommand } from './commands.ts';
import { executionReports } from './execution-reports.ts';
import { BookSnapshot, OrderBook } from './order-book.ts';
import { ReferenceMatcher } from './reference-matcher.ts';

// Reference price 100 cents, band ±10% (90..110); prices from 86 to 114 so some fall outside.
const ACCOUNTS = ['ana', 'bia', 'caio'];
const open: BookCommand = { type: 'OpenBook', referencePrice: 100, priceBandBps: 1_000, at: T0 };

/** Random command sequences over a narrow price range, so orders cross, queue and trigger often. */
function commands(options: { plain?: boolean } = {}) {
  const id = fc.integer({ min: 0, max: 40 }).map((n) => `o${n}`);
  const account = fc.constantFrom(...ACCOUNTS);
  const side = fc.constantFrom('BUY' as const, 'SELL' as const);
  // Mostly a few ticks around the reference, so queues build up; now and then outside the band.
  const price = fc.oneof(
    { arbitrary: fc.integer({ min: 97, max: 103 }), weight: 9 },
    { arbitrary: fc.integer({ min: 86, max: 114 }), weight: 1 },
  );
  const quantity = fc.integer({ min: 1, max: 10 }).map((lots) => lots * 10);
  const limit = fc
    .record({
      orderId: id,
      accountId: account,
      side,
      price,
      quantity,
      timeInForce: options.plain
        ? fc.constant('GTC' as const)
        : fc.constantFrom('DAY' as const, 'GTC' as const, 'IOC' as const, 'FOK' as const),
      iceberg: options.plain ? fc.constant(0) : fc.integer({ min: 0, max: 30 }),
    })
    .map(({ iceberg, ...order }): BookCommand => {
      const displayQuantity =
        iceberg > 0 &&
        iceberg < order.quantity &&
        (order.timeInForce === 'DAY' || order.timeInForce === 'GTC')
          ? iceberg
          : undefined;
      return { type: 'PlaceOrder', orderType: 'LIMIT', at: T0, ...order, displayQuantity };
    });
  const market = fc
    .record({
      orderId: id,
      accountId: account,
      side,
      quantity,
      timeInForce: fc.constantFrom('IOC' as const, 'FOK' as const),
    })
    .map((order): BookCommand => ({ type: 'PlaceOrder', orderType: 'MARKET', at: T0, ...order }));
  const stop = fc
    .record({ orderId: id, accountId: account, side, stopPrice: price, limit: fc.option(price), quantity })
    .map(
      ({ limit: limitPrice, ...order }): BookCommand => ({
        type: 'PlaceOrder',
        orderType: limitPrice === null ? 'STOP' : 'STOP_LIMIT',
        price: limitPrice ?? undefined,
        timeInForce: 'GTC',
        at: T0,
        ...order,
      }),
    );
  const cancel = fc
    .record({ orderId: id, accountId: account })
    .map((request): BookCommand => ({ type: 'CancelOrder', at: T0, ...request }));
  const modify = fc
    .record({ orderId: id, accountId: account, price: fc.option(price), quantity: fc.option(quantity) })
    .map(
      (request): BookCommand => ({
        type: 'ModifyOrder',
        at: T0,
        orderId: request.orderId,
        accountId: request.accountId,
        price: request.price ?? undefined,
        quantity: request.quantity ?? (request.price === null ? 10 : undefined),
      }),
    );
  const command = options.plain
    ? fc.oneof(
        { arbitrary: limit, weight: 6 },
        { arbitrary: market, weight: 1 },
        { arbitrary: cancel, weight: 2 },
      )
    : fc.oneof(
        { arbitrary: limit, weight: 6 },
        { arbitrary: market, weight: 1 },
        { arbitrary: stop, weight: 1 },
        { arbitrary: cancel, weight: 2 },
        { arbitrary: modify, weight: 2 },
      );
  // Order ids in arrival order; a cancel or modify mostly names an earlier order with its owner's
  // account, so it usually finds a live one (and sometimes one long gone, or another account's).
  return fc
    .array(fc.tuple(command, fc.nat(), fc.boolean()), { minLength: 10, maxLength: 70 })
    .map((drawn) => {
      const history: BookCommand[] = [];
      drawn.forEach(([command, target, impostor], index) => {
        if (command.type === 'PlaceOrder') history.push({ ...command, orderId: `o${index}` });
        else if (command.type === 'CancelOrder' || command.type === 'ModifyOrder') {
          const named = history[target % (history.length + 1)];
          const owner = named?.type === 'PlaceOrder' && !impostor ? named.accountId : command.accountId;
          history.push({
            ...command,
            orderId: named?.type === 'PlaceOrder' ? named.orderId : 'o-none',
            accountId: owner,
          });
        } else history.push(command);
      });
      return history;
    });
}

function run(history: BookCommand[]) {
  const book = new OrderBook(SYMBOL);
  const perCommand: BookEvent[][] = [book.execute(open)];
  for (const command of history) perCommand.push(book.execute(command));
  return { book, perCommand, events: perCommand.flat() };
}

const runs = { numRuns: 200 };

describe('the order book, over random command sequences', () => {
  it('trades exactly as the simple reference matcher, and queues the same orders in the same order', () => {
    fc.assert(
      fc.property(commands(), (history) => {
        const { book, events } = run(history);
        const reference = new ReferenceMatcher();
        reference.execute(open);
        for (const command of history) reference.execute(command);
        const trades = events.flatMap((event) =>
          event.type === 'OrdersMatched'
            ? [
                {
                  restingOrderId: event.data.restingOrderId,
                  incomingOrderId: event.data.incomingOrderId,
                  price: event.data.price,
                  quantity: event.data.quantity,
                },
              ]
            : [],
        );
        expect(trades).toEqual(reference.trades);
        const snapshot = book.snapshot();
        expect({
          bids: snapshot.bids.map((order) => [order.orderId, order.remaining]),
          asks: snapshot.asks.map((order) => [order.orderId, order.remaining]),
        }).toEqual(reference.book());
      }),
      runs,
    );
  });

  it('is never crossed after a command', () => {
    fc.assert(
      fc.property(commands(), (history) => {
        const book = new OrderBook(SYMBOL);
        book.execute(open);
        for (const command of history) {
          book.execute(command);
          if (book.bestBid !== undefined && book.bestAsk !== undefined)
            expect(book.bestBid).toBeLessThan(book.bestAsk);
        }
      }),
      runs,
    );
  });

  it('keeps every price level first in, first out', () => {
    // Without modifies and icebergs no order ever changes its place: each level is in arrival order.
    fc.assert(
      fc.property(commands({ plain: true }), (history) => {
        const snapshot = run(history).book.snapshot();
        for (const side of [snapshot.bids, snapshot.asks])
          for (let index = 1; index < side.length; index++) {
            const before = side[index - 1]!;
            const after = side[index]!;
            if (before.price === after.price)
              expect(before.acceptedSequence).toBeLessThan(after.acceptedSequence);
          }
      }),
      runs,
    );
  });

  it('numbers its events 1, 2, 3, … and every event matches its schema', () => {
    fc.assert(
      fc.property(commands(), (history) => {
        const { events } = run(history);
        events.forEach((event, index) => {
          expect(event.data.sequence).toBe(index + 1);
          checkSchema(event);
        });
      }),
      { numRuns: 50 },
    );
  });

  it('gives every execution report its own execution id', () => {
    fc.assert(
      fc.property(commands(), (history) => {
        const ids = run(history).events.flatMap((event) =>
          executionReports(SYMBOL, event).map((r) => r.executionId),
        );
        expect(new Set(ids).size).toBe(ids.length);
      }),
      runs,
    );
  });

  it('rebuilds exactly the live book from its events', () => {
    fc.assert(
      fc.property(commands(), (history) => {
        const { book, events } = run(history);
        expect(OrderBook.replay(SYMBOL, events).snapshot()).toEqual(book.snapshot());
      }),
      runs,
    );
  });

  it('rebuilds exactly the live book from a snapshot taken anywhere plus the events after it', () => {
    fc.assert(
      fc.property(commands(), fc.nat(), (history, cutAt) => {
        const book = new OrderBook(SYMBOL);
        const cut = cutAt % (history.length + 1);
        book.execute(open);
        for (const command of history.slice(0, cut)) book.execute(command);
        // Through JSON and the schema, as a snapshot store would keep it.
        const snapshot = BookSnapshot.parse(JSON.parse(JSON.stringify(book.snapshot())));
        const tail = history.slice(cut).flatMap((command) => book.execute(command));
        const rebuilt = OrderBook.fromSnapshot(snapshot);
        for (const event of tail) rebuilt.apply(event);
        expect(rebuilt.snapshot()).toEqual(book.snapshot());
        // And the rebuilt book decides the next command as the live one does.
        const next: BookCommand = {
          type: 'PlaceOrder',
          orderId: 'next',
          accountId: 'dora',
          side: 'BUY',
          orderType: 'MARKET',
          quantity: 50,
          timeInForce: 'IOC',
          at: T0,
        };
        expect(rebuilt.execute(next)).toEqual(book.execute(next));
      }),
      runs,
    );
  });
});
