import type { RecordedEvent } from '../../domain/shared/event-store.ts';
import type { Change, ProjectionDefinition, Row } from '../model.ts';
import type { RecordedOrderEvent } from './events.ts';

/**
 * Orders and their executions, per account (`GET /v1/orders…`). One row per order, keyed by its
 * id; `placed_position` (the position of its OrderPlaced event) orders the lists newest first and
 * is the keyset of their cursors: it never changes, so a page boundary is stable while orders
 * keep moving through their statuses.
 */
export const ORDERS = 'orders';
export const EXECUTIONS = 'order_executions';

export const ordersProjection: ProjectionDefinition = {
  name: 'orders',
  // 2: cancel_reason.
  version: 2,
  source: 'broker',
  store: 'mysql',
  tables: [
    {
      name: ORDERS,
      columns: {
        order_id: { type: 'text' },
        account_id: { type: 'text' },
        symbol: { type: 'text' },
        custody_symbol: { type: 'text' },
        market: { type: 'text' },
        side: { type: 'text' },
        type: { type: 'text' },
        time_in_force: { type: 'text' },
        quantity: { type: 'bigint' },
        price: { type: 'bigint', nullable: true },
        stop_price: { type: 'bigint', nullable: true },
        expires_at: { type: 'timestamp', nullable: true },
        status: { type: 'text' },
        filled_quantity: { type: 'bigint' },
        /** Filled notional in cents × shares: the average price is notional ÷ filled, rounded. */
        filled_notional: { type: 'bigint' },
        average_price: { type: 'bigint', nullable: true },
        cancel_requested: { type: 'boolean' },
        reject_reason: { type: 'text', nullable: true },
        reject_detail: { type: 'text', nullable: true },
        /** Why the order was canceled: CANCELED_BY_TRADER, CANCELED_BY_ADMIN, SELF_TRADE_PREVENTION, … */
        cancel_reason: { type: 'text', nullable: true },
        placed_at: { type: 'timestamp' },
        placed_position: { type: 'bigint' },
        updated_at: { type: 'timestamp' },
        /** The order stream's version this row includes: the API's ETag and the audit link. */
        stream_version: { type: 'int' },
      },
      primaryKey: ['order_id'],
      indexes: [
        ['placed_position'],
        ['account_id', 'placed_position'],
        ['account_id', 'status', 'placed_position'],
        ['account_id', 'symbol', 'placed_position'],
        ['status', 'placed_position'],
        ['symbol', 'placed_position'],
      ],
    },
    {
      name: EXECUTIONS,
      columns: {
        order_id: { type: 'text' },
        execution_id: { type: 'text' },
        quantity: { type: 'bigint' },
        price: { type: 'bigint' },
        executed_at: { type: 'timestamp' },
        filled_quantity: { type: 'bigint' },
        remaining_quantity: { type: 'bigint' },
        position: { type: 'bigint' },
      },
      primaryKey: ['order_id', 'execution_id'],
      indexes: [['order_id', 'position']],
    },
  ],
  project(event: RecordedEvent): Change[] {
    if (!event.streamId.startsWith('order-')) return [];
    return projectOrder(event as RecordedOrderEvent);
  },
};

/**
 * Helpers at module level and one Date per event: under tsx a closure made per event costs a
 * `__name` call besides its allocation, and a rebuild projects every order event.
 */
function projectOrder(event: RecordedOrderEvent): Change[] {
  switch (event.type) {
    case 'OrderPlaced': {
      const data = event.data;
      const placedAt = new Date(data.placedAt);
      return [
        {
          kind: 'upsert',
          table: ORDERS,
          key: { order_id: data.orderId },
          set: {
            account_id: data.accountId,
            symbol: data.symbol,
            custody_symbol: data.custodySymbol,
            market: data.market,
            side: data.side,
            type: data.type,
            time_in_force: data.timeInForce,
            quantity: data.quantity,
            price: data.price,
            stop_price: data.stopPrice,
            expires_at: data.expiresAt === null ? null : new Date(data.expiresAt),
            status: 'PENDING_NEW',
            filled_quantity: 0,
            filled_notional: 0,
            average_price: null,
            cancel_requested: false,
            reject_reason: null,
            reject_detail: null,
            cancel_reason: null,
            placed_at: placedAt,
            placed_position: event.position,
            updated_at: placedAt,
            stream_version: event.version,
          },
        },
      ];
    }
    case 'OrderAccepted':
      return statusChange(event.data, event.version, 'NEW');
    case 'OrderRejected':
      return statusChange(event.data, event.version, 'REJECTED', {
        reject_reason: event.data.reason,
        reject_detail: event.data.detail,
      });
    case 'ExecutionRecorded': {
      const data = event.data;
      const executedAt = new Date(data.executedAt);
      // The order's own totals after this execution; FILLED comes with OrderFilled.
      const set: Row =
        data.remainingQuantity > 0
          ? {
              filled_quantity: data.filledQuantity,
              average_price: data.averagePrice,
              status: 'PARTIALLY_FILLED',
              updated_at: executedAt,
              stream_version: event.version,
            }
          : {
              filled_quantity: data.filledQuantity,
              average_price: data.averagePrice,
              updated_at: executedAt,
              stream_version: event.version,
            };
      return [
        {
          kind: 'upsert',
          table: ORDERS,
          key: { order_id: data.orderId },
          set,
          add: { filled_notional: data.quantity * data.price },
        },
        {
          kind: 'upsert',
          table: EXECUTIONS,
          key: { order_id: data.orderId, execution_id: data.executionId },
          set: {
            quantity: data.quantity,
            price: data.price,
            executed_at: executedAt,
            filled_quantity: data.filledQuantity,
            remaining_quantity: data.remainingQuantity,
            position: event.position,
          },
        },
      ];
    }
    case 'OrderFilled':
      return [
        {
          kind: 'upsert',
          table: ORDERS,
          key: { order_id: event.data.orderId },
          set: {
            status: 'FILLED',
            filled_quantity: event.data.filledQuantity,
            average_price: event.data.averagePrice,
            updated_at: new Date(event.data.at),
            stream_version: event.version,
          },
        },
      ];
    case 'OrderCancelRequested':
      return [
        {
          kind: 'upsert',
          table: ORDERS,
          key: { order_id: event.data.orderId },
          set: {
            cancel_requested: true,
            updated_at: new Date(event.data.at),
            stream_version: event.version,
          },
        },
      ];
    case 'OrderCanceled':
      return statusChange(event.data, event.version, 'CANCELED', { cancel_reason: event.data.reason });
    case 'OrderExpired':
      // Why it ended without trading, as for a cancel: END_OF_DAY, GOOD_TILL_DATE.
      return statusChange(event.data, event.version, 'EXPIRED', { cancel_reason: event.data.reason ?? null });
    default:
      return [];
  }
}

/** The order moved to `status` at `data.at`, with `also` (its reason) and nothing else changed. */
function statusChange(
  data: { orderId: string; at: string },
  version: number,
  status: string,
  also: Row = {},
): Change[] {
  return [
    {
      kind: 'upsert',
      table: ORDERS,
      key: { order_id: data.orderId },
      set: { status, ...also, updated_at: new Date(data.at), stream_version: version },
    },
  ];
}
