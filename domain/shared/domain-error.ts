/**
 * A business rule refused a command. Every rejection in `domain/` is a subclass with a stable `reason`
 * code (`INSUFFICIENT_FUNDS`, `LOT_SIZE`, …) that APIs, order rejections and the audit trail carry
 * verbatim; the message is for humans and may change.
 */
export abstract class DomainError extends Error {
  abstract readonly reason: string;
  /**
   * Which of `details` are amounts of money, in integer cents: an API shows them as decimal
   * strings (`10001` → `"100.01"`), as it shows every amount.
   */
  readonly moneyDetails: readonly string[] = [];

  constructor(
    message: string,
    /** The figures behind the refusal (amounts, quantities, states), safe to show to the account's owner. */
    readonly details: Readonly<Record<string, unknown>> = {},
  ) {
    super(message);
  }

  override get name(): string {
    return this.constructor.name;
  }
}

export function isDomainError(error: unknown): error is DomainError {
  return error instanceof DomainError;
}
