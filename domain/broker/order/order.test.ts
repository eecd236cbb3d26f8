import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { replay } from '../../shared/decider.ts';
import { DomainError } from '../../shared/domain-error.ts';
import { specification } from '../../shared/testing.ts';
import { InvalidPrice, InvalidQuantity } from '../errors.ts';
import { defaultCatalogue, instrumentFromSpec } from '../instrument/catalogue.ts';
import { InstrumentNotFound, TickSizeViolation } from '../instrument/errors.ts';
import { walletDecider } from '../wallet/wallet.ts';
import {
  ExpiryInPast,
  ExpiryNotAllowed,
  ExpiryRequired,
  InstrumentHalted,
  InvalidOrderType,
  InvalidSide,
  InvalidTimeInForce,
  LotSizeViolation,
  OrderAlreadyPlaced,
  OrderClosed,
  OrderHasExecutions,
  OrderNotAccepted,
  OrderNotFound,
  Overfill,
  PriceNotAllowed,
  PriceOutsideLimit,
  PriceRequired,
  RejectReasonRequired,
  StopPriceNotAllowed,
  StopPriceRequired,
  TimeInForceNotAllowed,
} from './errors.ts';
import { type OrderEvent, orderEvents } from './events.ts';
import { type Order, type OrderCommand, orderDecider, remainingQuantity } from './order.ts';
import { reservationFor } from './reservation.ts';

const given = specification(orderDecider, { events: orderEvents });
const at = '2025-03-14T13:00:00.000Z';
const later = '2025-03-14T14:00:00.000Z';
const petr4 = instrumentFromSpec(defaultCatalogue.find((spec) => spec.symbol === 'PETR4')!);

type Place = Extract<OrderCommand, { type: 'PlaceOrder' }>;
const place = (overrides: Partial<Place> = {}): Place => ({
  type: 'PlaceOrder',
  orderId: 'o1',
  accountId: 'a1',
  symbol: 'PETR4',
  side: 'BUY',
  orderType: 'LIMIT',
  quantity: 200,
  price: 3250,
  instrument: petr4,
  at,
  ...overrides,
});
const placedData = {
  orderId: 'o1',
  accountId: 'a1',
  symbol: 'PETR4',
  custodySymbol: 'PETR4',
  market: 'STANDARD',
  side: 'BUY',
  type: 'LIMIT',
  quantity: 200,
  price: 3250,
  stopPrice: null,
  timeInForce: 'DAY',
  expiresAt: null,
  placedAt: at,
} as const;
const placed: OrderEvent = { type: 'OrderPlaced', data: placedData };
const accepted: OrderEvent = { type: 'OrderAccepted', data: { orderId: 'o1', at } };
const executed = (
  executionId: string,
  quantity: number,
  price: number,
  filledQuantity: number,
  averagePrice: number,
): OrderEvent => ({
  type: 'ExecutionRecorded',
  data: {
    orderId: 'o1',
    executionId,
    quantity,
    price,
    executedAt: at,
    filledQuantity,
    remainingQuantity: 200 - filledQuantity,
    averagePrice,
  },
});
const execute = (executionId: string, quantity: number, price: number): OrderCommand => ({
  type: 'RecordExecution',
  executionId,
  quantity,
  price,
  at,
});
const rejected: OrderEvent = {
  type: 'OrderRejected',
  data: { orderId: 'o1', reason: 'INSUFFICIENT_FUNDS', detail: null, at },
};
const canceled: OrderEvent = {
  type: 'OrderCanceled',
  data: { orderId: 'o1', canceledQuantity: 200, reason: null, at },
};
const expired: OrderEvent = { type: 'OrderExpired', data: { orderId: 'o1', expiredQuantity: 200, at } };
const filledBy = [
  executed('x1', 200, 3250, 200, 3250),
  { type: 'OrderFilled', data: { orderId: 'o1', filledQuantity: 200, averagePrice: 3250, at } },
] as OrderEvent[];

describe('placing an order', () => {
  it('places a limit buy as PENDING_NEW', () => given([]).when(place()).then([placed]));
  it('starts the order pending, with nothing filled', () =>
    given([])
      .when(place())
      .thenState((order) =>
        expect(order).toMatchObject({
          status: 'PENDING_NEW',
          filledQuantity: 0,
          averagePrice: 0,
          executions: [],
        }),
      ));
  it('places a fractional order on the same custody position', () =>
    given([])
      .when(place({ symbol: 'PETR4F', quantity: 37 }))
      .then([
        {
          type: 'OrderPlaced',
          data: { ...placedData, symbol: 'PETR4F', market: 'FRACTIONAL', quantity: 37 },
        },
      ]));
  it('places a market sell without a price', () =>
    given([])
      .when(place({ side: 'SELL', orderType: 'MARKET', price: undefined, timeInForce: 'IOC' }))
      .then([
        {
          type: 'OrderPlaced',
          data: { ...placedData, side: 'SELL', type: 'MARKET', price: null, timeInForce: 'IOC' },
        },
      ]));
  it('places a stop-limit with its trigger', () =>
    given([])
      .when(place({ orderType: 'STOP_LIMIT', stopPrice: 3200, timeInForce: 'GTC' }))
      .then([
        {
          type: 'OrderPlaced',
          data: { ...placedData, type: 'STOP_LIMIT', stopPrice: 3200, timeInForce: 'GTC' },
        },
      ]));
  it('places a good-till-date order with its expiry', () =>
    given([])
      .when(place({ timeInForce: 'GTD', expiresAt: later }))
      .then([{ type: 'OrderPlaced', data: { ...placedData, timeInForce: 'GTD', expiresAt: later } }]));

  it('refuses a second placement on the same order', () =>
    given([placed]).when(place()).thenThrows(OrderAlreadyPlaced));
  it('refuses a symbol the instrument does not trade', () =>
    given([])
      .when(place({ symbol: 'VALE3' }))
      .thenThrows(InstrumentNotFound));
  it('refuses an instrument that is not listed', () =>
    given([])
      .when(place({ instrument: { ...petr4, listed: false } }))
      .thenThrows(InstrumentNotFound));
  it('refuses a halted instrument', () =>
    given([])
      .when(place({ instrument: { ...petr4, status: 'HALTED', haltReason: 'circuit breaker' } }))
      .thenThrows(InstrumentHalted, { symbol: 'PETR4', haltReason: 'circuit breaker' }));
  it('refuses a side other than BUY or SELL', () =>
    given([])
      .when(place({ side: 'SHORT' as never }))
      .thenThrows(InvalidSide));
  it('refuses an unknown order type', () =>
    given([])
      .when(place({ orderType: 'TRAILING' as never }))
      .thenThrows(InvalidOrderType));
  it('refuses an unknown time in force', () =>
    given([])
      .when(place({ timeInForce: 'GTX' as never }))
      .thenThrows(InvalidTimeInForce));
  it('refuses a quantity that is not a whole positive number', () => {
    given([])
      .when(place({ quantity: 0 }))
      .thenThrows(InvalidQuantity);
    given([])
      .when(place({ quantity: 100.5 }))
      .thenThrows(InvalidQuantity);
  });
  it('refuses a standard-market quantity that is not a whole number of lots', () =>
    given([])
      .when(place({ quantity: 150 }))
      .thenThrows(LotSizeViolation, { quantity: 150 }));
  it('refuses a fractional quantity of a full lot or more', () =>
    given([])
      .when(place({ symbol: 'PETR4F', quantity: 100 }))
      .thenThrows(LotSizeViolation, { quantity: 100 }));
  it('refuses a limit order without a price', () =>
    given([])
      .when(place({ price: null }))
      .thenThrows(PriceRequired));
  it('refuses a stop-limit order without a price', () =>
    given([])
      .when(place({ orderType: 'STOP_LIMIT', price: null, stopPrice: 3200 }))
      .thenThrows(PriceRequired));
  it('refuses a market order with a price', () =>
    given([])
      .when(place({ orderType: 'MARKET' }))
      .thenThrows(PriceNotAllowed));
  it('refuses a stop order without a stop price', () =>
    given([])
      .when(place({ orderType: 'STOP', price: null }))
      .thenThrows(StopPriceRequired));
  it('refuses a stop price on a limit order', () =>
    given([])
      .when(place({ stopPrice: 3200 }))
      .thenThrows(StopPriceNotAllowed));
  it('refuses a non-positive price', () =>
    given([])
      .when(place({ price: -10 }))
      .thenThrows(InvalidPrice));
  it('refuses a price off the tick', () =>
    given([])
      .when(place({ instrument: { ...petr4, tickSize: 5 }, price: 3251 }))
      .thenThrows(TickSizeViolation, { price: 3251, tickSize: 5, field: 'price' }));
  it('refuses a stop price off the tick, naming it', () =>
    given([])
      .when(place({ instrument: { ...petr4, tickSize: 5 }, orderType: 'STOP', price: null, stopPrice: 3252 }))
      .thenThrows(TickSizeViolation, { price: 3252, tickSize: 5, field: 'stopPrice' }));
  it('refuses a market order that would rest: GTC or GTD', () => {
    given([])
      .when(place({ orderType: 'MARKET', price: null, timeInForce: 'GTC' }))
      .thenThrows(TimeInForceNotAllowed);
    given([])
      .when(place({ orderType: 'MARKET', price: null, timeInForce: 'GTD', expiresAt: later }))
      .thenThrows(TimeInForceNotAllowed);
  });
  it('refuses a GTD order without an expiry', () =>
    given([])
      .when(place({ timeInForce: 'GTD' }))
      .thenThrows(ExpiryRequired));
  it('refuses a GTD order that expires before it is placed', () =>
    given([])
      .when(place({ timeInForce: 'GTD', expiresAt: at }))
      .thenThrows(ExpiryInPast));
  it('refuses an expiry on an order that is not GTD', () =>
    given([])
      .when(place({ timeInForce: 'GTC', expiresAt: later }))
      .thenThrows(ExpiryNotAllowed));
});

describe('accepting and rejecting', () => {
  it('accepts a pending order', () => given([placed]).when({ type: 'AcceptOrder', at }).then([accepted]));
  it('makes an accepted order NEW', () =>
    given([placed])
      .when({ type: 'AcceptOrder', at })
      .thenState((order) => expect(order.status).toBe('NEW')));
  it('changes nothing when accepted again', () =>
    given([placed, accepted]).when({ type: 'AcceptOrder', at }).thenNothing());
  it('refuses to accept a rejected order', () =>
    given([placed, rejected])
      .when({ type: 'AcceptOrder', at })
      .thenThrows(OrderClosed, { status: 'REJECTED' }));
  it('refuses a command on an order never placed', () =>
    given([]).when({ type: 'AcceptOrder', at }).thenThrows(OrderNotFound));

  it('rejects a pending order with a reason', () =>
    given([placed]).when({ type: 'RejectOrder', reason: 'INSUFFICIENT_FUNDS', at }).then([rejected]));
  it('records the reject reason', () =>
    given([placed])
      .when({ type: 'RejectOrder', reason: 'INSUFFICIENT_FUNDS', at })
      .thenState((order) =>
        expect(order).toMatchObject({ status: 'REJECTED', rejectReason: 'INSUFFICIENT_FUNDS' }),
      ));
  it('rejects an accepted order the exchange refused', () =>
    given([placed, accepted])
      .when({ type: 'RejectOrder', reason: 'PRICE_BAND', detail: 'limit 40.00 above band', at })
      .then([
        {
          type: 'OrderRejected',
          data: { orderId: 'o1', reason: 'PRICE_BAND', detail: 'limit 40.00 above band', at },
        },
      ]));
  it('changes nothing when rejected again', () =>
    given([placed, rejected]).when({ type: 'RejectOrder', reason: 'INSUFFICIENT_FUNDS', at }).thenNothing());
  it('refuses to reject without a reason', () =>
    given([placed]).when({ type: 'RejectOrder', reason: '', at }).thenThrows(RejectReasonRequired));
  it('refuses to reject an order that has traded', () =>
    given([placed, accepted, executed('x1', 100, 3250, 100, 3250)])
      .when({ type: 'RejectOrder', reason: 'PRICE_BAND', at })
      .thenThrows(OrderHasExecutions, { filledQuantity: 100 }));
  it('refuses to reject a canceled order', () =>
    given([placed, canceled]).when({ type: 'RejectOrder', reason: 'X', at }).thenThrows(OrderClosed));
});

describe('executions', () => {
  it('records a partial fill', () =>
    given([placed, accepted])
      .when(execute('x1', 100, 3240))
      .then([executed('x1', 100, 3240, 100, 3240)]));
  it('makes a partly traded order PARTIALLY_FILLED with its average price', () =>
    given([placed, accepted, executed('x1', 100, 3240, 100, 3240)])
      .when(execute('x2', 50, 3250))
      .thenState((order) =>
        expect(order).toMatchObject({
          status: 'PARTIALLY_FILLED',
          filledQuantity: 150,
          filledNotional: 100 * 3240 + 50 * 3250,
          averagePrice: 3243,
          executions: [
            { executionId: 'x1', quantity: 100, price: 3240, executedAt: at },
            { executionId: 'x2', quantity: 50, price: 3250, executedAt: at },
          ],
        }),
      ));
  it('fills the order with the last shares', () =>
    given([placed, accepted])
      .when(execute('x1', 200, 3250))
      .then(filledBy));
  it('makes a fully traded order FILLED', () =>
    given([placed, accepted])
      .when(execute('x1', 200, 3250))
      .thenState((order) =>
        expect(order).toMatchObject({ status: 'FILLED', filledQuantity: 200, averagePrice: 3250 }),
      ));
  it('counts the same execution once', () =>
    given([placed, accepted, executed('x1', 100, 3240, 100, 3240)])
      .when(execute('x1', 100, 3240))
      .thenNothing());
  it('counts the same execution once even after the order filled', () =>
    given([placed, accepted, ...filledBy])
      .when(execute('x1', 200, 3250))
      .thenNothing());
  it('refuses an execution beyond what is left', () =>
    given([placed, accepted, executed('x1', 100, 3240, 100, 3240)])
      .when(execute('x2', 101, 3240))
      .thenThrows(Overfill, { quantity: 101, remainingQuantity: 100 }));
  it('refuses a buy executed above its limit', () =>
    given([placed, accepted])
      .when(execute('x1', 100, 3251))
      .thenThrows(PriceOutsideLimit));
  it('refuses a sell executed below its limit', () =>
    given([{ type: 'OrderPlaced', data: { ...placedData, side: 'SELL' } }, accepted])
      .when(execute('x1', 100, 3249))
      .thenThrows(PriceOutsideLimit, { side: 'SELL', price: 3249, limitPrice: 3250 }));
  it('accepts any price for a market order', () =>
    given([{ type: 'OrderPlaced', data: { ...placedData, type: 'MARKET', price: null } }, accepted])
      .when(execute('x1', 100, 9999))
      .thenState((order) => expect(order.averagePrice).toBe(9999)));
  it('refuses an execution before the order is accepted', () =>
    given([placed])
      .when(execute('x1', 100, 3250))
      .thenThrows(OrderNotAccepted));
  it('refuses an execution on a closed order', () =>
    given([placed, accepted, canceled])
      .when(execute('x9', 100, 3250))
      .thenThrows(OrderClosed, { status: 'CANCELED' }));
  it('refuses a non-positive execution quantity or price', () => {
    given([placed, accepted])
      .when(execute('x1', 0, 3250))
      .thenThrows(InvalidQuantity);
    given([placed, accepted])
      .when(execute('x1', 100, 0))
      .thenThrows(InvalidPrice);
  });
});

describe('cancel and expiry', () => {
  const requested: OrderEvent = {
    type: 'OrderCancelRequested',
    data: { orderId: 'o1', requestedBy: 'a1', at },
  };
  it('cancels, instead of accepting, an order whose cancel was asked for while it was pending', () => {
    const canceledBy = (reason: string): OrderEvent => ({
      type: 'OrderCanceled',
      data: { orderId: 'o1', canceledQuantity: 200, reason, at: later },
    });
    given([placed, requested])
      .when({ type: 'AcceptOrder', at: later })
      .then([canceledBy('CANCELED_BY_TRADER')]);
    given([placed, { ...requested, data: { ...requested.data, requestedBy: 'admin-1' } } as OrderEvent])
      .when({ type: 'AcceptOrder', at: later })
      .then([canceledBy('CANCELED_BY_ADMIN')]);
  });
  it('records a cancel request, leaving the status as it is', () =>
    given([placed, accepted])
      .when({ type: 'RequestCancel', requestedBy: 'a1', at })
      .thenState((order) => expect(order).toMatchObject({ status: 'NEW', cancelRequested: true })));
  it('emits the cancel request', () =>
    given([placed, accepted]).when({ type: 'RequestCancel', requestedBy: 'a1', at }).then([requested]));
  it('changes nothing when cancel is requested twice', () =>
    given([placed, accepted, requested])
      .when({ type: 'RequestCancel', requestedBy: 'a1', at })
      .thenNothing());
  it('changes nothing when cancel is requested again after the order was canceled', () =>
    given([placed, accepted, requested, canceled])
      .when({ type: 'RequestCancel', requestedBy: 'a1', at })
      .thenNothing());
  it('refuses to cancel a rejected or expired order', () => {
    given([placed, rejected])
      .when({ type: 'RequestCancel', requestedBy: 'a1', at })
      .thenThrows(OrderClosed, { status: 'REJECTED' });
    given([placed, accepted, expired])
      .when({ type: 'RequestCancel', requestedBy: 'a1', at })
      .thenThrows(OrderClosed, { status: 'EXPIRED' });
  });
  it('refuses to cancel a filled order', () =>
    given([placed, accepted, ...filledBy])
      .when({ type: 'RequestCancel', requestedBy: 'a1', at })
      .thenThrows(OrderClosed, { status: 'FILLED' }));

  it('cancels what is left', () =>
    given([placed, accepted, executed('x1', 50, 3250, 50, 3250), requested])
      .when({ type: 'CancelOrder', at })
      .then([{ type: 'OrderCanceled', data: { orderId: 'o1', canceledQuantity: 150, reason: null, at } }]));
  it('cancels with the exchange reason (IOC rest, self-trade prevention)', () =>
    given([placed, accepted])
      .when({ type: 'CancelOrder', reason: 'SELF_TRADE_PREVENTION', at })
      .thenState((order) => expect(order.status).toBe('CANCELED')));
  it('cancels a pending order before it reaches the exchange', () =>
    given([placed]).when({ type: 'CancelOrder', at }).then([canceled]));
  it('changes nothing when canceled again', () =>
    given([placed, canceled]).when({ type: 'CancelOrder', at }).thenNothing());
  it('refuses to cancel an expired order', () =>
    given([placed, accepted, expired])
      .when({ type: 'CancelOrder', at })
      .thenThrows(OrderClosed, { status: 'EXPIRED' }));

  it('expires what is left', () =>
    given([placed, accepted]).when({ type: 'ExpireOrder', at }).then([expired]));
  it('makes an expired order EXPIRED', () =>
    given([placed, accepted])
      .when({ type: 'ExpireOrder', at })
      .thenState((order) => expect(order.status).toBe('EXPIRED')));
  it('keeps B3’s reason for the expiry', () =>
    given([placed, accepted])
      .when({ type: 'ExpireOrder', reason: 'GOOD_TILL_DATE', at })
      .then([{ ...expired, data: { ...expired.data, reason: 'GOOD_TILL_DATE' } } as OrderEvent]));
  it('changes nothing when expired again', () =>
    given([placed, accepted, expired]).when({ type: 'ExpireOrder', at }).thenNothing());
  it('refuses to expire a filled order', () =>
    given([placed, accepted, ...filledBy])
      .when({ type: 'ExpireOrder', at })
      .thenThrows(OrderClosed));
});

describe('wallet reservation for an order', () => {
  const order = (overrides: Partial<Place>): Order =>
    replay(orderDecider, orderDecider.decide(place(overrides), orderDecider.initial()));
  const market = { referencePrice: 3250, priceBandPercent: 10 };

  it('reserves quantity × limit price for a limit buy', () =>
    expect(reservationFor(order({}), market)).toEqual({
      type: 'ReserveCash',
      orderId: 'o1',
      symbol: 'PETR4',
      quantity: 200,
      pricing: { kind: 'LIMIT', limitPrice: 3250 },
    }));
  it('reserves at the price band upper edge for a market buy', () => {
    const command = reservationFor(order({ orderType: 'MARKET', price: null }), market);
    expect(command).toMatchObject({
      pricing: { kind: 'MARKET', referencePrice: 3250, priceBandPercent: 10 },
    });
    const wallet = replay(walletDecider, [{ type: 'CashDeposited', data: { amount: 10_000_000 } }]);
    expect(walletDecider.decide(command, wallet)).toMatchObject([{ data: { price: 3575, amount: 715_000 } }]);
  });
  it('reserves the custody position for a fractional sell, bounding its proceeds by its limit price', () =>
    expect(reservationFor(order({ side: 'SELL', symbol: 'PETR4F', quantity: 42 }), market)).toEqual({
      type: 'ReserveShares',
      orderId: 'o1',
      symbol: 'PETR4',
      quantity: 42,
      proceedsPrice: 3250,
    }));
  it("bounds a market sell's proceeds by the price band's upper edge, or not at all without a reference price", () => {
    const marketSell = order({ side: 'SELL', orderType: 'MARKET', price: null, timeInForce: 'IOC' });
    expect(reservationFor(marketSell, market)).toMatchObject({ type: 'ReserveShares', proceedsPrice: 3575 });
    expect(reservationFor(marketSell, { referencePrice: 0, priceBandPercent: 10 })).not.toHaveProperty(
      'proceedsPrice',
    );
  });
});

describe('order properties', () => {
  const command: fc.Arbitrary<OrderCommand> = fc.oneof(
    { weight: 1, arbitrary: fc.constant({ type: 'AcceptOrder' as const, at }) },
    {
      weight: 6,
      arbitrary: fc.record({
        type: fc.constant('RecordExecution' as const),
        executionId: fc.nat({ max: 12 }).map((n) => `x${n}`),
        quantity: fc.integer({ min: 1, max: 300 }),
        price: fc.integer({ min: 3000, max: 3400 }),
        at: fc.constant(at),
      }),
    },
    { weight: 1, arbitrary: fc.constant({ type: 'RequestCancel' as const, requestedBy: 'a1', at }) },
    { weight: 1, arbitrary: fc.constant({ type: 'CancelOrder' as const, at }) },
    { weight: 1, arbitrary: fc.constant({ type: 'ExpireOrder' as const, at }) },
    { weight: 1, arbitrary: fc.constant({ type: 'RejectOrder' as const, reason: 'PRICE_BAND', at }) },
  );

  it('never overfills, keeps the average price within the execution prices, and replays to the same state', () =>
    fc.assert(
      fc.property(
        fc.constantFrom(100, 200, 500, 1000),
        fc.constantFrom('BUY' as const, 'SELL' as const),
        fc.array(command, { maxLength: 40 }),
        (quantity, side, commands) => {
          let order = orderDecider.initial();
          const history: OrderEvent[] = [];
          for (const next of [place({ quantity, side, orderType: 'MARKET', price: null }), ...commands]) {
            try {
              const events = orderDecider.decide(next, order);
              history.push(...events);
              order = events.reduce(orderDecider.evolve, order);
            } catch (error) {
              if (!(error instanceof DomainError)) throw error;
            }
            expect(order.filledQuantity).toBeLessThanOrEqual(order.quantity);
            expect(remainingQuantity(order)).toBeGreaterThanOrEqual(0);
            expect(order.executions.reduce((sum, e) => sum + e.quantity, 0)).toBe(order.filledQuantity);
            expect(new Set(order.executions.map((e) => e.executionId)).size).toBe(order.executions.length);
            if (order.filledQuantity > 0) {
              const prices = order.executions.map((e) => e.price);
              expect(order.averagePrice).toBeGreaterThanOrEqual(Math.min(...prices));
              expect(order.averagePrice).toBeLessThanOrEqual(Math.max(...prices));
            }
            expect(order.status === 'FILLED').toBe(order.filledQuantity === order.quantity);
          }
          expect(replay(orderDecider, JSON.parse(JSON.stringify(history)))).toEqual(order);
        },
      ),
      { numRuns: 500 },
    ));
});
