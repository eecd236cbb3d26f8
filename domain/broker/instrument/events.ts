import { z } from 'zod';
import type { DomainEvent } from '../../shared/decider.ts';
import { defineEvent } from '../../shared/event-schemas.ts';
import { PositiveCents } from '../../shared/money.ts';
import { StandardSymbol, Timestamp, TradedSymbol } from '../schemas.ts';

/** Events of the `instrument-{symbol}` stream; `symbol` is the standard (custody) ticker. */

export const InstrumentListedData = z.strictObject({
  symbol: StandardSymbol,
  name: z.string().min(1).max(200),
  /** Shares per round lot on the standard market (100 on B3 equities). */
  lotSize: z.number().int().positive(),
  /** Minimum price increment, in cents (1 = R$ 0.01). */
  tickSize: PositiveCents,
  /** The fractional-market twin (`PETR4F`) trading the same custody position in 1 to lotSize − 1 shares, or null. */
  fractionalSymbol: TradedSymbol.nullable(),
  referencePrice: PositiveCents,
  listedAt: Timestamp,
});
export const ReferencePriceUpdatedData = z.strictObject({
  symbol: StandardSymbol,
  previousPrice: PositiveCents,
  referencePrice: PositiveCents,
  at: Timestamp,
});
export const TradingHaltedData = z.strictObject({
  symbol: StandardSymbol,
  reason: z.string().min(1).max(500),
  at: Timestamp,
});
export const TradingResumedData = z.strictObject({ symbol: StandardSymbol, at: Timestamp });

export type InstrumentListed = DomainEvent<'InstrumentListed', z.infer<typeof InstrumentListedData>>;
export type ReferencePriceUpdated = DomainEvent<
  'ReferencePriceUpdated',
  z.infer<typeof ReferencePriceUpdatedData>
>;
export type TradingHalted = DomainEvent<'TradingHalted', z.infer<typeof TradingHaltedData>>;
export type TradingResumed = DomainEvent<'TradingResumed', z.infer<typeof TradingResumedData>>;
export type InstrumentEvent = InstrumentListed | ReferencePriceUpdated | TradingHalted | TradingResumed;

export const instrumentEvents = [
  defineEvent({ type: 'InstrumentListed', version: 1, schema: InstrumentListedData }),
  defineEvent({ type: 'ReferencePriceUpdated', version: 1, schema: ReferencePriceUpdatedData }),
  defineEvent({ type: 'TradingHalted', version: 1, schema: TradingHaltedData }),
  defineEvent({ type: 'TradingResumed', version: 1, schema: TradingResumedData }),
] as const;
