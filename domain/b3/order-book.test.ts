import { describe, expect, it } from 'vitest';
import { b3EventDefinitions, parseBookEvent, tradeExecuted } from './book-events.ts';
import {
  accepted,
  buy,
  cancel,
  canceled,
  catalogueHalt,
  catalogueResume,
  clockTick,
  endOfDay,
  expired,
  given,
  halted,
  marketBuy,
  marketSell,
  matched,
  modified,
  modify,
  opened,
  referencePrice,
  rejected,
  replenished,
  requestRejected,
  rested,
  resumed,
  SYMBOL,
  sell,
  sessionClose,
  stop,
  T0,
  triggered,
} from './book-specification.ts';
import { BOOK_SNAPSHOT_SCHEMA_VERSION, BookSnapshot, OrderBook } from './order-book.ts';

// Reference price R$10.00, band ±10%: limit prices from R$9.00 to R$11.00 are accepted.

/** A `PRICE_BAND` rejection of a new order: the band's edges (10.00 ± 10% unless given) and the price tried. */
const outsideBand = (orderId: string, price: number, priceBand = { low: 9_00, high: 11_00 }) => ({
  type: 'OrderRejected' as const,
  data: { orderId, reason: 'PRICE_BAND', priceBand, price },
});

describe('placing limit orders', () => {
  it('acknowledges an order and rests it when nothing crosses', () =>
    given(opened())
      .when(buy('b1', 100, 9_90))
      .then(accepted('b1', { side: 'BUY', orderType: 'LIMIT', quantity: 100, price: 9_90 }), rested('b1'))
      .thenReports({ type: 'ACK', orderId: 'b1', executionId: `${SYMBOL}-2` }));

  it('trades at the resting order’s price and fills both sides', () =>
    given(opened(), sell('s1', 100, 10_00))
      .when(buy('b1', 100, 10_05))
      .then(
        accepted('b1'),
        matched({
          price: 10_00,
          quantity: 100,
          restingOrderId: 's1',
          incomingOrderId: 'b1',
          restingRemaining: 0,
          incomingRemaining: 0,
          aggressorSide: 'BUY',
        }),
      )
      .thenReports(
        { type: 'ACK', orderId: 'b1' },
        {
          type: 'FILL',
          orderId: 's1',
          restingOrderId: 's1',
          incomingOrderId: 'b1',
          price: 10_00,
          quantity: 100,
        },
        {
          type: 'FILL',
          orderId: 'b1',
          restingOrderId: 's1',
          incomingOrderId: 'b1',
          price: 10_00,
          quantity: 100,
        },
      ));

  it('rests the unfilled rest of a partially filled order', () =>
    given(opened(), sell('s1', 100, 10_00))
      .when(buy('b1', 300, 10_00))
      .then(
        accepted('b1'),
        matched({ quantity: 100, incomingRemaining: 200 }),
        rested('b1', { remaining: 200 }),
      )
      .thenReports(
        { type: 'ACK' },
        { type: 'FILL', orderId: 's1' },
        { type: 'PARTIAL_FILL', orderId: 'b1' },
      ));

  it('sweeps better prices first, then the orders at one price in arrival order', () => {
    const outcome = given(
      opened(),
      sell('s-first', 100, 10_00),
      sell('s-best', 100, 9_95),
      sell('s-second', 100, 10_00),
    ).when(buy('b1', 300, 10_00));
    outcome.then(
      accepted('b1'),
      matched({ restingOrderId: 's-best', price: 9_95 }),
      matched({ restingOrderId: 's-first', price: 10_00 }),
      matched({ restingOrderId: 's-second', price: 10_00 }),
    );
  });

  it('does not trade beyond the limit price', () =>
    given(opened(), sell('s1', 100, 10_10))
      .when(buy('b1', 100, 10_00))
      .then(accepted('b1'), rested('b1')));

  it('gives every trade a deterministic id from the book sequence', () => {
    const book = new OrderBook(SYMBOL, { tradeId: (symbol, sequence) => `T-${symbol}-${sequence}` });
    book.execute(opened());
    book.execute(sell('s1', 100, 10_00));
    const events = book.execute(buy('b1', 100, 10_00));
    expect(events[1]).toMatchObject({ type: 'OrdersMatched', data: { tradeId: 'T-PETR4-5', sequence: 5 } });
  });

  it('numbers every event of the book in sequence', () => {
    const outcome = given(opened(), sell('s1', 100, 10_00)).when(buy('b1', 200, 10_00));
    expect(outcome.events.map((event) => event.data.sequence)).toEqual([4, 5, 6]);
  });
});

describe('rejecting orders', () => {
  it('rejects orders before the book opens: BOOK_NOT_OPEN', () =>
    given()
      .when(buy('b1', 100, 10_00))
      .then(rejected('b1', 'BOOK_NOT_OPEN')));

  it('rejects everything on a halted instrument: INSTRUMENT_HALTED', () =>
    given(opened(), halted())
      .when(buy('b1', 100, 10_00))
      .then(rejected('b1', 'INSTRUMENT_HALTED'))
      .thenReports({ type: 'REJECTED', orderId: 'b1', reason: 'INSTRUMENT_HALTED', request: 'NEW' }));

  it('rejects a modify on a halted instrument: INSTRUMENT_HALTED', () =>
    given(opened(), buy('b1', 100, 9_90), halted())
      .when(modify('b1', 'buyer', { price: 9_95 }))
      .then(requestRejected('b1', 'MODIFY', 'INSTRUMENT_HALTED')));

  it('still lets a trader cancel during a halt', () =>
    given(opened(), buy('b1', 100, 9_90), halted())
      .when(cancel('b1', 'buyer'))
      .then(canceled('b1', 'CANCELED_BY_TRADER')));

  it('trades again once resumed', () =>
    given(opened(), halted(), resumed())
      .when(buy('b1', 100, 10_00))
      .then(accepted('b1'), rested('b1')));

  it('trades nothing and fires no stop during a halt, and resumes with the book as it was', () => {
    const history = [
      opened(),
      sell('s1', 100, 10_00),
      stop('BUY', 'stop', 100, 10_00, { accountId: 'stopper' }),
      halted('circuit breaker'),
    ];
    given(...history)
      .when(buy('b1', 100, 10_00))
      .then(rejected('b1', 'INSTRUMENT_HALTED'));
    const { book } = given(...history).when(resumed());
    expect(book.depth().asks).toEqual([{ price: 10_00, quantity: 100, orders: 1 }]);
    expect(book.order('stop')).toBeDefined();
    given(...history, resumed())
      .when(buy('b1', 100, 10_00))
      .then(
        accepted('b1'),
        matched({ restingOrderId: 's1', incomingOrderId: 'b1', quantity: 100 }),
        triggered('stop', 10_00),
        { type: 'OrderCanceled' },
      );
  });

  it('rejects an id already live in the book: DUPLICATE_ORDER_ID', () =>
    given(opened(), buy('b1', 100, 9_90))
      .when(buy('b1', 100, 9_90))
      .then(rejected('b1', 'DUPLICATE_ORDER_ID')));

  it.each([0, -100, 10.5])('rejects a quantity of %s shares: INVALID_QUANTITY', (quantity) => {
    given(opened())
      .when(buy('b1', quantity, 10_00))
      .then(rejected('b1', 'INVALID_QUANTITY'));
  });

  it('rejects a limit order without a positive whole-cent price: INVALID_PRICE', () =>
    given(opened())
      .when(buy('b1', 100, 10.005))
      .then(rejected('b1', 'INVALID_PRICE')));

  it('rejects a market order with a price: INVALID_PRICE', () =>
    given(opened())
      .when(marketBuy('b1', 100, { price: 10_00 }))
      .then(rejected('b1', 'INVALID_PRICE')));

  it('rejects a stop order without a stop price, or a limit order with one: INVALID_STOP_PRICE', () => {
    given(opened())
      .when({ ...stop('BUY', 'b1', 100, 10_00), stopPrice: undefined })
      .then(rejected('b1', 'INVALID_STOP_PRICE'));
    given(opened())
      .when(buy('b2', 100, 10_00, { stopPrice: 10_50 }))
      .then(rejected('b2', 'INVALID_STOP_PRICE'));
  });

  it('rejects a GTD order without an expiry, or an expiry on another time in force: INVALID_EXPIRY', () => {
    given(opened())
      .when(buy('b1', 100, 10_00, { timeInForce: 'GTD' }))
      .then(rejected('b1', 'INVALID_EXPIRY'));
    given(opened())
      .when(buy('b3', 100, 10_00, { timeInForce: 'DAY', expiresAt: T0 + 1 }))
      .then(rejected('b3', 'INVALID_EXPIRY'));
  });

  it('GTD arriving at or after its expiry (delayed on its way): accepted and expired at once, without trading', () => {
    const outcome = given(opened(), sell('s1', 100, 10_00))
      .when(buy('b2', 100, 10_00, { timeInForce: 'GTD', expiresAt: T0 }))
      .then(accepted('b2'), expired('b2', 'GOOD_TILL_DATE'))
      .thenReports(
        { type: 'ACK', orderId: 'b2' },
        { type: 'EXPIRED', orderId: 'b2', reason: 'GOOD_TILL_DATE' },
      );
    expect(outcome.book.order('s1')).toMatchObject({ remaining: 100 });
    expect(outcome.book.order('b2')).toBeUndefined();
    // A stop too: it never parks.
    given(opened())
      .when({ ...stop('BUY', 'b3', 100, 10_50), timeInForce: 'GTD', expiresAt: T0 - 1 })
      .then(accepted('b3'), expired('b3', 'GOOD_TILL_DATE'));
  });

  it.each([
    ['as large as the order', buy('b1', 100, 10_00, { displayQuantity: 100 })],
    ['on an IOC order', buy('b1', 100, 10_00, { displayQuantity: 10, timeInForce: 'IOC' })],
    ['on a market order', marketBuy('b1', 100, { displayQuantity: 10 })],
    ['of zero shares', buy('b1', 100, 10_00, { displayQuantity: 0 })],
  ])('rejects an iceberg display quantity %s: INVALID_DISPLAY_QUANTITY', (_, command) => {
    given(opened()).when(command).then(rejected('b1', 'INVALID_DISPLAY_QUANTITY'));
  });

  it('rejects a limit price outside the price band, with the band and the price: PRICE_BAND', () => {
    const band = { low: 9_00, high: 11_00 };
    given(opened())
      .when(buy('b1', 100, 11_01))
      .then(outsideBand('b1', 11_01))
      .thenReports({ type: 'REJECTED', orderId: 'b1', reason: 'PRICE_BAND', priceBand: band, price: 11_01 });
    given(opened())
      .when(sell('s1', 100, 8_99))
      .then(outsideBand('s1', 8_99));
  });

  it('rejects by a band whose upper edge would pass the exact range with that edge at the largest price', () =>
    given(opened(9_000_000_000_000_000))
      .when(buy('b1', 100, 1_00))
      .then(outsideBand('b1', 1_00, { low: 8_100_000_000_000_000, high: Number.MAX_SAFE_INTEGER })));

  it.each([
    ['INVALID_PRICE', buy('b1', 100, 10.005)],
    ['NO_LIQUIDITY', marketBuy('b1', 100)],
  ] as const)('gives no band figures with any other rejection: %s', (reason, command) => {
    const [event] = given(opened()).when(command).events;
    expect(event).toMatchObject({ type: 'OrderRejected', data: { reason } });
    expect(event!.data).not.toHaveProperty('priceBand');
    expect(event!.data).not.toHaveProperty('price');
  });

  it('accepts limit prices on the band edges', () => {
    given(opened())
      .when(buy('b1', 100, 9_00))
      .then(accepted('b1'), rested('b1'));
    given(opened())
      .when(sell('s1', 100, 11_00))
      .then(accepted('s1'), rested('s1'));
  });

  it('rejects a stop price outside the price band: PRICE_BAND', () =>
    given(opened())
      .when(stop('BUY', 'b1', 100, 11_50))
      .then(outsideBand('b1', 11_50)));

  it('moves the band with the reference price', () =>
    given(opened(), referencePrice(20_00))
      .when(buy('b1', 100, 21_00))
      .then(accepted('b1'), rested('b1')));

  it('rejects a market order when the other side is empty: NO_LIQUIDITY', () =>
    given(opened(), buy('b0', 100, 9_90))
      .when(marketBuy('b1', 100))
      .then(rejected('b1', 'NO_LIQUIDITY')));

  it('rejects a market order whose best price is already beyond the band: PRICE_BAND', () =>
    given(opened(), sell('s1', 100, 10_90), referencePrice(9_00))
      .when(marketBuy('b1', 100))
      // 9.00 ± 10%: the best ask, 10.90, is what it would have traded at.
      .then(outsideBand('b1', 10_90, { low: 8_10, high: 9_90 })));

  it('rejects a FOK order the book cannot fill at once: FOK_NOT_FILLABLE', () =>
    given(opened(), sell('s1', 100, 10_00))
      .when(buy('b1', 200, 10_00, { timeInForce: 'FOK' }))
      .then(rejected('b1', 'FOK_NOT_FILLABLE')));
});

describe('market orders', () => {
  it('sweeps the book and cancels what is left: NO_LIQUIDITY', () =>
    given(opened(), sell('s1', 100, 10_00), sell('s2', 100, 10_50))
      .when(marketBuy('b1', 300))
      .then(
        accepted('b1', { orderType: 'MARKET' }),
        matched({ restingOrderId: 's1', price: 10_00 }),
        matched({ restingOrderId: 's2', price: 10_50 }),
        canceled('b1', 'NO_LIQUIDITY', { remaining: 100 }),
      )
      .thenReports(
        { type: 'ACK' },
        { type: 'FILL', orderId: 's1' },
        { type: 'PARTIAL_FILL', orderId: 'b1' },
        { type: 'FILL', orderId: 's2' },
        { type: 'PARTIAL_FILL', orderId: 'b1', remaining: 100 },
        { type: 'CANCELED', orderId: 'b1', reason: 'NO_LIQUIDITY', quantity: 100 },
      ));

  it('stops its sweep at the band edge and cancels the rest: PRICE_BAND', () =>
    given(opened(), sell('s1', 100, 10_00), sell('s2', 100, 10_90), referencePrice(9_50))
      .when(marketBuy('b1', 200))
      .then(
        accepted('b1'),
        matched({ restingOrderId: 's1' }),
        canceled('b1', 'PRICE_BAND', { remaining: 100 }),
      ));

  it('fills a market sell against the best bids', () =>
    given(opened(), buy('b1', 100, 9_90), buy('b2', 100, 9_95))
      .when(marketSell('s1', 150))
      .then(
        accepted('s1'),
        matched({ restingOrderId: 'b2', price: 9_95, quantity: 100 }),
        matched({
          restingOrderId: 'b1',
          price: 9_90,
          quantity: 50,
          restingRemaining: 50,
          incomingRemaining: 0,
        }),
      ));

  it('fills a FOK market order completely or not at all', () => {
    given(opened(), sell('s1', 100, 10_00))
      .when(marketBuy('b1', 101, { timeInForce: 'FOK' }))
      .then(rejected('b1', 'FOK_NOT_FILLABLE'));
    given(opened(), sell('s1', 100, 10_00), sell('s2', 100, 10_10))
      .when(marketBuy('b2', 200, { timeInForce: 'FOK' }))
      .then(accepted('b2'), matched({ restingOrderId: 's1' }), matched({ restingOrderId: 's2' }));
  });
});

describe('time in force', () => {
  it('IOC: trades what it can now and cancels the rest', () =>
    given(opened(), sell('s1', 100, 10_00))
      .when(buy('b1', 300, 10_00, { timeInForce: 'IOC' }))
      .then(
        accepted('b1'),
        matched({ quantity: 100 }),
        canceled('b1', 'IMMEDIATE_OR_CANCEL', { remaining: 200 }),
      ));

  it('IOC: cancels at once when nothing crosses', () =>
    given(opened())
      .when(buy('b1', 100, 10_00, { timeInForce: 'IOC' }))
      .then(accepted('b1'), canceled('b1', 'IMMEDIATE_OR_CANCEL')));

  it('FOK: fills across several prices when the whole quantity is there', () =>
    given(opened(), sell('s1', 100, 10_00), sell('s2', 100, 10_05))
      .when(buy('b1', 200, 10_05, { timeInForce: 'FOK' }))
      .then(
        accepted('b1'),
        matched({ restingOrderId: 's1' }),
        matched({ restingOrderId: 's2', incomingRemaining: 0 }),
      ));

  it('FOK: does not count the trader’s own orders, which it would never trade with', () =>
    given(opened(), sell('s1', 100, 10_00, { accountId: 'buyer' }), sell('s2', 100, 10_00))
      .when(buy('b1', 200, 10_00, { timeInForce: 'FOK' }))
      .then(rejected('b1', 'FOK_NOT_FILLABLE')));

  it('DAY: expires at the end of the day, with stops, in arrival order', () =>
    given(
      opened(),
      buy('b1', 100, 9_90),
      sell('s1', 100, 10_50, { timeInForce: 'GTC' }),
      stop('SELL', 's2', 100, 9_50),
      buy('b2', 100, 9_80),
    )
      .when(endOfDay())
      .then(expired('b1', 'END_OF_DAY'), expired('s2', 'END_OF_DAY'), expired('b2', 'END_OF_DAY'), {
        type: 'SessionEnded',
      })
      .thenReports(
        { type: 'EXPIRED', orderId: 'b1', reason: 'END_OF_DAY', quantity: 100 },
        { type: 'EXPIRED', orderId: 's2' },
        { type: 'EXPIRED', orderId: 'b2' },
      ));

  it('GTC: survives the end of the day', () => {
    const outcome = given(opened(), sell('s1', 100, 10_50, { timeInForce: 'GTC' })).when(endOfDay());
    expect(outcome.book.order('s1')).toMatchObject({ remaining: 100 });
  });

  it('GTD: expires with the first command at or after its expiry instant', () =>
    given(
      opened(),
      buy('b1', 100, 9_90, { timeInForce: 'GTD', expiresAt: T0 + 60_000 }),
      buy('b2', 100, 9_80),
    )
      .when(sell('s1', 100, 9_80, { at: T0 + 60_000 }))
      .then(expired('b1', 'GOOD_TILL_DATE'), accepted('s1'), matched({ restingOrderId: 'b2', price: 9_80 })));

  it('GTD: a clock tick expires it on a quiet book', () =>
    given(opened(), buy('b1', 100, 9_90, { timeInForce: 'GTD', expiresAt: T0 + 60_000 }))
      .when(clockTick(T0 + 60_001))
      .then(expired('b1', 'GOOD_TILL_DATE'))
      .thenReports({ type: 'EXPIRED', orderId: 'b1', reason: 'GOOD_TILL_DATE' }));

  it('GTD: stays before its expiry and through the end of the day', () => {
    const outcome = given(opened(), buy('b1', 100, 9_90, { timeInForce: 'GTD', expiresAt: T0 + 60_000 }))
      .when(endOfDay(T0 + 59_999))
      .then({ type: 'SessionEnded' });
    expect(outcome.book.order('b1')).toBeDefined();
  });
});

describe('the scheduled session close', () => {
  const close = T0 + 3_600_000;

  it('expires the DAY orders accepted before the close, even when run later, and keeps the next session’s', () => {
    const outcome = given(
      opened(),
      buy('before', 100, 9_90),
      sell('gtc', 100, 10_50, { timeInForce: 'GTC' }),
      // Accepted after the close, before the (late) close ran: it belongs to the next session.
      buy('after', 100, 9_80, { at: close + 1 }),
    )
      .when(sessionClose(close, close + 60_000))
      .then(expired('before', 'END_OF_DAY'), {
        type: 'SessionEnded',
        data: { at: close + 60_000, closedAt: close },
      });
    expect(outcome.book.order('after')).toMatchObject({ remaining: 100 });
    expect(outcome.book.order('gtc')).toMatchObject({ remaining: 100 });
    expect(outcome.book.lastSessionEnd).toBe(close);
  });

  it('runs a close that comes before a late catch-up of the previous one finished', () =>
    // The 12:45 close caught up at 12:46:10, an order at 12:45:57, then the 12:46 close.
    given(opened(), sessionClose(close, close + 70_000), buy('b1', 100, 9_90, { at: close + 57_000 }))
      .when(sessionClose(close + 60_000, close + 75_000))
      .then(expired('b1', 'END_OF_DAY'), { type: 'SessionEnded', data: { closedAt: close + 60_000 } }));

  it('does nothing when the book already ended a session at or after that close', () =>
    given(opened(), buy('b1', 100, 9_90), sessionClose(close), buy('b2', 100, 9_80, { at: close + 10 }))
      .when(sessionClose(close, close + 20))
      .then());

  it('ends no session for a close before the book opened: it had none then', () =>
    given(opened(), buy('b1', 100, 9_90))
      .when(sessionClose(T0 - 1, T0 + 60_000))
      .then());

  it('ends the session of a book opened at the close’s instant, its orders of that instant included', () =>
    given(opened(), buy('b1', 100, 9_90))
      .when(sessionClose(T0, T0 + 60_000))
      .then(expired('b1', 'END_OF_DAY'), { type: 'SessionEnded', data: { closedAt: T0 } }));

  it('keeps when it opened through a snapshot, so a restored book skips a close before it too', () => {
    const book = new OrderBook(SYMBOL);
    book.execute(opened());
    const restored = OrderBook.fromSnapshot(BookSnapshot.parse(JSON.parse(JSON.stringify(book.snapshot()))));
    expect(restored.hasSessionToEnd(T0 - 1)).toBe(false);
    expect(restored.hasSessionToEnd(T0)).toBe(true);
    expect(new OrderBook(SYMBOL).hasSessionToEnd(T0)).toBe(false);
  });

  it('runs the next day’s close after an earlier one', () =>
    given(opened(), sessionClose(close), buy('b1', 100, 9_90, { at: close + 10 }))
      .when(sessionClose(close + 86_400_000))
      .then(expired('b1', 'END_OF_DAY'), { type: 'SessionEnded' }));

  it('refuses a close in the future of its command', () =>
    expect(() => given(opened()).when(sessionClose(close, close - 1))).toThrow(RangeError));

  it('names the earliest pending GTD expiry, and none once it passed', () => {
    const { book } = given(
      opened(),
      buy('b1', 100, 9_90, { timeInForce: 'GTD', expiresAt: T0 + 60_000 }),
      buy('b2', 100, 9_80, { timeInForce: 'GTD', expiresAt: T0 + 30_000 }),
    ).when(clockTick(T0 + 30_000));
    expect(book.pendingExpiry).toBe(T0 + 60_000);
    book.execute(clockTick(T0 + 60_000));
    expect(book.pendingExpiry).toBeUndefined();
  });
});

describe('self-trade prevention', () => {
  it('cancels the resting order of the same account and trades on with the next', () =>
    given(opened(), sell('own', 100, 10_00, { accountId: 'alice' }), sell('s2', 100, 10_00))
      .when(buy('b1', 100, 10_00, { accountId: 'alice' }))
      .then(
        accepted('b1'),
        canceled('own', 'SELF_TRADE_PREVENTION', { remaining: 100 }),
        matched({ restingOrderId: 's2', incomingOrderId: 'b1' }),
      )
      .thenReports(
        { type: 'ACK', orderId: 'b1' },
        { type: 'CANCELED', orderId: 'own', reason: 'SELF_TRADE_PREVENTION' },
        { type: 'FILL', orderId: 's2' },
        { type: 'FILL', orderId: 'b1' },
      ));

  it('rests the incoming order when only its own orders crossed', () => {
    const outcome = given(opened(), sell('own', 100, 10_00, { accountId: 'alice' }))
      .when(buy('b1', 100, 10_00, { accountId: 'alice' }))
      .then(accepted('b1'), canceled('own', 'SELF_TRADE_PREVENTION'), rested('b1'));
    expect(outcome.book.bestBid).toBe(10_00);
    expect(outcome.book.bestAsk).toBeUndefined();
  });
});

describe('iceberg orders', () => {
  it('shows only its display quantity', () => {
    const outcome = given(opened())
      .when(sell('ice', 1_000, 10_00, { displayQuantity: 100 }))
      .then(
        accepted('ice', { displayQuantity: 100 }),
        rested('ice', { remaining: 1_000, displayedQuantity: 100 }),
      );
    expect(outcome.book.depth().asks).toEqual([{ price: 10_00, quantity: 100, orders: 1 }]);
  });

  it('replenishes its slice at the back of the queue', () =>
    given(opened(), sell('ice', 300, 10_00, { displayQuantity: 100 }), sell('s2', 100, 10_00))
      .when(buy('b1', 250, 10_00))
      .then(
        accepted('b1'),
        matched({ restingOrderId: 'ice', quantity: 100, restingRemaining: 200 }),
        replenished('ice', 100),
        matched({ restingOrderId: 's2', quantity: 100 }),
        matched({ restingOrderId: 'ice', quantity: 50, restingRemaining: 150, incomingRemaining: 0 }),
      ));

  it('shows the last, smaller slice when less than the display quantity is left', () =>
    given(opened(), sell('ice', 150, 10_00, { displayQuantity: 100 }))
      .when(buy('b1', 100, 10_00))
      .then(accepted('b1'), matched({ restingOrderId: 'ice' }), replenished('ice', 50)));
});

describe('stop orders', () => {
  it('parks a stop until the last trade reaches its stop price', () =>
    given(opened(), stop('BUY', 'stop', 100, 10_10), sell('s1', 100, 10_10), sell('s2', 100, 10_20))
      .when(buy('b1', 100, 10_10))
      .then(
        accepted('b1'),
        matched({ restingOrderId: 's1', price: 10_10 }),
        triggered('stop', 10_10),
        matched({ restingOrderId: 's2', incomingOrderId: 'stop', price: 10_20 }),
      ));

  it('a stop-limit becomes a limit order when triggered, and rests what it cannot trade', () =>
    given(
      opened(),
      stop('SELL', 'sl', 200, 9_90, { price: 9_85 }),
      buy('b1', 100, 9_90),
      buy('b2', 100, 9_80),
    )
      .when(sell('s1', 100, 9_90))
      .then(
        accepted('s1'),
        matched({ restingOrderId: 'b1', price: 9_90 }),
        triggered('sl', 9_90),
        rested('sl', { price: 9_85, remaining: 200 }),
      ));

  it('triggers at once when the last trade is already through the stop price', () =>
    given(opened(), sell('s1', 100, 10_00), buy('b1', 100, 10_00), sell('s2', 100, 10_05))
      .when(stop('BUY', 'stop', 100, 9_95))
      .then(
        accepted('stop', { orderType: 'STOP' }),
        triggered('stop', 10_00),
        matched({ restingOrderId: 's2' }),
      ));

  it('a triggered stop with nothing to trade is canceled: NO_LIQUIDITY', () =>
    given(opened(), stop('SELL', 'stop', 100, 10_00), sell('s1', 100, 10_00))
      .when(buy('b1', 100, 10_00))
      .then(accepted('b1'), matched({}), triggered('stop', 10_00), canceled('stop', 'NO_LIQUIDITY')));

  it('a triggered FOK stop-limit that cannot fill is canceled: FOK_NOT_FILLABLE', () =>
    given(
      opened(),
      stop('BUY', 'stop', 500, 10_00, { price: 10_10, timeInForce: 'FOK' }),
      sell('s1', 100, 10_00),
      sell('s2', 100, 10_05),
    )
      .when(buy('b1', 100, 10_00))
      .then(accepted('b1'), matched({}), triggered('stop', 10_00), canceled('stop', 'FOK_NOT_FILLABLE')));

  it('a triggered stop sweeps no further than the band: PRICE_BAND', () =>
    given(
      opened(),
      stop('BUY', 'stop', 200, 10_00),
      sell('s1', 100, 10_00),
      sell('s2', 100, 10_00),
      sell('s3', 100, 10_90),
      referencePrice(9_50),
    )
      .when(buy('b1', 100, 10_00))
      .then(
        accepted('b1'),
        matched({ restingOrderId: 's1' }),
        triggered('stop', 10_00),
        matched({ restingOrderId: 's2', incomingOrderId: 'stop' }),
        canceled('stop', 'PRICE_BAND', { remaining: 100 }),
      ));

  it('can be canceled while parked', () =>
    given(opened(), stop('BUY', 'stop', 100, 10_10))
      .when(cancel('stop', 'buyer'))
      .then(canceled('stop', 'CANCELED_BY_TRADER')));
});

describe('cancel', () => {
  it('takes the order out of the book', () => {
    const outcome = given(opened(), buy('b1', 100, 9_90))
      .when(cancel('b1', 'buyer'))
      .then(canceled('b1', 'CANCELED_BY_TRADER', { remaining: 100 }))
      .thenReports({ type: 'CANCELED', orderId: 'b1', reason: 'CANCELED_BY_TRADER' });
    expect(outcome.book.bestBid).toBeUndefined();
  });

  it('rejects an unknown order: UNKNOWN_ORDER', () =>
    given(opened())
      .when(cancel('nope', 'buyer'))
      .then(requestRejected('nope', 'CANCEL', 'UNKNOWN_ORDER'))
      .thenReports({ type: 'REJECTED', orderId: 'nope', reason: 'UNKNOWN_ORDER', request: 'CANCEL' }));

  it('rejects another account’s order as unknown: UNKNOWN_ORDER', () =>
    given(opened(), buy('b1', 100, 9_90))
      .when(cancel('b1', 'mallory'))
      .then(requestRejected('b1', 'CANCEL', 'UNKNOWN_ORDER')));

  it('rejects a filled order as unknown: UNKNOWN_ORDER', () =>
    given(opened(), sell('s1', 100, 10_00), buy('b1', 100, 10_00))
      .when(cancel('s1', 'seller'))
      .then(requestRejected('s1', 'CANCEL', 'UNKNOWN_ORDER')));
});

describe('modify', () => {
  const queue = (outcome: { book: OrderBook }) => outcome.book.snapshot().bids.map((order) => order.orderId);

  it('a quantity decrease keeps time priority', () => {
    const outcome = given(opened(), buy('b1', 300, 9_90), buy('b2', 100, 9_90))
      .when(modify('b1', 'buyer', { quantity: 200 }))
      .then(modified('b1', { quantity: 200, remaining: 200, priority: 'KEPT' }))
      .thenReports({ type: 'ACK', request: 'MODIFY', orderId: 'b1', quantity: 200 });
    expect(queue(outcome)).toEqual(['b1', 'b2']);
  });

  it('a quantity increase loses time priority', () => {
    const outcome = given(opened(), buy('b1', 100, 9_90), buy('b2', 100, 9_90))
      .when(modify('b1', 'buyer', { quantity: 200 }))
      .then(modified('b1', { priority: 'LOST' }), rested('b1', { remaining: 200 }));
    expect(queue(outcome)).toEqual(['b2', 'b1']);
  });

  it('a price change loses time priority', () => {
    const outcome = given(opened(), buy('b1', 100, 9_90), buy('b2', 100, 9_95))
      .when(modify('b2', 'buyer', { price: 9_90 }))
      .then(modified('b2', { price: 9_90, priority: 'LOST' }), rested('b2'));
    expect(queue(outcome)).toEqual(['b1', 'b2']);
  });

  it('a price change that crosses the book trades', () =>
    given(opened(), buy('b1', 100, 9_90), sell('s1', 100, 10_00))
      .when(modify('b1', 'buyer', { price: 10_00 }))
      .then(modified('b1', { priority: 'LOST' }), matched({ restingOrderId: 's1', incomingOrderId: 'b1' })));

  it('counts the new quantity in total shares, filled ones included', () =>
    given(opened(), buy('b1', 300, 10_00), sell('s1', 100, 10_00))
      .when(modify('b1', 'buyer', { quantity: 200 }))
      .then(modified('b1', { quantity: 200, remaining: 100, priority: 'KEPT' })));

  it('rejects a quantity at or below what is already filled: INVALID_QUANTITY', () =>
    given(opened(), buy('b1', 300, 10_00), sell('s1', 100, 10_00))
      .when(modify('b1', 'buyer', { quantity: 100 }))
      .then(requestRejected('b1', 'MODIFY', 'INVALID_QUANTITY')));

  it('rejects a price outside the band: PRICE_BAND', () =>
    given(opened(), buy('b1', 100, 9_90))
      .when(modify('b1', 'buyer', { price: 8_00 }))
      .then({
        type: 'RequestRejected',
        data: {
          orderId: 'b1',
          request: 'MODIFY',
          reason: 'PRICE_BAND',
          priceBand: { low: 9_00, high: 11_00 },
          price: 8_00,
        },
      })
      .thenReports({ type: 'REJECTED', request: 'MODIFY', reason: 'PRICE_BAND', price: 8_00 }));

  it('rejects a price on a stop order without a limit: INVALID_PRICE', () =>
    given(opened(), stop('BUY', 'stop', 100, 10_10))
      .when(modify('stop', 'buyer', { price: 10_20 }))
      .then(requestRejected('stop', 'MODIFY', 'INVALID_PRICE')));

  it('rejects an unknown order: UNKNOWN_ORDER', () =>
    given(opened())
      .when(modify('nope', 'buyer', { quantity: 100 }))
      .then(requestRejected('nope', 'MODIFY', 'UNKNOWN_ORDER')));

  it('changes a parked stop-limit in place', () => {
    const outcome = given(opened(), stop('BUY', 'stop', 100, 10_10, { price: 10_20 }))
      .when(modify('stop', 'buyer', { price: 10_30, quantity: 200 }))
      .then(modified('stop', { price: 10_30, quantity: 200, priority: 'KEPT' }));
    expect(outcome.book.order('stop')).toMatchObject({ price: 10_30, quantity: 200, parked: true });
  });

  it('shrinks an iceberg’s shown slice when fewer shares remain than it shows', () => {
    const outcome = given(opened(), sell('ice', 1_000, 10_00, { displayQuantity: 300 }))
      .when(modify('ice', 'seller', { quantity: 200 }))
      .then(modified('ice', { priority: 'KEPT' }));
    expect(outcome.book.depth().asks).toEqual([{ price: 10_00, quantity: 200, orders: 1 }]);
  });
});

describe('the book stream', () => {
  it('halting and resuming are events, and repeating them changes nothing', () => {
    given(opened()).when(halted()).then({ type: 'TradingHalted' });
    given(opened(), halted()).when(halted()).then();
    given(opened(), halted()).when(halted('another reason')).then();
    given(opened(), halted()).when(resumed()).then({ type: 'TradingResumed' });
    given(opened()).when(resumed()).then();
  });

  it('records why a book was halted', () => {
    const { book } = given(opened(), buy('b1', 100, 9_90))
      .when(halted('material fact pending'))
      .then({ type: 'TradingHalted', data: { reason: 'material fact pending' } });
    expect(book.bookStatus).toBe('HALTED');
    expect(book.depth().bids).toEqual([{ price: 9_90, quantity: 100, orders: 1 }]);
  });

  it('halts a book that never opened: the order that would open it is refused, and a resume leaves it not open', () => {
    const { book } = given().when(halted('before the open')).then({ type: 'TradingHalted' });
    expect(book.bookStatus).toBe('HALTED');
    given(halted())
      .when(buy('b1', 100, 10_00))
      .then(rejected('b1', 'INSTRUMENT_HALTED'));
    const resumedBook = given(halted()).when(resumed()).then({ type: 'TradingResumed' }).book;
    expect(resumedBook.bookStatus).toBe('NOT_OPEN');
    // It opens as any new book does.
    given(halted(), resumed(), opened())
      .when(buy('b1', 100, 10_00))
      .then(accepted('b1'), rested('b1'));
  });

  it("applies the catalogue's newest halt or resume and ignores repeats and overtaken ones", () => {
    given(opened())
      .when(catalogueHalt(2))
      .then({ type: 'TradingHalted', data: { catalogueVersion: 2 } });
    // Redelivered: nothing.
    given(opened(), catalogueHalt(2)).when(catalogueHalt(2)).then();
    given(opened(), catalogueHalt(2)).when(catalogueResume(3)).then({ type: 'TradingResumed' });
    // A resume (3) retried behind the next halt (4) comes last: it is stale, the book stays halted.
    const { book } = given(opened(), catalogueHalt(2), catalogueHalt(4)).when(catalogueResume(3)).then();
    expect(book.bookStatus).toBe('HALTED');
    // A newer halt of a book halted already is recorded all the same, so the older resume stays stale.
    given(opened(), catalogueHalt(2))
      .when(catalogueHalt(4))
      .then({ type: 'TradingHalted', data: { catalogueVersion: 4 } });
    // An operator's unversioned halt or resume still follows the book's state.
    given(opened(), catalogueHalt(2)).when(halted()).then();
    given(opened(), catalogueHalt(2)).when(resumed()).then({ type: 'TradingResumed' });
  });

  it('keeps a halt across a snapshot', () => {
    for (const history of [[opened(), buy('b1', 100, 9_90), halted()], [halted()], [catalogueHalt(5)]]) {
      const { book } = given(...history).when(resumed());
      const live = given(...history).book;
      const snapshot = BookSnapshot.parse(JSON.parse(JSON.stringify(live.snapshot())));
      const rebuilt = OrderBook.fromSnapshot(snapshot);
      expect(rebuilt.bookStatus).toBe('HALTED');
      rebuilt.execute(resumed());
      expect(rebuilt.snapshot()).toEqual(book.snapshot());
    }
  });

  it('refuses to open a book twice', () => {
    const { book } = given(opened());
    expect(() => book.execute(opened())).toThrow(/already open/);
  });

  it('rebuilds from a snapshot plus the events after it', () => {
    const book = new OrderBook(SYMBOL);
    book.execute(opened());
    book.execute(sell('s1', 300, 10_00, { displayQuantity: 100 }));
    book.execute(stop('BUY', 'stop', 100, 10_20));
    const snapshot = BookSnapshot.parse(JSON.parse(JSON.stringify(book.snapshot())));
    const tail = [...book.execute(buy('b1', 150, 10_00)), ...book.execute(sell('s2', 100, 10_20))];
    const rebuilt = OrderBook.fromSnapshot(snapshot);
    for (const event of tail) rebuilt.apply(parseBookEvent(JSON.parse(JSON.stringify(event))));
    expect(rebuilt.snapshot()).toEqual(book.snapshot());
    expect(BOOK_SNAPSHOT_SCHEMA_VERSION).toBe(3);
  });

  it('registers every event type once, for the event store', () => {
    const types = b3EventDefinitions.map((definition) => definition.type);
    expect(new Set(types).size).toBe(types.length);
    expect(types).toContain('TradeExecuted');
  });

  it('writes each trade to its own trade stream', () => {
    const outcome = given(opened(), sell('s1', 100, 10_00)).when(buy('b1', 100, 10_00));
    const match = outcome.events[1]!;
    if (match.type !== 'OrdersMatched') throw new Error('expected a match');
    const trade = tradeExecuted(SYMBOL, match.data);
    const definition = b3EventDefinitions.find((entry) => entry.type === 'TradeExecuted')!;
    expect(definition.schema.parse(trade.data)).toEqual({
      tradeId: `${SYMBOL}-5`,
      symbol: SYMBOL,
      price: 10_00,
      quantity: 100,
      buyOrderId: 'b1',
      buyAccountId: 'buyer',
      sellOrderId: 's1',
      sellAccountId: 'seller',
      aggressorSide: 'BUY',
      bookSequence: 5,
      at: T0,
    });
  });
});
