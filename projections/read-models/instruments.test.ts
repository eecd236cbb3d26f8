import { describe, expect, it } from 'vitest';
import type { InstrumentEvent } from '../../domain/broker/instrument/events.ts';
import { evolve, type Instrument, initialInstrument } from '../../domain/broker/instrument/instrument.ts';
import { INSTRUMENTS, instrumentsProjection } from './instruments.ts';
import { asRecorded, MemoryTables, projectionSpecification, recorded } from './testing.ts';
import { tradingWorkload } from './workload.ts';

const given = projectionSpecification(instrumentsProjection);
const stream = 'instrument-PETR4';
const listed = () =>
  recorded(stream, 'InstrumentListed', {
    symbol: 'PETR4',
    name: 'Petrobras PN',
    lotSize: 100,
    tickSize: 1,
    fractionalSymbol: 'PETR4F',
    referencePrice: 3_250,
    listedAt: '2026-01-05T12:00:00.000Z',
  });
const halted = (reason: string, at = '2026-01-05T14:00:00.000Z') =>
  recorded(stream, 'TradingHalted', { symbol: 'PETR4', reason, at });

describe('instruments read model', () => {
  it('lists an instrument open, with its lot, tick, fractional ticker and reference price', () =>
    given()
      .when(listed())
      .thenRows(INSTRUMENTS, [
        {
          symbol: 'PETR4',
          name: 'Petrobras PN',
          lot_size: 100,
          tick_size: 1,
          fractional_symbol: 'PETR4F',
          reference_price: 3_250,
          status: 'OPEN',
          halt_reason: null,
          listed_at: new Date('2026-01-05T12:00:00.000Z'),
          updated_at: new Date('2026-01-05T12:00:00.000Z'),
          stream_version: 0,
        },
      ]));

  it('lists one without a fractional market with a null fractional ticker', () =>
    given()
      .when(
        recorded('instrument-NOFR3', 'InstrumentListed', {
          symbol: 'NOFR3',
          name: 'No Fractional SA',
          lotSize: 1,
          tickSize: 5,
          fractionalSymbol: null,
          referencePrice: 1_005,
          listedAt: '2026-01-05T12:00:00.000Z',
        }),
      )
      .thenRow(INSTRUMENTS, { symbol: 'NOFR3' }, { fractional_symbol: null, lot_size: 1, tick_size: 5 }));

  it('takes an admin’s new reference price', () =>
    given(listed())
      .when(
        recorded(stream, 'ReferencePriceUpdated', {
          symbol: 'PETR4',
          previousPrice: 3_250,
          referencePrice: 3_400,
          at: '2026-01-05T13:00:00.000Z',
        }),
      )
      .thenRow(
        INSTRUMENTS,
        { symbol: 'PETR4' },
        { reference_price: 3_400, updated_at: new Date('2026-01-05T13:00:00.000Z'), stream_version: 1 },
      ));

  it('is HALTED with the reason of the latest halt, and OPEN without one once resumed', () => {
    given(listed())
      .when(halted('news pending'))
      .thenRow(INSTRUMENTS, { symbol: 'PETR4' }, { status: 'HALTED', halt_reason: 'news pending' });
    given(listed(), halted('news pending'))
      .when(halted('volatility auction', '2026-01-05T14:05:00.000Z'))
      .thenRow(INSTRUMENTS, { symbol: 'PETR4' }, { status: 'HALTED', halt_reason: 'volatility auction' });
    given(listed(), halted('news pending'))
      .when(recorded(stream, 'TradingResumed', { symbol: 'PETR4', at: '2026-01-05T15:00:00.000Z' }))
      .thenRow(
        INSTRUMENTS,
        { symbol: 'PETR4' },
        { status: 'OPEN', halt_reason: null, updated_at: new Date('2026-01-05T15:00:00.000Z') },
      );
  });

  it('ignores other streams', () => {
    given()
      .when(recorded('wallet-a1', 'CashDeposited', { amount: 100 }))
      .thenNothing();
    // The B3 engine's halt of a book is the book's, not the catalogue's.
    given()
      .when(recorded('book-PETR4', 'TradingHalted', { sequence: 1, at: 1, reason: 'auction' }))
      .thenNothing();
  });

  it('agrees with the instrument decider after a trading day', () => {
    const tables = new MemoryTables();
    const states = new Map<string, Instrument>();
    let position = 0;
    for (const item of tradingWorkload({
      seed: 5,
      requests: 300,
      accounts: 4,
      symbols: ['PETR4', 'VALE3'],
    })) {
      position += 1;
      if (!item.streamId.startsWith('instrument-')) continue;
      tables.apply(instrumentsProjection.project(asRecorded(item.streamId, item.event, position)));
      const symbol = item.streamId.slice('instrument-'.length);
      states.set(
        symbol,
        evolve(states.get(symbol) ?? initialInstrument(), item.event as unknown as InstrumentEvent),
      );
    }
    expect([...states.values()].map(({ status }) => status)).toEqual(['HALTED', 'OPEN']);
    for (const [symbol, state] of states)
      expect(tables.row(INSTRUMENTS, { symbol })).toMatchObject({
        name: state.name,
        lot_size: state.lotSize,
        tick_size: state.tickSize,
        fractional_symbol: state.fractionalSymbol,
        reference_price: state.referencePrice,
        status: state.status,
        halt_reason: state.haltReason,
      });
  });
});
