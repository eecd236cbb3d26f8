import { DomainError } from '../../shared/domain-error.ts';
import { type Cents, formatCents, formatProduct, LARGEST_EXACT_AMOUNT } from '../../shared/money.ts';

/**
 * Available cash does not cover a withdrawal or a buy reservation. Available cash below zero is a
 * debit left by a fill above its reservation, and says so.
 */
export class InsufficientFunds extends DomainError {
  readonly reason = 'INSUFFICIENT_FUNDS';
  override readonly moneyDetails = ['requested', 'available'];
  constructor(
    readonly requested: Cents,
    readonly available: Cents,
  ) {
    super(
      available < 0
        ? `requested ${formatCents(requested)}, ${formatCents(available)} available: the wallet owes ${formatCents(-available)} for a fill above its reservation, to be covered by a deposit or a sale first`
        : `requested ${formatCents(requested)}, ${formatCents(available)} available`,
      { requested, available },
    );
  }
}

/**
 * A deposit, or the proceeds of a sell order at its price, that would take the balance past the
 * largest amount kept exactly.
 */
export class BalanceTooLarge extends DomainError {
  readonly reason = 'BALANCE_TOO_LARGE';
  override readonly moneyDetails = ['amount', 'balance'];
  constructor(
    readonly amount: Cents,
    readonly balance: Cents,
    readonly what: 'deposit' | 'sale' = 'deposit',
  ) {
    super(
      `${what === 'deposit' ? 'a deposit' : "the sale's proceeds"} of ${formatCents(amount)} would take the balance of ${formatCents(balance)} past the largest amount kept exactly, ${LARGEST_EXACT_AMOUNT}`,
      { amount, balance, what },
    );
  }
}

/**
 * quantity × price (the cost of a custody transfer, the cash a buy reserves) past the largest amount
 * kept exactly: the quantity is fine, the amount is not.
 */
export class AmountTooLarge extends DomainError {
  readonly reason = 'AMOUNT_TOO_LARGE';
  // `amount` is past the exact range: it is given as its exact decimal text already.
  override readonly moneyDetails = ['price'];
  constructor(
    readonly what: 'cost' | 'reservation' | 'proceeds',
    readonly quantity: number,
    readonly price: Cents,
  ) {
    super(
      `the ${what} of ${quantity} × ${formatProduct(1, price)} = ${formatProduct(quantity, price)} is past the largest amount kept exactly, ${LARGEST_EXACT_AMOUNT}`,
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
  override readonly moneyDetails = ['costBasis', 'adding'];
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

/** A price band percentage outside 0 < band ≤ 100 with at most two decimals. */
export class InvalidPriceBand extends DomainError {
  readonly reason = 'INVALID_PRICE_BAND';
  constructor(readonly bandPercent: number) {
    super(`price band must be a percentage above 0 and up to 100, got ${bandPercent}`, { bandPercent });
  }
}
