import { describe, expect, it } from 'vitest';
import { type BookEvent, bookStreamId } from '../../domain/b3/book-events.ts';
import { OrderBook } from '../../domain/b3/order-book.ts';
import { BOOK_ORDERS, BOOKS, bookDepthProjection } from './book-depth.ts';
import { asRecorded, MemoryTables, projectionSpecification, recorded, TRADE_AT } from './testing.ts';
import { tradingWorkload } from './workload.ts';

const at = TRADE_AT;

describe('order-book depth', () => {
  const given = projectionSpecification(bookDepthProjection);
  const book = 'book-PETR4';
  const rested = (
    orderId: string,
    side: 'BUY' | 'SELL',
    price: number,
    remaining: number,
    sequence: number,
  ) =>
    recorded(book, 'OrderRested', {
      sequence,
      at,
      orderId,
      accountId: 'a1',
      side,
      price,
      remaining,
      displayedQuantity: remaining,
    });

  it('shows an order resting at its price', () =>
    given()
      .when(rested('o1', 'BUY', 3_200, 300, 2))
      .thenRow(
        BOOK_ORDERS,
        { symbol: 'PETR4', order_id: 'o1' },
        { side: 'BUY', price: 3_200, displayed: 300, resting: true },
      ));

  it('shrinks a resting order by a partial fill and removes it when filled', () => {
    const matched = (quantity: number, restingRemaining: number, sequence: number) =>
      recorded(book, 'OrdersMatched', {
        sequence,
        at,
        tradeId: `t${sequence}`,
        price: 3_200,
        quantity,
        aggressorSide: 'SELL',
        restingOrderId: 'o1',
        restingAccountId: 'a1',
        restingRemaining,
        incomingOrderId: `s${sequence}`,
        incomingAccountId: 'a2',
        incomingRemaining: 0,
      });
    given(rested('o1', 'BUY', 3_200, 300, 2))
      .when(matched(100, 200, 3))
      .thenRow(BOOK_ORDERS, { symbol: 'PETR4', order_id: 'o1' }, { remaining: 200, displayed: 200 })
      .thenRow(BOOKS, { symbol: 'PETR4' }, { last_trade_price: 3_200, sequence: 3 });
    given(rested('o1', 'BUY', 3_200, 300, 2))
      .when(matched(300, 0, 3))
      .thenNoRow(BOOK_ORDERS, { symbol: 'PETR4', order_id: 'o1' });
  });

  it('takes a canceled order out of the book', () =>
    given(rested('o1', 'SELL', 3_300, 100, 2))
      .when(
        recorded(book, 'OrderCanceled', {
          sequence: 3,
          at,
          orderId: 'o1',
          accountId: 'a1',
          side: 'SELL',
          remaining: 100,
          reason: 'CANCELED_BY_TRADER',
        }),
      )
      .thenNoRow(BOOK_ORDERS, { symbol: 'PETR4', order_id: 'o1' }));

  it('moves the book’s sequence and time with every event of the book, not only its trades', () => {
    const later = at + 60_000;
    const event = (type: string, sequence: number, data: object = {}) =>
      recorded(book, type, { sequence, at: later, orderId: 'o1', accountId: 'a1', side: 'SELL', ...data });
    const opened = recorded(book, 'BookOpened', {
      sequence: 1,
      at,
      symbol: 'PETR4',
      referencePrice: 3_250,
      priceBandBps: 1_000,
    });
    const moved = { sequence: 3, updated_at: new Date(later) };
    for (const [type, data] of [
      ['OrderRested', { price: 3_300, remaining: 100, displayedQuantity: 100 }],
      ['OrderCanceled', { remaining: 100, reason: 'CANCELED_BY_TRADER' }],
      ['OrderExpired', { remaining: 100, reason: 'END_OF_DAY' }],
      ['OrderModified', { quantity: 50, remaining: 50, priority: 'KEPT' }],
      ['IcebergReplenished', { price: 3_300, displayedQuantity: 100 }],
      ['OrderAccepted', { orderType: 'LIMIT', timeInForce: 'DAY', quantity: 100, price: 3_300 }],
      ['OrderRejected', { reason: 'PRICE_BAND' }],
      ['RequestRejected', { request: 'CANCEL', reason: 'UNKNOWN_ORDER' }],
      ['SessionEnded', {}],
    ] as const)
      given(opened, rested('o1', 'SELL', 3_300, 100, 2))
        .when(event(type, 3, data))
        .thenRow(BOOKS, { symbol: 'PETR4' }, { ...moved, status: 'OPEN', reference_price: 3_250 });
  });

  it("keeps the engine's halt and its reason until the book resumes", () => {
    const opened = recorded(book, 'BookOpened', {
      sequence: 1,
      at,
      symbol: 'PETR4',
      referencePrice: 3_250,
      priceBandBps: 1_000,
    });
    const halted = recorded(book, 'TradingHalted', { sequence: 2, at, reason: 'material fact pending' });
    given(opened)
      .when(halted)
      .thenRow(BOOKS, { symbol: 'PETR4' }, { status: 'HALTED', halt_reason: 'material fact pending' });
    given(opened, halted)
      .when(recorded(book, 'TradingResumed', { sequence: 3, at }))
      .thenRow(BOOKS, { symbol: 'PETR4' }, { status: 'OPEN', halt_reason: null, reference_price: 3_250 });
  });

  it('records when the engine set the reference price: at the opening, and at each new price', () => {
    const opened = recorded(book, 'BookOpened', {
      sequence: 1,
      at,
      symbol: 'PETR4',
      referencePrice: 3_250,
      priceBandBps: 1_000,
    });
    given()
      .when(opened)
      .thenRow(BOOKS, { symbol: 'PETR4' }, { reference_price: 3_250, reference_price_at: new Date(at) });
    given(opened)
      .when(recorded(book, 'ReferencePriceSet', { sequence: 2, at: at + 60_000, referencePrice: 3_400 }))
      .thenRow(
        BOOKS,
        { symbol: 'PETR4' },
        { reference_price: 3_400, reference_price_at: new Date(at + 60_000) },
      );
    // Other events leave it as the engine last set it.
    given(opened)
      .when(rested('o1', 'SELL', 3_300, 100, 2))
      .thenRow(BOOKS, { symbol: 'PETR4' }, { reference_price: 3_250, reference_price_at: new Date(at) });
  });

  it('records a book halted before it opened, with no reference price', () =>
    given()
      .when(recorded('book-PETR4F', 'TradingHalted', { sequence: 1, at, reason: 'auction' }))
      .thenRow(BOOKS, { symbol: 'PETR4F' }, { status: 'HALTED', halt_reason: 'auction', sequence: 1 }));

  it('equals the engine’s own depth after a trading day', () => {
    const tables = new MemoryTables();
    const events = new Map<string, BookEvent[]>();
    let position = 0;
    for (const item of tradingWorkload({ seed: 11, requests: 1_500, accounts: 6 })) {
      if (!item.streamId.startsWith('book-')) continue;
      const event = asRecorded(item.streamId, item.event, ++position);
      tables.apply(bookDepthProjection.project(event));
      const symbol = item.streamId.slice(5);
      events.set(symbol, [
        ...(events.get(symbol) ?? []),
        { type: item.event.type, data: item.event.data } as BookEvent,
      ]);
    }
    for (const [symbol, history] of events) {
      const engine = OrderBook.replay(symbol, history).depth();
      const levels = (side: string, direction: number) => {
        const map = new Map<number, { price: number; quantity: number; orders: number }>();
        for (const row of tables.rows(BOOK_ORDERS))
          if (
            row.symbol === symbol &&
            row.side === side &&
            row.resting === true &&
            Number(row.displayed) > 0
          ) {
            const level = map.get(Number(row.price)) ?? { price: Number(row.price), quantity: 0, orders: 0 };
            level.quantity += Number(row.displayed);
            level.orders += 1;
            map.set(level.price, level);
          }
        return [...map.values()].sort((a, b) => direction * (a.price - b.price));
      };
      expect(engine.bids.length + engine.asks.length, bookStreamId(symbol)).toBeGreaterThan(0);
      const [row] = tables.rows(BOOKS).filter((candidate) => candidate.symbol === symbol);
      expect(row?.sequence, bookStreamId(symbol)).toBe(
        (history.at(-1)!.data as { sequence: number }).sequence,
      );
      expect(levels('BUY', -1)).toEqual(engine.bids);
      expect(levels('SELL', 1)).toEqual(engine.asks);
    }
  });
});
