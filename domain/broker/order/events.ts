import { z } from 'zod';
import type { DomainEvent } from '../../shared/decider.ts';
import { defineEvent } from '../../shared/event-schemas.ts';
import { PositiveCents } from '../../shared/money.ts';
import { Id, Quantity, ShareCount, StandardSymbol, Timestamp, TradedSymbol } from '../schemas.ts';

/** Events of the `order-{orderId}` stream. Every event names its order, so topics can key by it. */

export const OrderSide = z.enum(['BUY', 'SELL']);
export const OrderType = z.enum(['LIMIT', 'MARKET', 'STOP', 'STOP_LIMIT']);
export const TimeInForce = z.enum(['DAY', 'IOC', 'FOK', 'GTC', 'GTD']);
export const OrderStatus = z.enum([
  'PENDING_NEW',
  'NEW',
  'PARTIALLY_FILLED',
  'FILLED',
  'CANCELED',
  'REJECTED',
  'EXPIRED',
]);
export type OrderSide = z.infer<typeof OrderSide>;
export type OrderType = z.infer<typeof OrderType>;
export type TimeInForce = z.infer<typeof TimeInForce>;
export type OrderStatus = z.infer<typeof OrderStatus>;

export const OrderPlacedData = z.strictObject({
  orderId: Id,
  accountId: Id,
  /** The traded ticker: `PETR4` (standard market) or `PETR4F` (fractional market). */
  symbol: TradedSymbol,
  /** The custody position it settles into. */
  custodySymbol: StandardSymbol,
  market: z.enum(['STANDARD', 'FRACTIONAL']),
  side: OrderSide,
  type: OrderType,
  quantity: Quantity,
  /** Limit price (LIMIT, STOP_LIMIT), else null. */
  price: PositiveCents.nullable(),
  /** Trigger price (STOP, STOP_LIMIT), else null. */
  stopPrice: PositiveCents.nullable(),
  timeInForce: TimeInForce,
  /** When a GTD order expires, else null. */
  expiresAt: Timestamp.nullable(),
  placedAt: Timestamp,
});
export const OrderAcceptedData = z.strictObject({ orderId: Id, at: Timestamp });
export const OrderRejectedData = z.strictObject({
  orderId: Id,
  /** A stable reason code: INSUFFICIENT_FUNDS, PRICE_BAND, INSTRUMENT_HALTED, … */
  reason: z.string().min(1).max(100),
  detail: z.string().max(1000).nullable(),
  at: Timestamp,
});
export const ExecutionRecordedData = z.strictObject({
  orderId: Id,
  executionId: Id,
  quantity: Quantity,
  price: PositiveCents,
  executedAt: Timestamp,
  /** The order's totals after this execution. */
  filledQuantity: Quantity,
  remainingQuantity: ShareCount,
  averagePrice: PositiveCents,
});
export const OrderFilledData = z.strictObject({
  orderId: Id,
  filledQuantity: Quantity,
  averagePrice: PositiveCents,
  at: Timestamp,
});
export const OrderCancelRequestedData = z.strictObject({ orderId: Id, requestedBy: Id, at: Timestamp });
export const OrderCanceledData = z.strictObject({
  orderId: Id,
  /** The shares that will now never trade. */
  canceledQuantity: ShareCount,
  reason: z.string().min(1).max(100).nullable(),
  at: Timestamp,
});
export const OrderExpiredData = z.strictObject({
  orderId: Id,
  expiredQuantity: ShareCount,
  /** B3's reason (END_OF_DAY, GOOD_TILL_DATE); absent from events recorded before it was kept. */
  reason: z.string().min(1).max(100).optional(),
  at: Timestamp,
});

export type OrderPlaced = DomainEvent<'OrderPlaced', z.infer<typeof OrderPlacedData>>;
export type OrderAccepted = DomainEvent<'OrderAccepted', z.infer<typeof OrderAcceptedData>>;
export type OrderRejected = DomainEvent<'OrderRejected', z.infer<typeof OrderRejectedData>>;
export type ExecutionRecorded = DomainEvent<'ExecutionRecorded', z.infer<typeof ExecutionRecordedData>>;
export type OrderFilled = DomainEvent<'OrderFilled', z.infer<typeof OrderFilledData>>;
export type OrderCancelRequested = DomainEvent<
  'OrderCancelRequested',
  z.infer<typeof OrderCancelRequestedData>
>;
export type OrderCanceled = DomainEvent<'OrderCanceled', z.infer<typeof OrderCanceledData>>;
export type OrderExpired = DomainEvent<'OrderExpired', z.infer<typeof OrderExpiredData>>;

export type OrderEvent =
  | OrderPlaced
  | OrderAccepted
  | OrderRejected
  | ExecutionRecorded
  | OrderFilled
  | OrderCancelRequested
  | OrderCanceled
  | OrderExpired;

export const orderEvents = [
  defineEvent({ type: 'OrderPlaced', version: 1, schema: OrderPlacedData }),
  defineEvent({ type: 'OrderAccepted', version: 1, schema: OrderAcceptedData }),
  defineEvent({ type: 'OrderRejected', version: 1, schema: OrderRejectedData }),
  defineEvent({ type: 'ExecutionRecorded', version: 1, schema: ExecutionRecordedData }),
  defineEvent({ type: 'OrderFilled', version: 1, schema: OrderFilledData }),
  defineEvent({ type: 'OrderCancelRequested', version: 1, schema: OrderCancelRequestedData }),
  defineEvent({ type: 'OrderCanceled', version: 1, schema: OrderCanceledData }),
  defineEvent({ type: 'OrderExpired', version: 1, schema: OrderExpiredData }),
] as const;
