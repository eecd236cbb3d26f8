import type { RecordedEvent } from '../../domain/shared/event-store.ts';
import type { Change, ProjectionDefinition, Row } from '../model.ts';
import type { RecordedInstrumentEvent } from './events.ts';

/**
 * The instrument catalogue (`GET /v1/instruments`): one row per listed instrument, keyed by its
 * standard (custody) ticker, from its `instrument-{symbol}` stream. The ticker orders the list and
 * is the keyset of its cursor: it never changes, and the catalogue is small, so a page boundary is
 * stable while instruments are listed, repriced, halted and resumed.
 */
export const INSTRUMENTS = 'instruments';

export const instrumentsProjection: ProjectionDefinition = {
  name: 'instruments',
  version: 1,
  source: 'broker',
  store: 'mysql',
  tables: [
    {
      name: INSTRUMENTS,
      columns: {
        symbol: { type: 'text' },
        name: { type: 'text' },
        /** Shares per round lot on the standard market. */
        lot_size: { type: 'bigint' },
        /** Minimum price increment, in cents. */
        tick_size: { type: 'bigint' },
        /** The fractional-market ticker (`PETR4F`), or null when the instrument has none. */
        fractional_symbol: { type: 'text', nullable: true },
        reference_price: { type: 'bigint' },
        /** The catalogue's trading status: OPEN or HALTED. */
        status: { type: 'text' },
        halt_reason: { type: 'text', nullable: true },
        listed_at: { type: 'timestamp' },
        updated_at: { type: 'timestamp' },
        /** The instrument stream's version this row includes. */
        stream_version: { type: 'int' },
      },
      primaryKey: ['symbol'],
      indexes: [['status', 'symbol']],
    },
  ],
  project(event: RecordedEvent): Change[] {
    if (!event.streamId.startsWith('instrument-')) return [];
    return projectInstrument(event as RecordedInstrumentEvent);
  },
};

function projectInstrument(event: RecordedInstrumentEvent): Change[] {
  switch (event.type) {
    case 'InstrumentListed': {
      const data = event.data;
      const listedAt = new Date(data.listedAt);
      return [
        change(data.symbol, {
          name: data.name,
          lot_size: data.lotSize,
          tick_size: data.tickSize,
          fractional_symbol: data.fractionalSymbol,
          reference_price: data.referencePrice,
          status: 'OPEN',
          halt_reason: null,
          listed_at: listedAt,
          updated_at: listedAt,
          stream_version: event.version,
        }),
      ];
    }
    case 'ReferencePriceUpdated':
      return [
        change(event.data.symbol, {
          reference_price: event.data.referencePrice,
          updated_at: new Date(event.data.at),
          stream_version: event.version,
        }),
      ];
    case 'TradingHalted':
      // A halt for another reason while halted replaces the reason, as the decider's `evolve` does.
      return [
        change(event.data.symbol, {
          status: 'HALTED',
          halt_reason: event.data.reason,
          updated_at: new Date(event.data.at),
          stream_version: event.version,
        }),
      ];
    case 'TradingResumed':
      return [
        change(event.data.symbol, {
          status: 'OPEN',
          halt_reason: null,
          updated_at: new Date(event.data.at),
          stream_version: event.version,
        }),
      ];
    default:
      return [];
  }
}

function change(symbol: string, set: Row): Change {
  return { kind: 'upsert', table: INSTRUMENTS, key: { symbol }, set };
}
