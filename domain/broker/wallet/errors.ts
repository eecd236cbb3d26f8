import { DomainError } from '../../shared/domain-error.ts';
import { type Cents, formatCents, formatProduct, LARGEST_EXACT_AMOUNT } from '../../shared/money.ts';

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

/**
 * quantity × price (the cost of a custody transfer, the cash a buy reserves) past the largest amount
 * kept exactly: the quantity is fine, the amount is not.
 */
export class AmountTooLarge extends DomainError {
  readonly reason = 'AMOUNT_TOO_LARGE';
  constructor(
    readonly what: 'cost' | 'reservation' | 'proceeds',
    readonly quantity: number,
    readonly price: Cents,
  ) {
    super(
      `the ${what} of ${quantity} × ${formatCents(price)} = ${formatProduct(quantity, price)} is past the largest amount kept exactly, ${LARGEST_EXACT_AMOUNT}`,
      { what, quantity, price, amount: formatProduct(quantity, price) },
    );
  }
}

/**
 * A position's total cost past the largest amount kept exactly: what it holds, plus what open buys
 * of the symbol will add when they settle, plus the transfer or buy at hand.
 */
export class CostBasisTooLarge extends DomainError {
  readonly reason = 'COST_BASIS_TOO_LARGE';
  constructor(
    readonly symbol: string,
    readonly costBasis: Cents,
    readonly adding: Cents,
  ) {
    super(
      `the ${symbol} position's cost of ${formatCents(costBasis)} (with its open buys) plus ${formatCents(adding)} would be past the largest amount kept exactly, ${LARGEST_EXACT_AMOUNT}`,
      { symbol, costBasis, adding },
    );
  }
}

/** A position past the largest number of shares kept exactly. */
export class PositionTooLarge extends DomainError {
  readonly reason = 'POSITION_TOO_LARGE';
  constructor(
    readonly symbol: string,
    readonly held: number,
    readonly adding: number,
  ) {
    super(`${held} ${symbol} plus ${adding} would be past the largest number of shares kept exactly`, {
      symbol,
      held,
      adding,
    });
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
