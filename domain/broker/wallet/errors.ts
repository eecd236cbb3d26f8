import { DomainError } from '../../shared/domain-error.ts';
import { type Cents, formatCents } from '../../shared/money.ts';

/** Available cash does not cover a withdrawal or a buy reservation. */
export class InsufficientFunds extends DomainError {
  readonly reason = 'INSUFFICIENT_FUNDS';
  constructor(
    readonly requested: Cents,
    readonly available: Cents,
  ) {
    super(`requested ${formatCents(requested)}, ${formatCents(available)} available`, {
      requested,
      available,
    });
  }
}

/** A deposit that would take the balance past the largest amount kept exactly. */
export class BalanceTooLarge extends DomainError {
  readonly reason = 'BALANCE_TOO_LARGE';
  constructor(
    readonly amount: Cents,
    readonly balance: Cents,
  ) {
    super(
      `a deposit of ${formatCents(amount)} would take the balance of ${formatCents(balance)} past the largest amount kept exactly`,
      { amount, balance },
    );
  }
}

/** Available shares do not cover a transfer out or a sell reservation. */
export class InsufficientShares extends DomainError {
  readonly reason = 'INSUFFICIENT_SHARES';
  constructor(
    readonly symbol: string,
    readonly requested: number,
    readonly available: number,
  ) {
    super(`requested ${requested} ${symbol}, ${available} available`, { symbol, requested, available });
  }
}

/** The order already has (or had) a reservation with other terms. */
export class DuplicateReservation extends DomainError {
  readonly reason = 'DUPLICATE_RESERVATION';
  constructor(readonly orderId: string) {
    super(`order ${orderId} already has a reservation in this wallet`, { orderId });
  }
}

/** No open reservation for the order: it was never reserved here, or is settled or released already. */
export class ReservationNotFound extends DomainError {
  readonly reason = 'RESERVATION_NOT_FOUND';
  constructor(readonly orderId: string) {
    super(`no open reservation for order ${orderId}`, { orderId });
  }
}

/** An execution for more shares than the order's reservation still holds. */
export class ExecutionExceedsReservation extends DomainError {
  readonly reason = 'EXECUTION_EXCEEDS_RESERVATION';
  constructor(
    readonly orderId: string,
    readonly quantity: number,
    readonly reserved: number,
  ) {
    super(`execution of ${quantity} shares exceeds the ${reserved} reserved for order ${orderId}`, {
      orderId,
      quantity,
      reserved,
    });
  }
}

/** A buy execution above the per-share price the cash reservation covers. */
export class ExecutionPriceAboveReservation extends DomainError {
  readonly reason = 'PRICE_ABOVE_RESERVATION';
  constructor(
    readonly orderId: string,
    readonly price: Cents,
    readonly reservedPrice: Cents,
  ) {
    super(
      `execution at ${formatCents(price)} is above the ${formatCents(reservedPrice)} reserved per share for order ${orderId}`,
      {
        orderId,
        price,
        reservedPrice,
      },
    );
  }
}

/** A price band percentage outside 0 < band ≤ 100 with at most two decimals. */
export class InvalidPriceBand extends DomainError {
  readonly reason = 'INVALID_PRICE_BAND';
  constructor(readonly bandPercent: number) {
    super(`price band must be a percentage above 0 and up to 100, got ${bandPercent}`, { bandPercent });
  }
}
