import type { RecordedEvent } from '../../domain/shared/event-store.ts';
import type { Change, ProjectionDefinition, Row } from '../model.ts';
import { type RecordedBookEvent, streamEntity } from './events.ts';

/**
 * Order-book depth (`GET /v1/market/{symbol}/book`): the orders resting in each `book-{symbol}`,
 * one row each, with the shares they show (an iceberg shows its current slice only, as the
 * engine's own depth does). Levels are summed at query time over the (symbol, side, price)
 * index, so a fill, a cancel or a modify is one row change with no read of the level first.
 * Orders waiting off the book (untriggered stops, or a modified order losing priority until it
 * rests again) have `resting` false and are not part of the depth.
 */
export const BOOK_ORDERS = 'book_orders';
export const BOOKS = 'books';

export const bookDepthProjection: ProjectionDefinition = {
  name: 'book_depth',
  // 2: books keep the halt's reason, and a book halted before it opened has no reference price yet.
  // 3: every event of a book moves its sequence and time (2 moved them on status changes and
  // trades only, so a rest, cancel or expiry left the book's sequence behind its levels).
  // 4: reference_price_at, when the engine recorded the reference price (the book's answer
  // compares it with the last quote's time).
  version: 4,
  source: 'b3',
  store: 'postgres',
  tables: [
    {
      name: BOOK_ORDERS,
      columns: {
        symbol: { type: 'text' },
        order_id: { type: 'text' },
        account_id: { type: 'text' },
        side: { type: 'text' },
        price: { type: 'bigint' },
        remaining: { type: 'bigint' },
        displayed: { type: 'bigint' },
        resting: { type: 'boolean' },
        /** The book sequence it (re)joined its level at: time priority within a price. */
        rested_sequence: { type: 'bigint' },
      },
      primaryKey: ['symbol', 'order_id'],
      indexes: [['symbol', 'side', 'resting', 'price']],
    },
    {
      name: BOOKS,
      columns: {
        symbol: { type: 'text' },
        status: { type: 'text' },
        /** Why the engine halted the book (an admin's reason), while it is halted. */
        halt_reason: { type: 'text', nullable: true },
        /**
         * The reference price the engine last recorded (BookOpened, ReferencePriceSet): it takes it
         * from the B3 market cache when an order arrives. Null until the book opens (a book can be
         * halted before its first order).
         */
        reference_price: { type: 'bigint', nullable: true },
        /** When the engine recorded it (the event's time). */
        reference_price_at: { type: 'timestamp', nullable: true },
        price_band_bps: { type: 'int', nullable: true },
        last_trade_price: { type: 'bigint', nullable: true },
        sequence: { type: 'bigint' },
        updated_at: { type: 'timestamp' },
      },
      primaryKey: ['symbol'],
    },
  ],
  project(event: RecordedEvent): Change[] {
    const symbol = streamEntity(event.streamId, 'book');
    if (!symbol) return [];
    return projectBook(symbol, event as RecordedBookEvent | RecordedEvent);
  },
};

/**
 * What every event of a book carries: the book's sequence and time move with each one, so the
 * view's `sequence` is that of the last event it includes (the one a stream's book message names).
 */
interface BookEventData {
  sequence: number;
  at: number;
}

/**
 * Module functions, not closures made per event: a rebuild projects hundreds of thousands of
 * events, and each closure is an allocation (and a `__name` call under tsx).
 */
function book(
  symbol: string,
  data: BookEventData,
  set: Record<string, string | number | Date | null>,
): Change {
  return {
    kind: 'upsert',
    table: BOOKS,
    key: { symbol },
    set: { sequence: data.sequence, updated_at: new Date(data.at), ...set },
  };
}

function orderKey(symbol: string, orderId: string): Row {
  return { symbol, order_id: orderId };
}

function projectBook(symbol: string, event: RecordedBookEvent | RecordedEvent): Change[] {
  const data = event.data as BookEventData;
  switch (event.type) {
    case 'BookOpened': {
      const opened = event.data as { referencePrice: number; priceBandBps: number };
      return [
        book(symbol, data, {
          status: 'OPEN',
          reference_price: opened.referencePrice,
          reference_price_at: new Date(data.at),
          price_band_bps: opened.priceBandBps,
        }),
      ];
    }
    case 'ReferencePriceSet':
      return [
        book(symbol, data, {
          reference_price: (event.data as { referencePrice: number }).referencePrice,
          reference_price_at: new Date(data.at),
        }),
      ];
    case 'TradingHalted':
      return [
        book(symbol, data, {
          status: 'HALTED',
          halt_reason: (event.data as { reason?: string }).reason ?? null,
        }),
      ];
    case 'TradingResumed':
      // OPEN, or back to not open for a book halted before it opened: its reference price is null.
      return [book(symbol, data, { status: 'OPEN', halt_reason: null })];
  }
  // Every other event of the book moves the book's sequence and time; one that changes the levels
  // also changes its order's row.
  const typed = event as RecordedBookEvent;
  const traded: Record<string, number> =
    typed.type === 'OrdersMatched' ? { last_trade_price: typed.data.price } : {};
  return [book(symbol, data, traded), ...projectOrders(symbol, typed)];
}

function projectOrders(symbol: string, typed: RecordedBookEvent): Change[] {
  switch (typed.type) {
    case 'OrderRested': {
      const rested = typed.data;
      return [
        {
          kind: 'upsert',
          table: BOOK_ORDERS,
          key: orderKey(symbol, rested.orderId),
          set: {
            account_id: rested.accountId,
            side: rested.side,
            price: rested.price,
            remaining: rested.remaining,
            displayed: rested.displayedQuantity,
            resting: true,
            rested_sequence: rested.sequence,
          },
        },
      ];
    }
    case 'OrdersMatched': {
      const matched = typed.data;
      const changes: Change[] = [
        matched.restingRemaining === 0
          ? { kind: 'delete', table: BOOK_ORDERS, key: orderKey(symbol, matched.restingOrderId) }
          : {
              kind: 'upsert',
              table: BOOK_ORDERS,
              key: orderKey(symbol, matched.restingOrderId),
              set: { remaining: matched.restingRemaining },
              add: { displayed: -matched.quantity },
            },
      ];
      // A fully filled incoming order never rests; one that rested earlier (a modify that lost
      // priority) is gone too.
      if (matched.incomingRemaining === 0)
        changes.push({ kind: 'delete', table: BOOK_ORDERS, key: orderKey(symbol, matched.incomingOrderId) });
      return changes;
    }
    case 'IcebergReplenished': {
      const replenished = typed.data;
      return [
        {
          kind: 'upsert',
          table: BOOK_ORDERS,
          key: orderKey(symbol, replenished.orderId),
          set: { displayed: replenished.displayedQuantity, rested_sequence: replenished.sequence },
        },
      ];
    }
    case 'OrderModified': {
      const modified = typed.data;
      if (modified.priority === 'KEPT')
        return [
          {
            kind: 'upsert',
            table: BOOK_ORDERS,
            key: orderKey(symbol, modified.orderId),
            set: { remaining: modified.remaining },
            // A smaller order shows no more than what is left of it (the engine's rule).
            min: { displayed: modified.remaining },
          },
        ];
      // Out of its level until OrderRested puts it back at the back of the queue.
      return [
        {
          kind: 'upsert',
          table: BOOK_ORDERS,
          key: orderKey(symbol, modified.orderId),
          set: {
            account_id: modified.accountId,
            side: modified.side,
            remaining: modified.remaining,
            displayed: 0,
            resting: false,
            ...(modified.price === undefined ? {} : { price: modified.price }),
          },
        },
      ];
    }
    case 'OrderCanceled':
    case 'OrderExpired':
      return [{ kind: 'delete', table: BOOK_ORDERS, key: orderKey(symbol, typed.data.orderId) }];
    default:
      return [];
  }
}
