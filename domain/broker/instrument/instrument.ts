import type { Decider } from '../../shared/decider.ts';
import type { Cents } from '../../shared/money.ts';
import { InvalidPrice, InvalidSymbol, isPositiveWhole } from '../errors.ts';
import { FRACTIONAL_SYMBOL, STANDARD_SYMBOL } from '../schemas.ts';
import {
  HaltReasonRequired,
  InstrumentAlreadyListed,
  InstrumentNotFound,
  InvalidLotSize,
  InvalidTickSize,
  TickSizeViolation,
} from './errors.ts';
import type { InstrumentEvent } from './events.ts';

/** A catalogue entry: the `instrument-{symbol}` stream's state, keyed by the standard (custody) ticker. */
export interface Instrument {
  listed: boolean;
  symbol: string;
  name: string;
  lotSize: number;
  tickSize: Cents;
  fractionalSymbol: string | null;
  referencePrice: Cents;
  status: TradingStatus;
  haltReason: string | null;
}

export type TradingStatus = 'OPEN' | 'HALTED';

export type InstrumentCommand =
  | {
      type: 'ListInstrument';
      symbol: string;
      name: string;
      lotSize: number;
      tickSize: Cents;
      /** Whether the instrument also trades on the fractional market, as `{symbol}F`. */
      fractional: boolean;
      referencePrice: Cents;
      at: string;
    }
  | { type: 'UpdateReferencePrice'; referencePrice: Cents; at: string }
  | { type: 'HaltTrading'; reason: string; at: string }
  | { type: 'ResumeTrading'; at: string };

export const initialInstrument = (): Instrument => ({
  listed: false,
  symbol: '',
  name: '',
  lotSize: 0,
  tickSize: 0,
  fractionalSymbol: null,
  referencePrice: 0,
  status: 'OPEN',
  haltReason: null,
});

export function decide(command: InstrumentCommand, instrument: Instrument): InstrumentEvent[] {
  if (command.type === 'ListInstrument') {
    if (instrument.listed) throw new InstrumentAlreadyListed(instrument.symbol);
    if (!STANDARD_SYMBOL.test(command.symbol)) throw new InvalidSymbol(command.symbol);
    if (!isPositiveWhole(command.lotSize)) throw new InvalidLotSize(command.lotSize);
    // The fractional market trades 1 to lotSize − 1 shares, so it needs a lot of at least 2.
    if (command.fractional && command.lotSize < 2)
      throw new InvalidLotSize(command.lotSize, 'leaves no room for a fractional market');
    if (!isPositiveWhole(command.tickSize)) throw new InvalidTickSize(command.tickSize);
    checkPrice(command.referencePrice, command.tickSize);
    return [
      {
        type: 'InstrumentListed',
        data: {
          symbol: command.symbol,
          name: command.name,
          lotSize: command.lotSize,
          tickSize: command.tickSize,
          fractionalSymbol: command.fractional ? `${command.symbol}F` : null,
          referencePrice: command.referencePrice,
          listedAt: command.at,
        },
      },
    ];
  }
  if (!instrument.listed) throw new InstrumentNotFound(instrument.symbol);
  const { symbol } = instrument;
  switch (command.type) {
    case 'UpdateReferencePrice': {
      checkPrice(command.referencePrice, instrument.tickSize);
      // Recorded even when the catalogue already says that price: an admin setting it pins the
      // band there, which the quotes have moved away from since the listing.
      return [
        {
          type: 'ReferencePriceUpdated',
          data: {
            symbol,
            previousPrice: instrument.referencePrice,
            referencePrice: command.referencePrice,
            at: command.at,
          },
        },
      ];
    }
    case 'HaltTrading': {
      if (command.reason.trim() === '') throw new HaltReasonRequired();
      // Halted already for that reason, it changes nothing (a retried halt, as a resume of an open
      // instrument is). Another reason replaces the one traders see: recorded as a halt like the
      // first, which B3 takes to both books (a newer catalogue version) with the new reason.
      if (instrument.status === 'HALTED' && instrument.haltReason === command.reason) return [];
      return [{ type: 'TradingHalted', data: { symbol, reason: command.reason, at: command.at } }];
    }
    case 'ResumeTrading': {
      if (instrument.status === 'OPEN') return [];
      return [{ type: 'TradingResumed', data: { symbol, at: command.at } }];
    }
  }
}

export function evolve(instrument: Instrument, event: InstrumentEvent): Instrument {
  switch (event.type) {
    case 'InstrumentListed': {
      const { listedAt: _, ...entry } = event.data;
      return { ...entry, listed: true, status: 'OPEN', haltReason: null };
    }
    case 'ReferencePriceUpdated':
      return { ...instrument, referencePrice: event.data.referencePrice };
    case 'TradingHalted':
      return { ...instrument, status: 'HALTED', haltReason: event.data.reason };
    case 'TradingResumed':
      return { ...instrument, status: 'OPEN', haltReason: null };
  }
}

export const instrumentDecider: Decider<Instrument, InstrumentCommand, InstrumentEvent> = {
  initial: initialInstrument,
  decide,
  evolve,
};

export const instrumentStreamId = (symbol: string): string => `instrument-${symbol}`;

function checkPrice(price: Cents, tickSize: Cents): void {
  if (!isPositiveWhole(price)) throw new InvalidPrice(price);
  if (price % tickSize !== 0) throw new TickSizeViolation(price, tickSize, 'referencePrice');
}

/** Which of B3's two equity markets a symbol trades on. */
export type Market = 'STANDARD' | 'FRACTIONAL';

/**
 * What an order on one traded symbol must respect. The standard market trades whole lots
 * (multiples of `lotSize`); the fractional market (`PETR4F`) trades 1 to lotSize − 1 shares of
 * the same custody position (`PETR4`).
 */
export interface TradingRules {
  symbol: string;
  custodySymbol: string;
  market: Market;
  /** Quantities must be multiples of this. */
  quantityStep: number;
  minQuantity: number;
  /** Null: no upper limit. */
  maxQuantity: number | null;
  tickSize: Cents;
  referencePrice: Cents;
  status: TradingStatus;
}

/** The rules for trading `symbol` (the instrument's own ticker or its fractional twin), or undefined. */
export function tradingRules(instrument: Instrument, symbol: string): TradingRules | undefined {
  if (!instrument.listed) return undefined;
  const common = {
    custodySymbol: instrument.symbol,
    tickSize: instrument.tickSize,
    referencePrice: instrument.referencePrice,
    status: instrument.status,
  };
  if (symbol === instrument.symbol)
    return {
      ...common,
      symbol,
      market: 'STANDARD',
      quantityStep: instrument.lotSize,
      minQuantity: instrument.lotSize,
      maxQuantity: null,
    };
  if (symbol === instrument.fractionalSymbol)
    return {
      ...common,
      symbol,
      market: 'FRACTIONAL',
      quantityStep: 1,
      minQuantity: 1,
      maxQuantity: instrument.lotSize - 1,
    };
  return undefined;
}

/**
 * The custody position a traded symbol settles into: `PETR4F` → `PETR4`, `PETR4` → `PETR4`. By B3's
 * naming rule alone, so it needs no catalogue; see `resolveSymbol` in the catalogue for a checked lookup.
 */
export function custodySymbol(symbol: string): string {
  const fractional = FRACTIONAL_SYMBOL.exec(symbol);
  return fractional ? fractional[1]! : symbol;
}

export function isFractionalSymbol(symbol: string): boolean {
  return FRACTIONAL_SYMBOL.test(symbol);
}
