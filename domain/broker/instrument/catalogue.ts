import type { Cents } from '../../shared/money.ts';
import { InstrumentNotFound } from './errors.ts';
import {
  type Instrument,
  type InstrumentCommand,
  type Market,
  type TradingRules,
  tradingRules,
} from './instrument.ts';

/** One entry of a catalogue as data: what `ListInstrument` needs, without the time. */
export interface InstrumentSpec {
  symbol: string;
  name: string;
  lotSize: number;
  tickSize: Cents;
  fractional: boolean;
  referencePrice: Cents;
}

const equity = (symbol: string, name: string, referencePrice: Cents): InstrumentSpec => ({
  symbol,
  name,
  lotSize: 100,
  tickSize: 1,
  fractional: true,
  referencePrice,
});

/**
 * The default catalogue: liquid B3 equities and units, standard lot 100, tick R$ 0.01, each with its
 * fractional twin. Reference prices are plausible recent levels for a simulation, not market data.
 */
export const defaultCatalogue: readonly InstrumentSpec[] = [
  equity('PETR4', 'Petrobras PN', 32_50),
  equity('PETR3', 'Petrobras ON', 35_40),
  equity('VALE3', 'Vale ON', 55_20),
  equity('ITUB4', 'Itaú Unibanco PN', 35_10),
  equity('BBDC4', 'Bradesco PN', 14_60),
  equity('BBAS3', 'Banco do Brasil ON', 22_30),
  equity('B3SA3', 'B3 ON', 12_70),
  equity('ABEV3', 'Ambev ON', 12_80),
  equity('WEGE3', 'WEG ON', 45_30),
  equity('ITSA4', 'Itaúsa PN', 10_40),
  equity('RENT3', 'Localiza ON', 40_90),
  equity('SUZB3', 'Suzano ON', 55_60),
  equity('GGBR4', 'Gerdau PN', 17_40),
  equity('PRIO3', 'PRIO ON', 40_10),
  equity('ELET3', 'Eletrobras ON', 45_70),
  equity('EQTL3', 'Equatorial ON', 33_20),
  equity('RADL3', 'Raia Drogasil ON', 25_10),
  equity('LREN3', 'Lojas Renner ON', 16_20),
  equity('RAIL3', 'Rumo ON', 15_30),
  equity('BBSE3', 'BB Seguridade ON', 36_40),
  equity('VIVT3', 'Telefônica Brasil ON', 30_20),
  equity('TIMS3', 'TIM ON', 18_10),
  equity('SBSP3', 'Sabesp ON', 110_50),
  equity('CMIG4', 'Cemig PN', 11_20),
  equity('UGPA3', 'Ultrapar ON', 18_30),
  equity('CSAN3', 'Cosan ON', 7_10),
  equity('BPAC11', 'BTG Pactual Unit', 40_30),
  equity('KLBN11', 'Klabin Unit', 20_10),
  equity('TAEE11', 'Taesa Unit', 36_20),
  equity('SANB11', 'Santander Brasil Unit', 28_40),
];

/** The commands that list a catalogue, one `instrument-{symbol}` stream each. */
export function listingCommands(
  catalogue: readonly InstrumentSpec[],
  at: string,
): Array<Extract<InstrumentCommand, { type: 'ListInstrument' }>> {
  return catalogue.map((spec) => ({ type: 'ListInstrument', ...spec, at }));
}

/** The state an `InstrumentListed` event for this entry gives: open for trading, no halt. */
export function instrumentFromSpec(spec: InstrumentSpec): Instrument {
  return {
    listed: true,
    symbol: spec.symbol,
    name: spec.name,
    lotSize: spec.lotSize,
    tickSize: spec.tickSize,
    fractionalSymbol: spec.fractional ? `${spec.symbol}F` : null,
    referencePrice: spec.referencePrice,
    status: 'OPEN',
    haltReason: null,
  };
}

export interface ResolvedSymbol {
  instrument: Instrument;
  market: Market;
  custodySymbol: string;
  rules: TradingRules;
}

/**
 * Resolves a traded symbol against a set of instruments: `PETR4F` → the PETR4 instrument on the
 * fractional market, custody position PETR4. Throws `InstrumentNotFound` for a symbol nobody lists.
 */
export function resolveSymbol(instruments: Iterable<Instrument>, symbol: string): ResolvedSymbol {
  for (const instrument of instruments) {
    const rules = tradingRules(instrument, symbol);
    if (rules) return { instrument, market: rules.market, custodySymbol: rules.custodySymbol, rules };
  }
  throw new InstrumentNotFound(symbol);
}

/** The default catalogue as instrument states, for composition roots and tests. */
export function defaultInstruments(): Instrument[] {
  return defaultCatalogue.map(instrumentFromSpec);
}
