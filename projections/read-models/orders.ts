import type { RecordedEvent } from '../../domain/shared/event-store.ts';
import type { Change, ProjectionDefinition } from '../model.ts';
import { type RecordedOrderEvent, streamEntity } from './events.ts';

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
  version: 1,
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
    if (!streamEntity(event.streamId, 'order')) return [];
    return projectOrder(event as RecordedOrderEvent);
  },
};

function projectOrder(event: RecordedOrderEvent): Change[] {
  const key = { order_id: event.data.orderId };
  const touched = { updated_at: new Date(eventTime(event)), stream_version: event.version };
  const update = (set: Record<string, string | number | boolean | Date | null>): Change[] => [
    { kind: 'upsert', table: ORDERS, key, set: { ...set, ...touched } },
  ];
  switch (event.type) {
    case 'OrderPlaced': {
      const data = event.data;
      return [
        {
          kind: 'upsert',
          table: ORDERS,
          key,
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
            placed_at: new Date(data.placedAt),
            placed_position: event.position,
            ...touched,
          },
        },
      ];
    }
    case 'OrderAccepted':
      return update({ status: 'NEW' });
    case 'OrderRejected':
      return update({
        status: 'REJECTED',
        reject_reason: event.data.reason,
        reject_detail: event.data.detail,
      });
    case 'ExecutionRecorded': {
      const data = event.data;
      return [
        {
          kind: 'upsert',
          table: ORDERS,
          key,
          // The order's own totals after this execution; FILLED comes with OrderFilled.
          set: {
            filled_quantity: data.filledQuantity,
            average_price: data.averagePrice,
            ...(data.remainingQuantity > 0 ? { status: 'PARTIALLY_FILLED' } : {}),
            ...touched,
          },
          add: { filled_notional: data.quantity * data.price },
        },
        {
          kind: 'upsert',
          table: EXECUTIONS,
          key: { order_id: data.orderId, execution_id: data.executionId },
          set: {
            quantity: data.quantity,
            price: data.price,
            executed_at: new Date(data.executedAt),
            filled_quantity: data.filledQuantity,
            remaining_quantity: data.remainingQuantity,
            position: event.position,
          },
        },
      ];
    }
    case 'OrderFilled':
      return update({
        status: 'FILLED',
        filled_quantity: event.data.filledQuantity,
        average_price: event.data.averagePrice,
      });
    case 'OrderCancelRequested':
      return update({ cancel_requested: true });
    case 'OrderCanceled':
      return update({ status: 'CANCELED' });
    case 'OrderExpired':
      return update({ status: 'EXPIRED' });
    default:
      return [];
  }
}

function eventTime(event: RecordedOrderEvent): string {
  const data = event.data as { at?: string; placedAt?: string; executedAt?: string };
  return data.at ?? data.placedAt ?? data.executedAt ?? event.metadata.occurredAt;
}
