import { z } from 'zod';
import { type BookEvent, CancelReason, ExpireReason, RejectReason, Side } from './book-events.ts';

/**
 * What B3 tells the broker about its orders (queue `mq-b3-to-broker`). Reports are derived from
 * `book-{symbol}` events by a pure function, so redelivering an event redelivers the same report
 * with the same execution id, and the broker can apply it idempotently.
 */

export const ExecutionReportType = z.enum(['ACK', 'PARTIAL_FILL', 'FILL', 'CANCELED', 'REJECTED', 'EXPIRED']);
export type ExecutionReportType = z.infer<typeof ExecutionReportType>;

export const ExecutionReport = z.object({
  /** Unique per report: `{symbol}-{sequence}`, with `-R` (resting) or `-I` (incoming) for the two sides of a trade. */
  executionId: z.string().min(1),
  type: ExecutionReportType,
  symbol: z.string().min(1),
  /** The order this report is about. */
  orderId: z.string().min(1),
  accountId: z.string().min(1),
  /** For a fill: the order that was resting in the book and the order that came in and traded with it. */
  restingOrderId: z.string().min(1).optional(),
  incomingOrderId: z.string().min(1).optional(),
  side: Side.optional(),
  tradeId: z.string().min(1).optional(),
  /**
   * Fill: the execution price; ACK of a modify: the new limit price; REJECTED for `PRICE_BAND`: the
   * price that fell outside the band.
   */
  price: z.number().int().positive().optional(),
  /** REJECTED for `PRICE_BAND`: the band's lowest and highest accepted price. */
  priceBand: z.object({ low: z.number().int().nonnegative(), high: z.number().int().positive() }).optional(),
  /** Fill: shares executed; CANCELED/EXPIRED: shares taken out of the book; ACK: the order's total quantity. */
  quantity: z.number().int().nonnegative().optional(),
  /** Shares still open on the order after this report. */
  remaining: z.number().int().nonnegative().optional(),
  reason: z.union([RejectReason, CancelReason, ExpireReason]).optional(),
  /** The request a REJECTED report answers: a new order, a cancel or a modify. */
  request: z.enum(['NEW', 'CANCEL', 'MODIFY']).optional(),
  sequence: z.number().int().positive(),
  at: z.number().int().nonnegative(),
});
export type ExecutionReport = z.infer<typeof ExecutionReport>;

/** The execution reports one book event gives rise to (none for book-keeping events). */
export function executionReports(symbol: string, event: BookEvent): ExecutionReport[] {
  const base = { symbol, sequence: event.data.sequence, at: event.data.at };
  const executionId = `${symbol}-${event.data.sequence}`;
  switch (event.type) {
    case 'OrderAccepted': {
      const data = event.data;
      return [
        {
          ...base,
          executionId,
          type: 'ACK',
          request: 'NEW',
          orderId: data.orderId,
          accountId: data.accountId,
          side: data.side,
          price: data.price,
          quantity: data.quantity,
          remaining: data.quantity,
        },
      ];
    }
    case 'OrderModified': {
      const data = event.data;
      return [
        {
          ...base,
          executionId,
          type: 'ACK',
          request: 'MODIFY',
          orderId: data.orderId,
          accountId: data.accountId,
          side: data.side,
          price: data.price,
          quantity: data.quantity,
          remaining: data.remaining,
        },
      ];
    }
    case 'OrderRejected':
      return [
        {
          ...base,
          executionId,
          type: 'REJECTED',
          request: 'NEW',
          orderId: event.data.orderId,
          accountId: event.data.accountId,
          reason: event.data.reason,
          ...bandFiguresOf(event.data),
        },
      ];
    case 'RequestRejected':
      return [
        {
          ...base,
          executionId,
          type: 'REJECTED',
          request: event.data.request,
          orderId: event.data.orderId,
          accountId: event.data.accountId,
          reason: event.data.reason,
          ...bandFiguresOf(event.data),
        },
      ];
    case 'OrdersMatched': {
      const data = event.data;
      const trade = {
        ...base,
        tradeId: data.tradeId,
        price: data.price,
        quantity: data.quantity,
        restingOrderId: data.restingOrderId,
        incomingOrderId: data.incomingOrderId,
      };
      const restingSide = data.aggressorSide === 'BUY' ? 'SELL' : 'BUY';
      return [
        {
          ...trade,
          executionId: `${executionId}-R`,
          type: data.restingRemaining === 0 ? 'FILL' : 'PARTIAL_FILL',
          orderId: data.restingOrderId,
          accountId: data.restingAccountId,
          side: restingSide,
          remaining: data.restingRemaining,
        },
        {
          ...trade,
          executionId: `${executionId}-I`,
          type: data.incomingRemaining === 0 ? 'FILL' : 'PARTIAL_FILL',
          orderId: data.incomingOrderId,
          accountId: data.incomingAccountId,
          side: data.aggressorSide,
          remaining: data.incomingRemaining,
        },
      ];
    }
    case 'OrderCanceled':
    case 'OrderExpired':
      return [
        {
          ...base,
          executionId,
          type: event.type === 'OrderCanceled' ? 'CANCELED' : 'EXPIRED',
          orderId: event.data.orderId,
          accountId: event.data.accountId,
          side: event.data.side,
          quantity: event.data.remaining,
          remaining: 0,
          reason: event.data.reason,
        },
      ];
    default:
      return [];
  }
}

/** A `PRICE_BAND` refusal's band and price, when its event recorded them. */
function bandFiguresOf(data: {
  priceBand?: { low: number; high: number };
  price?: number;
}): Pick<ExecutionReport, 'priceBand' | 'price'> {
  return {
    ...(data.priceBand !== undefined ? { priceBand: data.priceBand } : {}),
    ...(data.price !== undefined ? { price: data.price } : {}),
  };
}
