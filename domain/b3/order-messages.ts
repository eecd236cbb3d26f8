import { z } from 'zod';
import { OrderType, Side, TimeInForce } from './book-events.ts';
import { ExecutionReport } from './execution-reports.ts';

/**
 * The bodies of the broker↔B3 transport messages (docs/transport.md carries the envelope).
 * Prices are integer cents, quantities integer shares, instants epoch milliseconds.
 */

/** Broker → B3: book this order. The order id is the broker's: B3 books one order id once. */
export const NewOrderBody = z.object({
  orderId: z.string().min(1),
  accountId: z.string().min(1),
  /** The traded ticker: `PETR4`, or `PETR4F` on the fractional market (a book of its own). */
  symbol: z.string().min(1),
  side: Side,
  orderType: OrderType,
  quantity: z.number().int().positive(),
  price: z.number().int().positive().optional(),
  stopPrice: z.number().int().positive().optional(),
  timeInForce: TimeInForce,
  expiresAt: z.number().int().nonnegative().optional(),
});
export type NewOrderBody = z.infer<typeof NewOrderBody>;

/** Broker → B3: cancel what is left of an order. */
export const CancelOrderBody = z.object({
  orderId: z.string().min(1),
  accountId: z.string().min(1),
  symbol: z.string().min(1),
});
export type CancelOrderBody = z.infer<typeof CancelOrderBody>;

/**
 * Broker → B3: an admin halted the instrument; halt this book (one message per book: the
 * standard ticker's and the fractional one's). New orders are then refused INSTRUMENT_HALTED.
 */
export const HaltTradingBody = z.object({
  symbol: z.string().min(1),
  reason: z.string().min(1).max(500),
  /**
   * The version of the `instrument-{symbol}` event that halted it: the book applies the newest halt
   * or resume and ignores older ones, which a retry can deliver late (domain/b3/commands.ts).
   */
  catalogueVersion: z.number().int().nonnegative(),
});
export type HaltTradingBody = z.infer<typeof HaltTradingBody>;

/** Broker → B3: an admin resumed the instrument; reopen this book as it was. */
export const ResumeTradingBody = z.object({
  symbol: z.string().min(1),
  catalogueVersion: z.number().int().nonnegative(),
});
export type ResumeTradingBody = z.infer<typeof ResumeTradingBody>;

export type BrokerToB3Body = NewOrderBody | CancelOrderBody | HaltTradingBody | ResumeTradingBody;

/** What the B3 engine accepts on `broker-to-b3`: anything else is dead-lettered as `unknown-type`. */
export const brokerToB3Schemas = {
  NewOrder: NewOrderBody,
  CancelOrder: CancelOrderBody,
  HaltTrading: HaltTradingBody,
  ResumeTrading: ResumeTradingBody,
} as const;

/** What the broker accepts on `b3-to-broker`. */
export const b3ToBrokerSchemas = { ExecutionReport } as const;

export const MESSAGE_SCHEMA_VERSION = 1;
