import type { Decider } from '../../shared/decider.ts';
import type { Cents } from '../../shared/money.ts';
import { InvalidPrice, InvalidQuantity, isPositiveWhole } from '../errors.ts';
import { InstrumentNotFound, TickSizeViolation } from '../instrument/errors.ts';
import { type Instrument, type Market, tradingRules } from '../instrument/instrument.ts';
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
import {
  type OrderEvent,
  OrderSide,
  OrderType,
  type OrderSide as Side,
  type OrderStatus as Status,
  TimeInForce,
  type OrderType as Type,
  type TimeInForce as Validity,
} from './events.ts';

/** The `order-{orderId}` stream's state: what the trader asked for and what has happened to it. */
export interface Order {
  placed: boolean;
  orderId: string;
  accountId: string;
  symbol: string;
  custodySymbol: string;
  market: Market;
  side: Side;
  type: Type;
  quantity: number;
  price: Cents | null;
  stopPrice: Cents | null;
  timeInForce: Validity;
  expiresAt: string | null;
  placedAt: string;
  status: Status;
  filledQuantity: number;
  /** Σ quantity × price over the executions, in cents. */
  filledNotional: Cents;
  /** filledNotional ÷ filledQuantity rounded to the cent; 0 before the first execution. */
  averagePrice: Cents;
  executions: Execution[];
  cancelRequested: boolean;
  /** Who asked for the cancel (the owner, or an admin); absent from states folded before it was kept. */
  cancelRequestedBy?: string;
  rejectReason: string | null;
}

export interface Execution {
  executionId: string;
  quantity: number;
  price: Cents;
  executedAt: string;
}

export type OrderCommand =
  | {
      type: 'PlaceOrder';
      orderId: string;
      accountId: string;
      symbol: string;
      side: Side;
      orderType: Type;
      quantity: number;
      price?: Cents | null;
      stopPrice?: Cents | null;
      /** DAY when absent. */
      timeInForce?: Validity;
      expiresAt?: string | null;
      /** The instrument as the catalogue has it now (its own ticker or fractional twin must be `symbol`). */
      instrument: Instrument;
      at: string;
    }
  | { type: 'AcceptOrder'; at: string }
  | { type: 'RejectOrder'; reason: string; detail?: string | null; at: string }
  | { type: 'RecordExecution'; executionId: string; quantity: number; price: Cents; at: string }
  | { type: 'RequestCancel'; requestedBy: string; at: string }
  | { type: 'CancelOrder'; reason?: string | null; at: string }
  | { type: 'ExpireOrder'; reason?: string; at: string };

export const TERMINAL_STATUSES: readonly Status[] = ['FILLED', 'CANCELED', 'REJECTED', 'EXPIRED'];

export function isTerminal(status: Status): boolean {
  return TERMINAL_STATUSES.includes(status);
}

export function remainingQuantity(order: Order): number {
  return order.quantity - order.filledQuantity;
}

export const initialOrder = (): Order => ({
  placed: false,
  orderId: '',
  accountId: '',
  symbol: '',
  custodySymbol: '',
  market: 'STANDARD',
  side: 'BUY',
  type: 'LIMIT',
  quantity: 0,
  price: null,
  stopPrice: null,
  timeInForce: 'DAY',
  expiresAt: null,
  placedAt: '',
  status: 'PENDING_NEW',
  filledQuantity: 0,
  filledNotional: 0,
  averagePrice: 0,
  executions: [],
  cancelRequested: false,
  rejectReason: null,
});

export function decide(command: OrderCommand, order: Order): OrderEvent[] {
  if (command.type === 'PlaceOrder') {
    if (order.placed) throw new OrderAlreadyPlaced(order.orderId);
    return [place(command)];
  }
  if (!order.placed) throw new OrderNotFound();
  const { orderId, status } = order;
  switch (command.type) {
    case 'AcceptOrder': {
      // A cancel asked for before the broker accepted the order: it ends here, never sent to B3.
      if (status === 'PENDING_NEW' && order.cancelRequested)
        return [
          {
            type: 'OrderCanceled',
            data: {
              orderId,
              canceledQuantity: order.quantity,
              reason:
                order.cancelRequestedBy !== undefined && order.cancelRequestedBy !== order.accountId
                  ? 'CANCELED_BY_ADMIN'
                  : 'CANCELED_BY_TRADER',
              at: command.at,
            },
          },
        ];
      if (status === 'PENDING_NEW') return [{ type: 'OrderAccepted', data: { orderId, at: command.at } }];
      if (isTerminal(status) && status !== 'FILLED') throw new OrderClosed(status);
      return [];
    }
    case 'RejectOrder': {
      if (status === 'REJECTED') return [];
      if (isTerminal(status)) throw new OrderClosed(status);
      if (order.filledQuantity > 0) throw new OrderHasExecutions(order.filledQuantity);
      if (command.reason.trim() === '') throw new RejectReasonRequired();
      return [
        {
          type: 'OrderRejected',
          data: { orderId, reason: command.reason, detail: command.detail ?? null, at: command.at },
        },
      ];
    }
    case 'RecordExecution': {
      // The same execution report may arrive more than once; it counts once.
      if (order.executions.some((execution) => execution.executionId === command.executionId)) return [];
      if (isTerminal(status)) throw new OrderClosed(status);
      if (status === 'PENDING_NEW') throw new OrderNotAccepted();
      const { executionId, quantity, price, at } = command;
      if (!isPositiveWhole(quantity)) throw new InvalidQuantity(quantity);
      if (!isPositiveWhole(price)) throw new InvalidPrice(price);
      if (quantity > remainingQuantity(order)) throw new Overfill(quantity, remainingQuantity(order));
      if (order.price !== null) {
        const outside = order.side === 'BUY' ? price > order.price : price < order.price;
        if (outside) throw new PriceOutsideLimit(order.side, price, order.price);
      }
      const filledQuantity = order.filledQuantity + quantity;
      const averagePrice = Math.round((order.filledNotional + quantity * price) / filledQuantity);
      const remaining = order.quantity - filledQuantity;
      const events: OrderEvent[] = [
        {
          type: 'ExecutionRecorded',
          data: {
            orderId,
            executionId,
            quantity,
            price,
            executedAt: at,
            filledQuantity,
            remainingQuantity: remaining,
            averagePrice,
          },
        },
      ];
      if (remaining === 0)
        events.push({ type: 'OrderFilled', data: { orderId, filledQuantity, averagePrice, at } });
      return events;
    }
    case 'RequestCancel': {
      // Asking again once the cancel is done changes nothing, like asking twice before it is.
      if (status === 'CANCELED') return [];
      if (isTerminal(status)) throw new OrderClosed(status);
      if (order.cancelRequested) return [];
      return [
        { type: 'OrderCancelRequested', data: { orderId, requestedBy: command.requestedBy, at: command.at } },
      ];
    }
    case 'CancelOrder': {
      if (status === 'CANCELED') return [];
      if (isTerminal(status)) throw new OrderClosed(status);
      return [
        {
          type: 'OrderCanceled',
          data: {
            orderId,
            canceledQuantity: remainingQuantity(order),
            reason: command.reason ?? null,
            at: command.at,
          },
        },
      ];
    }
    case 'ExpireOrder': {
      if (status === 'EXPIRED') return [];
      if (isTerminal(status)) throw new OrderClosed(status);
      return [
        {
          type: 'OrderExpired',
          data: {
            orderId,
            expiredQuantity: remainingQuantity(order),
            ...(command.reason ? { reason: command.reason } : {}),
            at: command.at,
          },
        },
      ];
    }
  }
}

/** Validates a new order against the instrument, in the order a trader would fix the mistakes. */
function place(command: Extract<OrderCommand, { type: 'PlaceOrder' }>): OrderEvent {
  const { instrument, symbol, side, orderType, quantity, at } = command;
  const price = command.price ?? null;
  const stopPrice = command.stopPrice ?? null;
  const timeInForce = command.timeInForce ?? 'DAY';
  const expiresAt = command.expiresAt ?? null;

  const rules = tradingRules(instrument, symbol);
  if (!rules) throw new InstrumentNotFound(symbol);
  if (rules.status === 'HALTED') throw new InstrumentHalted(instrument.symbol, instrument.haltReason);
  if (!OrderSide.safeParse(side).success) throw new InvalidSide(side);
  if (!OrderType.safeParse(orderType).success) throw new InvalidOrderType(orderType);
  if (!TimeInForce.safeParse(timeInForce).success) throw new InvalidTimeInForce(timeInForce);

  if (!isPositiveWhole(quantity)) throw new InvalidQuantity(quantity);
  if (rules.market === 'STANDARD' && quantity % rules.quantityStep !== 0)
    throw new LotSizeViolation(
      symbol,
      quantity,
      `the standard market trades multiples of ${rules.quantityStep}`,
    );
  if (rules.maxQuantity !== null && quantity > rules.maxQuantity)
    throw new LotSizeViolation(
      symbol,
      quantity,
      `the fractional market trades ${rules.minQuantity} to ${rules.maxQuantity} shares`,
    );

  const limited = orderType === 'LIMIT' || orderType === 'STOP_LIMIT';
  const stopped = orderType === 'STOP' || orderType === 'STOP_LIMIT';
  if (limited && price === null) throw new PriceRequired(orderType);
  if (!limited && price !== null) throw new PriceNotAllowed(orderType);
  if (stopped && stopPrice === null) throw new StopPriceRequired(orderType);
  if (!stopped && stopPrice !== null) throw new StopPriceNotAllowed(orderType);
  for (const [field, value] of [
    ['price', price],
    ['stopPrice', stopPrice],
  ] as const) {
    if (value === null) continue;
    if (!isPositiveWhole(value)) throw new InvalidPrice(value);
    if (value % rules.tickSize !== 0) throw new TickSizeViolation(value, rules.tickSize, field);
  }

  // B3 cancels what a market order does not fill at once, so it can never rest until a later day.
  if (orderType === 'MARKET' && (timeInForce === 'GTC' || timeInForce === 'GTD'))
    throw new TimeInForceNotAllowed(orderType, timeInForce);
  if (timeInForce === 'GTD') {
    if (expiresAt === null) throw new ExpiryRequired();
    if (!(Date.parse(expiresAt) > Date.parse(at))) throw new ExpiryInPast(expiresAt, at);
  } else if (expiresAt !== null) throw new ExpiryNotAllowed(timeInForce);

  return {
    type: 'OrderPlaced',
    data: {
      orderId: command.orderId,
      accountId: command.accountId,
      symbol,
      custodySymbol: rules.custodySymbol,
      market: rules.market,
      side,
      type: orderType,
      quantity,
      price,
      stopPrice,
      timeInForce,
      expiresAt,
      placedAt: at,
    },
  };
}

export function evolve(order: Order, event: OrderEvent): Order {
  switch (event.type) {
    case 'OrderPlaced': {
      const { placedAt, ...placed } = event.data;
      return { ...initialOrder(), ...placed, placedAt, placed: true, status: 'PENDING_NEW' };
    }
    case 'OrderAccepted':
      return { ...order, status: 'NEW' };
    case 'OrderRejected':
      return { ...order, status: 'REJECTED', rejectReason: event.data.reason };
    case 'ExecutionRecorded': {
      const { executionId, quantity, price, executedAt } = event.data;
      const filledQuantity = order.filledQuantity + quantity;
      const filledNotional = order.filledNotional + quantity * price;
      return {
        ...order,
        status: filledQuantity === order.quantity ? order.status : 'PARTIALLY_FILLED',
        filledQuantity,
        filledNotional,
        averagePrice: Math.round(filledNotional / filledQuantity),
        executions: [...order.executions, { executionId, quantity, price, executedAt }],
      };
    }
    case 'OrderFilled':
      return { ...order, status: 'FILLED' };
    case 'OrderCancelRequested':
      return { ...order, cancelRequested: true, cancelRequestedBy: event.data.requestedBy };
    case 'OrderCanceled':
      return { ...order, status: 'CANCELED' };
    case 'OrderExpired':
      return { ...order, status: 'EXPIRED' };
  }
}

export const orderDecider: Decider<Order, OrderCommand, OrderEvent> = {
  initial: initialOrder,
  decide,
  evolve,
};

export const orderStreamId = (orderId: string): string => `order-${orderId}`;
