import { describe, expect, it } from 'vitest';
import { EventSchemas } from '../../shared/event-schemas.ts';
import { specification } from '../../shared/testing.ts';
import { InvalidPrice, InvalidSymbol } from '../errors.ts';
import {
  defaultCatalogue,
  defaultInstruments,
  instrumentFromSpec,
  listingCommands,
  resolveSymbol,
} from './catalogue.ts';
import {
  HaltReasonRequired,
  InstrumentAlreadyListed,
  InstrumentNotFound,
  InvalidLotSize,
  InvalidTickSize,
  TickSizeViolation,
} from './errors.ts';
import { type InstrumentEvent, instrumentEvents } from './events.ts';
import {
  custodySymbol,
  type InstrumentCommand,
  instrumentDecider,
  isFractionalSymbol,
  tradingRules,
} from './instrument.ts';

const given = specification(instrumentDecider, { events: instrumentEvents });
const at = '2025-03-14T13:00:00.000Z';

const list = (
  overrides: Partial<Extract<InstrumentCommand, { type: 'ListInstrument' }>> = {},
): InstrumentCommand => ({
  type: 'ListInstrument',
  symbol: 'PETR4',
  name: 'Petrobras PN',
  lotSize: 100,
  tickSize: 1,
  fractional: true,
  referencePrice: 3250,
  at,
  ...overrides,
});
const listed: InstrumentEvent = {
  type: 'InstrumentListed',
  data: {
    symbol: 'PETR4',
    name: 'Petrobras PN',
    lotSize: 100,
    tickSize: 1,
    fractionalSymbol: 'PETR4F',
    referencePrice: 3250,
    listedAt: at,
  },
};
const halted: InstrumentEvent = {
  type: 'TradingHalted',
  data: { symbol: 'PETR4', reason: 'circuit breaker', at },
};

describe('listing an instrument', () => {
  it('lists a ticker with its lot, tick, reference price and fractional twin', () =>
    given([]).when(list()).then([listed]));

  it('lists a ticker without a fractional market', () =>
    given([])
      .when(list({ fractional: false }))
      .then([{ ...listed, data: { ...listed.data, fractionalSymbol: null } }] as InstrumentEvent[]));

  it('opens a listed instrument for trading', () =>
    given([])
      .when(list())
      .thenState((instrument) => {
        expect(instrument.status).toBe('OPEN');
        expect(instrument.listed).toBe(true);
      }));

  it('refuses to list the same ticker twice', () =>
    given([listed]).when(list()).thenThrows(InstrumentAlreadyListed));
  it('refuses a symbol that is not a B3 ticker', () =>
    given([])
      .when(list({ symbol: 'petr4' }))
      .thenThrows(InvalidSymbol));
  it('refuses a fractional ticker as the listed symbol', () =>
    given([])
      .when(list({ symbol: 'PETR4F' }))
      .thenThrows(InvalidSymbol));
  it('refuses a lot size that is not a whole positive number', () =>
    given([])
      .when(list({ lotSize: 0 }))
      .thenThrows(InvalidLotSize));
  it('refuses a fractional market when the lot is a single share', () =>
    given([])
      .when(list({ lotSize: 1 }))
      .thenThrows(InvalidLotSize));
  it('refuses a tick size that is not a whole positive number of cents', () =>
    given([])
      .when(list({ tickSize: 0.5 }))
      .thenThrows(InvalidTickSize));
  it('refuses a reference price that is not positive', () =>
    given([])
      .when(list({ referencePrice: 0 }))
      .thenThrows(InvalidPrice));
  it('refuses a reference price off the tick', () =>
    given([])
      .when(list({ tickSize: 5, referencePrice: 3252 }))
      .thenThrows(TickSizeViolation, { price: 3252, tickSize: 5 }));
});

describe('reference price', () => {
  it('updates the reference price', () =>
    given([listed])
      .when({ type: 'UpdateReferencePrice', referencePrice: 3310, at })
      .then([
        {
          type: 'ReferencePriceUpdated',
          data: { symbol: 'PETR4', previousPrice: 3250, referencePrice: 3310, at },
        },
      ]));
  it('records the price the catalogue already has: an admin setting it pins the band there', () =>
    given([listed])
      .when({ type: 'UpdateReferencePrice', referencePrice: 3250, at })
      .then([
        {
          type: 'ReferencePriceUpdated',
          data: { symbol: 'PETR4', previousPrice: 3250, referencePrice: 3250, at },
        },
      ]));
  it('refuses a price off the tick', () =>
    given([{ ...listed, data: { ...listed.data, tickSize: 5 } }] as InstrumentEvent[])
      .when({ type: 'UpdateReferencePrice', referencePrice: 3251, at })
      .thenThrows(TickSizeViolation));
  it('refuses a non-positive price', () =>
    given([listed]).when({ type: 'UpdateReferencePrice', referencePrice: -1, at }).thenThrows(InvalidPrice));
  it('refuses an instrument that was never listed', () =>
    given([])
      .when({ type: 'UpdateReferencePrice', referencePrice: 3300, at })
      .thenThrows(InstrumentNotFound));
});

describe('trading status', () => {
  it('halts trading with a reason', () =>
    given([listed]).when({ type: 'HaltTrading', reason: 'circuit breaker', at }).then([halted]));
  it('records the halt on the state', () =>
    given([listed])
      .when({ type: 'HaltTrading', reason: 'circuit breaker', at })
      .thenState((instrument) =>
        expect(instrument).toMatchObject({ status: 'HALTED', haltReason: 'circuit breaker' }),
      ));
  it('changes nothing when already halted for that reason', () =>
    given([listed, halted]).when({ type: 'HaltTrading', reason: 'circuit breaker', at }).thenNothing());
  it('replaces the reason of a halt when halted again for another one', () =>
    given([listed, halted])
      .when({ type: 'HaltTrading', reason: 'material fact pending', at })
      .then([{ type: 'TradingHalted', data: { symbol: 'PETR4', reason: 'material fact pending', at } }]));
  it('records the new reason on the state', () =>
    given([listed, halted])
      .when({ type: 'HaltTrading', reason: 'material fact pending', at })
      .thenState((instrument) =>
        expect(instrument).toMatchObject({ status: 'HALTED', haltReason: 'material fact pending' }),
      ));
  it('refuses a halt without a reason', () =>
    given([listed]).when({ type: 'HaltTrading', reason: ' ', at }).thenThrows(HaltReasonRequired));
  it('resumes a halted instrument', () =>
    given([listed, halted])
      .when({ type: 'ResumeTrading', at })
      .then([{ type: 'TradingResumed', data: { symbol: 'PETR4', at } }]));
  it('changes nothing when resuming an open instrument', () =>
    given([listed]).when({ type: 'ResumeTrading', at }).thenNothing());
  it('refuses to halt an instrument that was never listed', () =>
    given([]).when({ type: 'HaltTrading', reason: 'x', at }).thenThrows(InstrumentNotFound));
});

describe('trading rules and the fractional twin', () => {
  const petr4 = instrumentFromSpec(defaultCatalogue[0]!);

  it('trades whole lots of 100 on the standard market', () =>
    expect(tradingRules(petr4, 'PETR4')).toMatchObject({
      market: 'STANDARD',
      custodySymbol: 'PETR4',
      quantityStep: 100,
      minQuantity: 100,
      maxQuantity: null,
    }));
  it('trades 1 to 99 shares of the same custody position on the fractional market', () =>
    expect(tradingRules(petr4, 'PETR4F')).toMatchObject({
      market: 'FRACTIONAL',
      custodySymbol: 'PETR4',
      quantityStep: 1,
      minQuantity: 1,
      maxQuantity: 99,
    }));
  it('has no rules for another symbol', () => expect(tradingRules(petr4, 'VALE3')).toBeUndefined());
  it('resolves a fractional symbol to its custody symbol by name', () => {
    expect(custodySymbol('PETR4F')).toBe('PETR4');
    expect(custodySymbol('BPAC11F')).toBe('BPAC11');
    expect(custodySymbol('VALE3')).toBe('VALE3');
    expect(isFractionalSymbol('PETR4F')).toBe(true);
    expect(isFractionalSymbol('PETR4')).toBe(false);
  });
  it('resolves a symbol against the catalogue', () => {
    const resolved = resolveSymbol(defaultInstruments(), 'VALE3F');
    expect(resolved).toMatchObject({ market: 'FRACTIONAL', custodySymbol: 'VALE3' });
    expect(resolved.instrument.symbol).toBe('VALE3');
  });
  it('refuses to resolve a symbol nobody lists', () =>
    expect(() => resolveSymbol(defaultInstruments(), 'XPTO3')).toThrow(InstrumentNotFound));
});

describe('the default catalogue', () => {
  it('holds at least 20 distinct liquid tickers', () => {
    expect(defaultCatalogue.length).toBeGreaterThanOrEqual(20);
    expect(new Set(defaultCatalogue.map((spec) => spec.symbol)).size).toBe(defaultCatalogue.length);
  });
  it('lists every entry through the decider, and the events pass their schemas', () => {
    const schemas = new EventSchemas([...instrumentEvents]);
    for (const command of listingCommands(defaultCatalogue, at)) {
      const events = instrumentDecider.decide(command, instrumentDecider.initial());
      for (const event of events)
        schemas.encode({
          id: command.symbol,
          ...event,
          metadata: { correlationId: 'c', causationId: 'c', actor: 'seed', occurredAt: at },
        });
      const state = events.reduce(instrumentDecider.evolve, instrumentDecider.initial());
      expect(state).toEqual(
        instrumentFromSpec(defaultCatalogue.find((spec) => spec.symbol === command.symbol)!),
      );
    }
  });
});
