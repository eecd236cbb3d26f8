import { DomainError } from '../../shared/domain-error.ts';
import { formatCents } from '../../shared/money.ts';

export class InstrumentAlreadyListed extends DomainError {
  readonly reason = 'INSTRUMENT_ALREADY_LISTED';
  constructor(readonly symbol: string) {
    super(`${symbol} is already listed`, { symbol });
  }
}

/** The symbol is not in the catalogue (or the instrument stream has no listing). */
export class InstrumentNotFound extends DomainError {
  readonly reason = 'INSTRUMENT_NOT_FOUND';
  constructor(readonly symbol: string) {
    super(`no listed instrument trades as ${symbol || '(empty symbol)'}`, { symbol });
  }
}

export class InvalidLotSize extends DomainError {
  readonly reason = 'INVALID_LOT_SIZE';
  constructor(
    readonly lotSize: number,
    why = 'must be a whole positive number of shares',
  ) {
    super(`lot size ${lotSize} ${why}`, { lotSize });
  }
}

export class InvalidTickSize extends DomainError {
  readonly reason = 'INVALID_TICK_SIZE';
  override readonly moneyDetails = ['tickSize'];
  constructor(readonly tickSize: number) {
    super(`tick size must be a whole positive number of cents, got ${tickSize}`, { tickSize });
  }
}

/** A price (reference, limit or stop) that is not a multiple of the instrument's tick size. */
export class TickSizeViolation extends DomainError {
  readonly reason = 'TICK_SIZE';
  override readonly moneyDetails = ['price', 'tickSize'];
  /** `field`: which price it is — an order's `price` or `stopPrice`, an instrument's `referencePrice`. */
  constructor(
    readonly price: number,
    readonly tickSize: number,
    readonly field = 'price',
  ) {
    super(`${field} ${formatCents(price)} is not a multiple of the tick size ${formatCents(tickSize)}`, {
      price,
      tickSize,
      field,
    });
  }
}

/** The empty halt reason: a halt must say why, for the traders who see it. */
export class HaltReasonRequired extends DomainError {
  readonly reason = 'HALT_REASON_REQUIRED';
  constructor() {
    super('a trading halt needs a reason');
  }
}
