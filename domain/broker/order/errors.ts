import { DomainError } from '../../shared/domain-error.ts';
import type { Cents } from '../../shared/money.ts';
import type { OrderStatus } from './events.ts';

export class OrderAlreadyPlaced extends DomainError {
  readonly reason = 'ORDER_ALREADY_PLACED';
  constructor(readonly orderId: string) {
    super(`order ${orderId} was already placed`, { orderId });
  }
}

export class OrderNotFound extends DomainError {
  readonly reason = 'ORDER_NOT_FOUND';
  constructor() {
    super('no order was placed on this stream');
  }
}

export class InstrumentHalted extends DomainError {
  readonly reason = 'INSTRUMENT_HALTED';
  constructor(
    readonly symbol: string,
    readonly haltReason: string | null,
  ) {
    super(`trading in ${symbol} is halted${haltReason ? `: ${haltReason}` : ''}`, { symbol, haltReason });
  }
}

export class InvalidSide extends DomainError {
  readonly reason = 'INVALID_SIDE';
  constructor(readonly side: string) {
    super(`side must be BUY or SELL, got ${JSON.stringify(side)}`, { side });
  }
}

export class InvalidOrderType extends DomainError {
  readonly reason = 'INVALID_ORDER_TYPE';
  constructor(readonly orderType: string) {
    super(`order type must be LIMIT, MARKET, STOP or STOP_LIMIT, got ${JSON.stringify(orderType)}`, {
      orderType,
    });
  }
}

export class InvalidTimeInForce extends DomainError {
  readonly reason = 'INVALID_TIME_IN_FORCE';
  constructor(readonly timeInForce: string) {
    super(`time in force must be DAY, IOC, FOK, GTC or GTD, got ${JSON.stringify(timeInForce)}`, {
      timeInForce,
    });
  }
}

/** A market order cannot rest on the book, so it cannot be good till cancel or good till date. */
export class TimeInForceNotAllowed extends DomainError {
  readonly reason = 'TIME_IN_FORCE_NOT_ALLOWED';
  constructor(
    readonly orderType: string,
    readonly timeInForce: string,
  ) {
    super(`a ${orderType} order cannot be ${timeInForce}`, { orderType, timeInForce });
  }
}

/** The quantity does not fit the market: whole lots on the standard market, 1 to lot − 1 on the fractional one. */
export class LotSizeViolation extends DomainError {
  readonly reason = 'LOT_SIZE';
  constructor(
    readonly symbol: string,
    readonly quantity: number,
    readonly rule: string,
  ) {
    super(`${quantity} ${symbol}: ${rule}`, { field: 'quantity', symbol, quantity, rule });
  }
}

export class PriceRequired extends DomainError {
  readonly reason = 'PRICE_REQUIRED';
  constructor(readonly orderType: string) {
    super(`a ${orderType} order needs a limit price`, { field: 'price', orderType });
  }
}

export class PriceNotAllowed extends DomainError {
  readonly reason = 'PRICE_NOT_ALLOWED';
  constructor(readonly orderType: string) {
    super(`a ${orderType} order takes no limit price`, { field: 'price', orderType });
  }
}

export class StopPriceRequired extends DomainError {
  readonly reason = 'STOP_PRICE_REQUIRED';
  constructor(readonly orderType: string) {
    super(`a ${orderType} order needs a stop price`, { field: 'stopPrice', orderType });
  }
}

export class StopPriceNotAllowed extends DomainError {
  readonly reason = 'STOP_PRICE_NOT_ALLOWED';
  constructor(readonly orderType: string) {
    super(`a ${orderType} order takes no stop price`, { field: 'stopPrice', orderType });
  }
}

export class ExpiryRequired extends DomainError {
  readonly reason = 'EXPIRY_REQUIRED';
  constructor() {
    super('a GTD order needs an expiry time (expiresAt)', { field: 'expiresAt' });
  }
}

export class ExpiryNotAllowed extends DomainError {
  readonly reason = 'EXPIRY_NOT_ALLOWED';
  constructor(readonly timeInForce: string) {
    super(`only GTD orders take an expiry time, this one is ${timeInForce}`, {
      field: 'expiresAt',
      timeInForce,
    });
  }
}

export class ExpiryInPast extends DomainError {
  readonly reason = 'EXPIRY_IN_PAST';
  constructor(
    readonly expiresAt: string,
    readonly placedAt: string,
  ) {
    super(`expiry ${expiresAt} is not after the order's time ${placedAt}`, { expiresAt, placedAt });
  }
}

/** The order has ended (filled, canceled, rejected or expired): nothing more can happen to it. */
export class OrderClosed extends DomainError {
  readonly reason = 'ORDER_CLOSED';
  constructor(readonly status: OrderStatus) {
    super(`the order is ${status}`, { status });
  }
}

/** The exchange cannot have traded an order the broker has not yet accepted and sent. */
export class OrderNotAccepted extends DomainError {
  readonly reason = 'ORDER_NOT_ACCEPTED';
  constructor() {
    super('the order has not been accepted yet');
  }
}

/** An order that has traded can no longer be rejected; cancel what is left instead. */
export class OrderHasExecutions extends DomainError {
  readonly reason = 'ORDER_HAS_EXECUTIONS';
  constructor(readonly filledQuantity: number) {
    super(`the order already traded ${filledQuantity} shares`, { filledQuantity });
  }
}

export class RejectReasonRequired extends DomainError {
  readonly reason = 'REJECT_REASON_REQUIRED';
  constructor() {
    super('a rejection needs a reason code');
  }
}

/** An execution for more shares than the order has left. */
export class Overfill extends DomainError {
  readonly reason = 'OVERFILL';
  constructor(
    readonly quantity: number,
    readonly remainingQuantity: number,
  ) {
    super(`execution of ${quantity} shares exceeds the ${remainingQuantity} left`, {
      quantity,
      remainingQuantity,
    });
  }
}

/** A buy executed above its limit, or a sell below it. */
export class PriceOutsideLimit extends DomainError {
  readonly reason = 'PRICE_OUTSIDE_LIMIT';
  override readonly moneyDetails = ['price', 'limitPrice'];
  constructor(
    readonly side: string,
    readonly price: Cents,
    readonly limitPrice: Cents,
  ) {
    super(`a ${side} limited to ${limitPrice} cannot execute at ${price}`, { side, price, limitPrice });
  }
}
