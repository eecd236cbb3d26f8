import { z } from 'zod';
import { defineEvent, type EventDefinition } from '../shared/event-schemas.ts';

/**
 * The B3 matching engine's contract: every decision it takes is one of these events in the
 * `book-{symbol}` stream, numbered by `sequence` (1, 2, 3, … per book); every trade is also a
 * `TradeExecuted` event in its own `trade-{tradeId}` stream. Prices are integer cents, quantities
 * integer shares, instants epoch milliseconds.
 */

export const bookStreamId = (symbol: string): string => `book-${symbol}`;
export const tradeStreamId = (tradeId: string): string => `trade-${tradeId}`;

export const Side = z.enum(['BUY', 'SELL']);
export type Side = z.infer<typeof Side>;

export const OrderType = z.enum(['LIMIT', 'MARKET', 'STOP_LIMIT', 'STOP']);
export type OrderType = z.infer<typeof OrderType>;

export const TimeInForce = z.enum(['DAY', 'IOC', 'FOK', 'GTC', 'GTD']);
export type TimeInForce = z.infer<typeof TimeInForce>;

/** Why an order or a request was refused, or why an order left the book without trading. Stable codes. */
export const RejectReason = z.enum([
  'BOOK_NOT_OPEN',
  'INSTRUMENT_HALTED',
  'DUPLICATE_ORDER_ID',
  'INVALID_QUANTITY',
  'INVALID_PRICE',
  'INVALID_STOP_PRICE',
  'INVALID_EXPIRY',
  'INVALID_DISPLAY_QUANTITY',
  'PRICE_BAND',
  'NO_LIQUIDITY',
  'FOK_NOT_FILLABLE',
  'UNKNOWN_ORDER',
  /** The engine service found no reference price for the band in the market cache (never the book itself). */
  'REFERENCE_PRICE_MISSING',
  /** The market cache's reference price is older than the configured maximum age. */
  'REFERENCE_PRICE_STALE',
]);
export type RejectReason = z.infer<typeof RejectReason>;

/** Why an accepted order was canceled: by its owner, by the engine's rules, or because its rest could not trade. */
export const CancelReason = z.enum([
  'CANCELED_BY_TRADER',
  'SELF_TRADE_PREVENTION',
  'IMMEDIATE_OR_CANCEL',
  'NO_LIQUIDITY',
  'PRICE_BAND',
  'FOK_NOT_FILLABLE',
]);
export type CancelReason = z.infer<typeof CancelReason>;

export const ExpireReason = z.enum(['END_OF_DAY', 'GOOD_TILL_DATE']);
export type ExpireReason = z.infer<typeof ExpireReason>;

const cents = z.number().int().positive();
const shares = z.number().int().positive();
const openShares = z.number().int().nonnegative();
const instant = z.number().int().nonnegative();
const id = z.string().min(1);
const header = { sequence: z.number().int().positive(), at: instant };

export const BookOpenedData = z.object({
  ...header,
  symbol: id,
  referencePrice: cents,
  /** The price band's half-width in basis points of the reference price: 1000 = ±10%. */
  priceBandBps: z.number().int().min(0).max(10_000),
});
export const ReferencePriceSetData = z.object({ ...header, referencePrice: cents });
/** The broker catalogue's version a halt or resume came from; absent from an operator's (and older events). */
const catalogueVersion = z.number().int().nonnegative().optional();
export const TradingHaltedData = z.object({
  ...header,
  /** Why the book was halted (an admin's reason); absent from halts recorded before it was kept. */
  reason: z.string().min(1).max(500).optional(),
  catalogueVersion,
});
export const TradingResumedData = z.object({ ...header, catalogueVersion });
export const SessionEndedData = z.object({
  ...header,
  /** The close this end is for, when it was run after the fact (a catch-up); `at` otherwise. */
  closedAt: z.number().int().nonnegative().optional(),
});

export const OrderAcceptedData = z.object({
  ...header,
  orderId: id,
  accountId: id,
  side: Side,
  orderType: OrderType,
  timeInForce: TimeInForce,
  quantity: shares,
  price: cents.optional(),
  stopPrice: cents.optional(),
  displayQuantity: shares.optional(),
  expiresAt: instant.optional(),
});
/**
 * A `PRICE_BAND` refusal's figures (absent from every other refusal, and from those recorded before
 * they were added): the band's lowest and highest accepted price, and the price that fell outside
 * it — the limit or stop price, or for a market order the best price it would have traded at.
 */
const priceBandFigures = {
  priceBand: z.object({ low: z.number().int().nonnegative(), high: cents }).optional(),
  price: cents.optional(),
};
export const OrderRejectedData = z.object({
  ...header,
  orderId: id,
  accountId: id,
  reason: RejectReason,
  ...priceBandFigures,
});
export const StopTriggeredData = z.object({
  ...header,
  orderId: id,
  accountId: id,
  lastTradePrice: cents,
});
export const OrdersMatchedData = z.object({
  ...header,
  tradeId: id,
  price: cents,
  quantity: shares,
  /** The side of the incoming (aggressor) order; the resting order is on the other side. */
  aggressorSide: Side,
  restingOrderId: id,
  restingAccountId: id,
  restingRemaining: openShares,
  incomingOrderId: id,
  incomingAccountId: id,
  incomingRemaining: openShares,
});
export const IcebergReplenishedData = z.object({
  ...header,
  orderId: id,
  accountId: id,
  side: Side,
  price: cents,
  displayedQuantity: shares,
});
export const OrderRestedData = z.object({
  ...header,
  orderId: id,
  accountId: id,
  side: Side,
  price: cents,
  remaining: shares,
  displayedQuantity: shares,
});
export const OrderModifiedData = z.object({
  ...header,
  orderId: id,
  accountId: id,
  side: Side,
  price: cents.optional(),
  /** The order's new total quantity, filled shares included. */
  quantity: shares,
  remaining: shares,
  /** KEPT: same place in the queue (quantity decrease); LOST: to the back of the queue at its (new) price. */
  priority: z.enum(['KEPT', 'LOST']),
});
export const OrderCanceledData = z.object({
  ...header,
  orderId: id,
  accountId: id,
  side: Side,
  /** Shares canceled: what was left open. */
  remaining: shares,
  reason: CancelReason,
});
export const OrderExpiredData = z.object({
  ...header,
  orderId: id,
  accountId: id,
  side: Side,
  remaining: shares,
  reason: ExpireReason,
});
export const RequestRejectedData = z.object({
  ...header,
  orderId: id,
  accountId: id,
  request: z.enum(['CANCEL', 'MODIFY']),
  reason: RejectReason,
  ...priceBandFigures,
});

export const TradeExecutedData = z.object({
  tradeId: id,
  symbol: id,
  price: cents,
  quantity: shares,
  buyOrderId: id,
  buyAccountId: id,
  sellOrderId: id,
  sellAccountId: id,
  aggressorSide: Side,
  /** The sequence of the `OrdersMatched` event in `book-{symbol}` this trade comes from. */
  bookSequence: z.number().int().positive(),
  at: instant,
});

type Event<Type extends string, Schema extends z.ZodType> = { type: Type; data: z.infer<Schema> };

export type BookOpened = Event<'BookOpened', typeof BookOpenedData>;
export type ReferencePriceSet = Event<'ReferencePriceSet', typeof ReferencePriceSetData>;
export type TradingHalted = Event<'TradingHalted', typeof TradingHaltedData>;
export type TradingResumed = Event<'TradingResumed', typeof TradingResumedData>;
export type SessionEnded = Event<'SessionEnded', typeof SessionEndedData>;
export type OrderAccepted = Event<'OrderAccepted', typeof OrderAcceptedData>;
export type OrderRejected = Event<'OrderRejected', typeof OrderRejectedData>;
export type StopTriggered = Event<'StopTriggered', typeof StopTriggeredData>;
export type OrdersMatched = Event<'OrdersMatched', typeof OrdersMatchedData>;
export type IcebergReplenished = Event<'IcebergReplenished', typeof IcebergReplenishedData>;
export type OrderRested = Event<'OrderRested', typeof OrderRestedData>;
export type OrderModified = Event<'OrderModified', typeof OrderModifiedData>;
export type OrderCanceled = Event<'OrderCanceled', typeof OrderCanceledData>;
export type OrderExpired = Event<'OrderExpired', typeof OrderExpiredData>;
export type RequestRejected = Event<'RequestRejected', typeof RequestRejectedData>;
export type TradeExecuted = Event<'TradeExecuted', typeof TradeExecutedData>;

export type BookEvent =
  | BookOpened
  | ReferencePriceSet
  | TradingHalted
  | TradingResumed
  | SessionEnded
  | OrderAccepted
  | OrderRejected
  | StopTriggered
  | OrdersMatched
  | IcebergReplenished
  | OrderRested
  | OrderModified
  | OrderCanceled
  | OrderExpired
  | RequestRejected;

export type BookEventType = BookEvent['type'];

const bookEventSchemas = {
  BookOpened: BookOpenedData,
  ReferencePriceSet: ReferencePriceSetData,
  TradingHalted: TradingHaltedData,
  TradingResumed: TradingResumedData,
  SessionEnded: SessionEndedData,
  OrderAccepted: OrderAcceptedData,
  OrderRejected: OrderRejectedData,
  StopTriggered: StopTriggeredData,
  OrdersMatched: OrdersMatchedData,
  IcebergReplenished: IcebergReplenishedData,
  OrderRested: OrderRestedData,
  OrderModified: OrderModifiedData,
  OrderCanceled: OrderCanceledData,
  OrderExpired: OrderExpiredData,
  RequestRejected: RequestRejectedData,
} satisfies Record<BookEventType, z.ZodType>;

/** Every B3 event type (book and trade streams), for the B3 event store's schema registry. */
export const b3EventDefinitions: EventDefinition[] = [
  ...Object.entries(bookEventSchemas).map(([type, schema]) => defineEvent({ type, version: 1, schema })),
  defineEvent({ type: 'TradeExecuted', version: 1, schema: TradeExecutedData }),
];

/** Validates one book event against its schema; throws a ZodError when it does not hold. */
export function parseBookEvent(event: { type: string; data: unknown }): BookEvent {
  const schema = bookEventSchemas[event.type as BookEventType];
  if (!schema) throw new Error(`unknown book event type ${event.type}`);
  return { type: event.type, data: schema.parse(event.data) } as BookEvent;
}

/** The `trade-{tradeId}` stream event of a match in `book-{symbol}`. */
export function tradeExecuted(symbol: string, matched: OrdersMatched['data']): TradeExecuted {
  const incomingBuys = matched.aggressorSide === 'BUY';
  return {
    type: 'TradeExecuted',
    data: {
      tradeId: matched.tradeId,
      symbol,
      price: matched.price,
      quantity: matched.quantity,
      buyOrderId: incomingBuys ? matched.incomingOrderId : matched.restingOrderId,
      buyAccountId: incomingBuys ? matched.incomingAccountId : matched.restingAccountId,
      sellOrderId: incomingBuys ? matched.restingOrderId : matched.incomingOrderId,
      sellAccountId: incomingBuys ? matched.restingAccountId : matched.incomingAccountId,
      aggressorSide: matched.aggressorSide,
      bookSequence: matched.sequence,
      at: matched.at,
    },
  };
}
