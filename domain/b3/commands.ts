import type { OrderType, Side, TimeInForce } from './book-events.ts';

/**
 * What the B3 engine is asked to do, one book at a time. Every command carries `at` (epoch
 * milliseconds): the engine has no clock, so GTD expiry and event times come from here.
 */
export type BookCommand =
  | OpenBook
  | SetReferencePrice
  | HaltTrading
  | ResumeTrading
  | PlaceOrder
  | CancelOrder
  | ModifyOrder
  | EndOfDay
  | ExpireOrders;

export interface OpenBook {
  type: 'OpenBook';
  referencePrice: number;
  /** Half-width of the price band in basis points of the reference price (1000 = ±10%). */
  priceBandBps: number;
  at: number;
}

export interface SetReferencePrice {
  type: 'SetReferencePrice';
  referencePrice: number;
  at: number;
}

/**
 * Stops matching: new orders and modifications are rejected (INSTRUMENT_HALTED), cancels still
 * go through. A book not opened yet is halted too, so that the first order to reach it is refused.
 */
export interface HaltTrading {
  type: 'HaltTrading';
  /** Why, in words (an admin's halt carries the reason it was given). */
  reason?: string;
  /** The version of the catalogue entry this halt comes from (see `CatalogueVersioned`). */
  catalogueVersion?: number;
  at: number;
}

/** Reopens a halted book as it was. */
export interface ResumeTrading {
  type: 'ResumeTrading';
  /** The version of the catalogue entry this resume comes from (see `CatalogueVersioned`). */
  catalogueVersion?: number;
  at: number;
}

/**
 * A halt or resume sent by the broker's catalogue names the catalogue entry's version. The
 * transport may deliver them out of order (a retried message goes behind a later one), so the book
 * applies the newest it has seen, even to a book already in that state (to remember the version),
 * and ignores one at or below it: a repeat or an overtaken one changes nothing. Without a version
 * (an operator's session command) a halt of a halted book, or a resume of an open one, does nothing.
 */
export type CatalogueVersioned = Pick<HaltTrading, 'catalogueVersion'>;

export interface PlaceOrder {
  type: 'PlaceOrder';
  orderId: string;
  accountId: string;
  side: Side;
  orderType: OrderType;
  quantity: number;
  /** Limit price in cents: LIMIT and STOP_LIMIT only. */
  price?: number;
  /** Trigger price in cents: STOP and STOP_LIMIT only. */
  stopPrice?: number;
  timeInForce: TimeInForce;
  /** GTD only: the instant the order stops being good. */
  expiresAt?: number;
  /** Iceberg: the quantity shown in the book at a time. */
  displayQuantity?: number;
  at: number;
}

export interface CancelOrder {
  type: 'CancelOrder';
  orderId: string;
  /** The owner; another account's order is reported as UNKNOWN_ORDER. */
  accountId: string;
  at: number;
}

export interface ModifyOrder {
  type: 'ModifyOrder';
  orderId: string;
  accountId: string;
  /** New limit price in cents; a change sends the order to the back of the queue. */
  price?: number;
  /** New total quantity, filled shares included; an increase sends the order to the back of the queue. */
  quantity?: number;
  at: number;
}

/**
 * Closes the trading day: DAY orders expire. A scheduled close names its instant (`closedAt`, at
 * or before `at`): DAY orders accepted after it belong to the next session and stay, and a book
 * that already ended a session at or after it does nothing (a repeat, or another engine's close).
 * Without `closedAt` every DAY order expires, whenever it came.
 */
export interface EndOfDay {
  type: 'EndOfDay';
  closedAt?: number;
  at: number;
}

/** A clock tick: GTD orders whose expiry has passed expire (any command does this too). */
export interface ExpireOrders {
  type: 'ExpireOrders';
  at: number;
}
