import type {
  OrderCanceled as BookOrderCanceled,
  OrderExpired as BookOrderExpired,
  IcebergReplenished,
  OrderModified,
  OrderRested,
  OrdersMatched,
  TradeExecuted,
} from '../../domain/b3/book-events.ts';
import type { QuoteReceived } from '../../domain/b3/quote-events.ts';
import type { InstrumentEvent } from '../../domain/broker/instrument/events.ts';
import type { OrderEvent } from '../../domain/broker/order/events.ts';
import type { WalletEvent } from '../../domain/broker/wallet/events.ts';
import type { RecordedEvent } from '../../domain/shared/event-store.ts';

/**
 * The recorded events the read models read, typed by their zod schemas. Event stores validate on
 * append and upcast on read, so a projection can trust `data` to have its type's current shape.
 */
type Recorded<Event extends { type: string; data: unknown }> = Event extends unknown
  ? RecordedEvent<Event['type'], Event['data']>
  : never;

export type RecordedOrderEvent = Recorded<OrderEvent>;
export type RecordedWalletEvent = Recorded<WalletEvent>;
export type RecordedInstrumentEvent = Recorded<InstrumentEvent>;
export type RecordedBookEvent = Recorded<
  OrderRested | OrdersMatched | IcebergReplenished | OrderModified | BookOrderCanceled | BookOrderExpired
>;
export type RecordedTradeExecuted = Recorded<TradeExecuted>;
export type RecordedQuoteReceived = Recorded<QuoteReceived>;

/** The id after a stream's prefix (`wallet-ACC1` → `ACC1`), undefined for another kind of stream. */
export function streamEntity(streamId: string, prefix: string): string | undefined {
  return streamId.startsWith(`${prefix}-`) ? streamId.slice(prefix.length + 1) : undefined;
}
