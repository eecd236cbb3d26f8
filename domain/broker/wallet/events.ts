import { z } from 'zod';
import type { DomainEvent } from '../../shared/decider.ts';
import { defineEvent } from '../../shared/event-schemas.ts';
import { NonNegativeCents, PositiveCents } from '../../shared/money.ts';
import { Id, Quantity, ShareCount, StandardSymbol } from '../schemas.ts';

/**
 * Events of the `wallet-{accountId}` stream. Amounts are integer cents; `symbol` is always the custody
 * (standard-market) ticker, so `PETR4F` trades settle into the `PETR4` position.
 */

export const CashDepositedData = z.strictObject({ amount: PositiveCents });
export const CashWithdrawnData = z.strictObject({ amount: PositiveCents });
export const SharesTransferredInData = z.strictObject({
  symbol: StandardSymbol,
  quantity: Quantity,
  /** The acquisition cost per share declared with the transfer, feeding the average cost. */
  unitCost: NonNegativeCents,
});
export const SharesTransferredOutData = z.strictObject({
  symbol: StandardSymbol,
  quantity: Quantity,
  /** The part of the position's cost basis that left with the shares (average cost × quantity). */
  costBasisRemoved: NonNegativeCents,
});
export const CashReservedData = z.strictObject({
  orderId: Id,
  symbol: StandardSymbol,
  quantity: Quantity,
  /** Per-share price the reservation covers: the limit price, or the price band's upper edge for a market buy. */
  price: PositiveCents,
  /** quantity × price. */
  amount: PositiveCents,
  basis: z.enum(['LIMIT_PRICE', 'PRICE_BAND_UPPER_EDGE']),
});
export const SharesReservedData = z.strictObject({ orderId: Id, symbol: StandardSymbol, quantity: Quantity });
/**
 * Version 2 added `fromAvailable`: B3's fill is a fact, so a fill above the reserved price (a stop
 * or market buy after the reference price moved past its band) is booked, the excess paid from
 * available cash. Version 1 events had no such fills and upcast with `fromAvailable: 0`.
 */
export const BuySettledData = z.strictObject({
  executionId: Id,
  orderId: Id,
  symbol: StandardSymbol,
  quantity: Quantity,
  price: PositiveCents,
  /** What the shares cost: quantity × execution price, paid from the reservation (and available cash beyond it). */
  amount: PositiveCents,
  /** The reservation's excess for this fill, back to available cash: quantity × (reserved price − execution price). */
  released: NonNegativeCents,
  /**
   * What the reservation did not cover, for a fill above the reserved price: quantity × (execution
   * price − reserved price), taken from available cash, which goes below zero when it is short.
   */
  fromAvailable: NonNegativeCents,
});
export const SellSettledData = z.strictObject({
  executionId: Id,
  orderId: Id,
  symbol: StandardSymbol,
  quantity: Quantity,
  price: PositiveCents,
  /** What the buyer paid, credited to available cash: quantity × execution price. */
  amount: PositiveCents,
  costBasisRemoved: NonNegativeCents,
});
export const ReservationReleasedData = z.strictObject({
  orderId: Id,
  symbol: StandardSymbol,
  side: z.enum(['BUY', 'SELL']),
  /** Reserved cash back to available (a buy). */
  cash: NonNegativeCents,
  /** Reserved shares back to available (a sell). */
  shares: ShareCount,
});

export type CashDeposited = DomainEvent<'CashDeposited', z.infer<typeof CashDepositedData>>;
export type CashWithdrawn = DomainEvent<'CashWithdrawn', z.infer<typeof CashWithdrawnData>>;
export type SharesTransferredIn = DomainEvent<'SharesTransferredIn', z.infer<typeof SharesTransferredInData>>;
export type SharesTransferredOut = DomainEvent<
  'SharesTransferredOut',
  z.infer<typeof SharesTransferredOutData>
>;
export type CashReserved = DomainEvent<'CashReserved', z.infer<typeof CashReservedData>>;
export type SharesReserved = DomainEvent<'SharesReserved', z.infer<typeof SharesReservedData>>;
export type BuySettled = DomainEvent<'BuySettled', z.infer<typeof BuySettledData>>;
export type SellSettled = DomainEvent<'SellSettled', z.infer<typeof SellSettledData>>;
export type ReservationReleased = DomainEvent<'ReservationReleased', z.infer<typeof ReservationReleasedData>>;

export type WalletEvent =
  | CashDeposited
  | CashWithdrawn
  | SharesTransferredIn
  | SharesTransferredOut
  | CashReserved
  | SharesReserved
  | BuySettled
  | SellSettled
  | ReservationReleased;

export const walletEvents = [
  defineEvent({ type: 'CashDeposited', version: 1, schema: CashDepositedData }),
  defineEvent({ type: 'CashWithdrawn', version: 1, schema: CashWithdrawnData }),
  defineEvent({ type: 'SharesTransferredIn', version: 1, schema: SharesTransferredInData }),
  defineEvent({ type: 'SharesTransferredOut', version: 1, schema: SharesTransferredOutData }),
  defineEvent({ type: 'CashReserved', version: 1, schema: CashReservedData }),
  defineEvent({ type: 'SharesReserved', version: 1, schema: SharesReservedData }),
  defineEvent({
    type: 'BuySettled',
    version: 2,
    schema: BuySettledData,
    upcasters: { 1: (data) => ({ ...(data as object), fromAvailable: 0 }) },
  }),
  defineEvent({ type: 'SellSettled', version: 1, schema: SellSettledData }),
  defineEvent({ type: 'ReservationReleased', version: 1, schema: ReservationReleasedData }),
] as const;
