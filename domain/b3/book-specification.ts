import { expect } from 'vitest';
import {
  type BookEvent,
  b3EventDefinitions,
  type OrderType,
  type Side,
  type TimeInForce,
} from './book-events.ts';
import type { BookCommand, ModifyOrder, PlaceOrder } from './commands.ts';
import { executionReports } from './execution-reports.ts';
import { OrderBook } from './order-book.ts';

/**
 * Given/when/then for the order book, in a trader's vocabulary:
 *
 * ```ts
 * given(opened(), sell('s1', 100, 10_00))
 *   .when(buy('b1', 100, 10_00))
 *   .then(accepted('b1'), matched({ restingOrderId: 's1', incomingOrderId: 'b1', quantity: 100 }));
 * ```
 *
 * Expected events are partial (`toMatchObject`); their number and order must be exact. Every event
 * the book emits is checked against its zod schema, and every specification also checks that
 * replaying the events rebuilds the live book.
 */

export const SYMBOL = 'PETR4';
export const T0 = 1_700_000_000_000;

const schemas = new Map(b3EventDefinitions.map((definition) => [definition.type, definition.schema]));

export function checkSchema(event: BookEvent): void {
  const parsed = schemas.get(event.type)!.safeParse(event.data);
  expect(parsed.success ? [] : parsed.error.issues, `${event.type} does not match its schema`).toEqual([]);
}

export function given(...history: BookCommand[]) {
  const book = new OrderBook(SYMBOL);
  const events: BookEvent[] = [];
  for (const command of history) events.push(...book.execute(command));
  return {
    book,
    when(command: BookCommand) {
      const emitted = book.execute(command);
      events.push(...emitted);
      for (const event of emitted) checkSchema(event);
      expect(
        OrderBook.replay(SYMBOL, events).snapshot(),
        'the replayed book differs from the live book',
      ).toEqual(book.snapshot());
      const outcome = { book, events: emitted };
      const thenReports = (...expected: Record<string, unknown>[]) => {
        const reports = emitted.flatMap((event) => executionReports(SYMBOL, event));
        expect(reports).toHaveLength(expected.length);
        expected.forEach((report, index) => {
          expect(reports[index], `report ${index}`).toMatchObject(report);
        });
        return outcome;
      };
      return {
        ...outcome,
        /** Exactly these events, in this order (each a partial match). Not a promise: returns no `then`. */
        // biome-ignore lint/suspicious/noThenProperty: the given/when/then vocabulary is the point of this helper
        then(...expected: ExpectedEvent[]) {
          expect(emitted).toHaveLength(expected.length);
          expected.forEach((event, index) => {
            expect(emitted[index], `event ${index}`).toMatchObject(event);
          });
          return { ...outcome, thenReports };
        },
        thenReports,
      };
    },
  };
}

export type ExpectedEvent = { type: BookEvent['type']; data?: Record<string, unknown> };

// ── commands ────────────────────────────────────────────────────────────────────────────────

export const opened = (referencePrice = 10_00, priceBandBps = 1_000): BookCommand => ({
  type: 'OpenBook',
  referencePrice,
  priceBandBps,
  at: T0,
});

type OrderOptions = Partial<Omit<PlaceOrder, 'type' | 'orderId' | 'side' | 'quantity'>>;

function order(side: Side, orderType: OrderType, orderId: string, quantity: number, options: OrderOptions) {
  const timeInForce: TimeInForce = options.timeInForce ?? 'DAY';
  return {
    type: 'PlaceOrder',
    orderId,
    accountId: side === 'BUY' ? 'buyer' : 'seller',
    side,
    orderType,
    quantity,
    at: T0,
    ...options,
    timeInForce,
  } satisfies PlaceOrder;
}

export const buy = (orderId: string, quantity: number, price: number, options: OrderOptions = {}) =>
  order('BUY', 'LIMIT', orderId, quantity, { price, ...options });
export const sell = (orderId: string, quantity: number, price: number, options: OrderOptions = {}) =>
  order('SELL', 'LIMIT', orderId, quantity, { price, ...options });
export const marketBuy = (orderId: string, quantity: number, options: OrderOptions = {}) =>
  order('BUY', 'MARKET', orderId, quantity, { timeInForce: 'IOC', ...options });
export const marketSell = (orderId: string, quantity: number, options: OrderOptions = {}) =>
  order('SELL', 'MARKET', orderId, quantity, { timeInForce: 'IOC', ...options });
export const stop = (
  side: Side,
  orderId: string,
  quantity: number,
  stopPrice: number,
  options: OrderOptions = {},
) =>
  order(side, options.price === undefined ? 'STOP' : 'STOP_LIMIT', orderId, quantity, {
    stopPrice,
    ...options,
  });

export const cancel = (orderId: string, accountId: string, at = T0): BookCommand => ({
  type: 'CancelOrder',
  orderId,
  accountId,
  at,
});
export const modify = (
  orderId: string,
  accountId: string,
  changes: Pick<ModifyOrder, 'price' | 'quantity'>,
  at = T0,
): BookCommand => ({ type: 'ModifyOrder', orderId, accountId, ...changes, at });
export const halted = (reason?: string, at = T0): BookCommand => ({
  type: 'HaltTrading',
  ...(reason !== undefined ? { reason } : {}),
  at,
});
export const resumed = (at = T0): BookCommand => ({ type: 'ResumeTrading', at });
/** An admin's halt or resume as the broker's catalogue sends it, at that catalogue version. */
export const catalogueHalt = (catalogueVersion: number, reason = 'halted by an admin'): BookCommand => ({
  type: 'HaltTrading',
  reason,
  catalogueVersion,
  at: T0,
});
export const catalogueResume = (catalogueVersion: number): BookCommand => ({
  type: 'ResumeTrading',
  catalogueVersion,
  at: T0,
});
export const endOfDay = (at = T0): BookCommand => ({ type: 'EndOfDay', at });
/** The session clock's close: the close instant, run at `at` (later when the engine was down). */
export const sessionClose = (closedAt: number, at = closedAt): BookCommand => ({
  type: 'EndOfDay',
  closedAt,
  at,
});
export const clockTick = (at: number): BookCommand => ({ type: 'ExpireOrders', at });
export const referencePrice = (price: number, at = T0): BookCommand => ({
  type: 'SetReferencePrice',
  referencePrice: price,
  at,
});

// ── expected events ─────────────────────────────────────────────────────────────────────────

export const accepted = (orderId: string, data: Record<string, unknown> = {}): ExpectedEvent => ({
  type: 'OrderAccepted',
  data: { orderId, ...data },
});
export const rejected = (orderId: string, reason: string): ExpectedEvent => ({
  type: 'OrderRejected',
  data: { orderId, reason },
});
export const requestRejected = (
  orderId: string,
  request: 'CANCEL' | 'MODIFY',
  reason: string,
): ExpectedEvent => ({
  type: 'RequestRejected',
  data: { orderId, request, reason },
});
export const matched = (data: Record<string, unknown>): ExpectedEvent => ({ type: 'OrdersMatched', data });
export const rested = (orderId: string, data: Record<string, unknown> = {}): ExpectedEvent => ({
  type: 'OrderRested',
  data: { orderId, ...data },
});
export const canceled = (
  orderId: string,
  reason: string,
  data: Record<string, unknown> = {},
): ExpectedEvent => ({
  type: 'OrderCanceled',
  data: { orderId, reason, ...data },
});
export const expired = (orderId: string, reason: string): ExpectedEvent => ({
  type: 'OrderExpired',
  data: { orderId, reason },
});
export const modified = (orderId: string, data: Record<string, unknown>): ExpectedEvent => ({
  type: 'OrderModified',
  data: { orderId, ...data },
});
export const replenished = (orderId: string, displayedQuantity: number): ExpectedEvent => ({
  type: 'IcebergReplenished',
  data: { orderId, displayedQuantity },
});
export const triggered = (orderId: string, lastTradePrice: number): ExpectedEvent => ({
  type: 'StopTriggered',
  data: { orderId, lastTradePrice },
});
