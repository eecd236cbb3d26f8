import { DomainError } from '../shared/domain-error.ts';

/** Rejections shared by several broker aggregates. */

/** A quantity of shares that is not a whole positive number. */
export class InvalidQuantity extends DomainError {
  readonly reason = 'INVALID_QUANTITY';
  constructor(readonly quantity: number) {
    super(`quantity must be a whole positive number of shares, got ${quantity}`, { quantity });
  }
}

/** An amount of money that is not a whole positive number of cents (or too large to be exact). */
export class InvalidAmount extends DomainError {
  readonly reason = 'INVALID_AMOUNT';
  override readonly moneyDetails = ['amount'];
  constructor(readonly amount: number) {
    super(`amount must be a whole positive number of cents, got ${amount}`, { amount });
  }
}

/** A price that is not a whole positive number of cents. */
export class InvalidPrice extends DomainError {
  readonly reason = 'INVALID_PRICE';
  override readonly moneyDetails = ['price'];
  constructor(readonly price: number) {
    super(`price must be a whole positive number of cents, got ${price}`, { price });
  }
}

/** A symbol that is not a B3 ticker (`PETR4`, `PETR4F`). */
export class InvalidSymbol extends DomainError {
  readonly reason = 'INVALID_SYMBOL';
  constructor(readonly symbol: string) {
    super(`not a B3 ticker: ${JSON.stringify(symbol)}`, { symbol });
  }
}

export function isPositiveWhole(value: number): boolean {
  return Number.isSafeInteger(value) && value > 0;
}
