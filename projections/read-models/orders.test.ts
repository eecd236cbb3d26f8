import { describe, it } from 'vitest';
import { EXECUTIONS, ORDERS, ordersProjection } from './orders.ts';
import { projectionSpecification, recorded } from './testing.ts';

const given = projectionSpecification(ordersProjection);
const stream = 'order-o1';
const placed = () =>
  recorded(stream, 'OrderPlaced', {
    orderId: 'o1',
    accountId: 'a1',
    symbol: 'PETR4',
    custodySymbol: 'PETR4',
    market: 'STANDARD',
    side: 'BUY',
    type: 'LIMIT',
    quantity: 300,
    price: 3_250,
    stopPrice: null,
    timeInForce: 'DAY',
    expiresAt: null,
    placedAt: '2026-01-05T13:00:00.000Z',
  });
const accepted = () => recorded(stream, 'OrderAccepted', { orderId: 'o1', at: '2026-01-05T13:00:01.000Z' });
const executed = (executionId: string, quantity: number, price: number, filled: number) =>
  recorded(stream, 'ExecutionRecorded', {
    orderId: 'o1',
    executionId,
    quantity,
    price,
    executedAt: '2026-01-05T13:00:02.000Z',
    filledQuantity: filled,
    remainingQuantity: 300 - filled,
    averagePrice: 3_240,
  });

describe('orders read model', () => {
  it('lists a placed order as PENDING_NEW for its account', () =>
    given().when(placed()).thenRow(
      ORDERS,
      { order_id: 'o1' },
      {
        account_id: 'a1',
        symbol: 'PETR4',
        side: 'BUY',
        quantity: 300,
        price: 3_250,
        status: 'PENDING_NEW',
        filled_quantity: 0,
        stream_version: 0,
      },
    ));

  it('moves to NEW when the wallet reservation holds', () =>
    given(placed()).when(accepted()).thenRow(ORDERS, { order_id: 'o1' }, { status: 'NEW' }));

  it('records a partial fill with its execution and the average price', () =>
    given(placed(), accepted())
      .when(executed('x1', 100, 3_240, 100))
      .thenRow(
        ORDERS,
        { order_id: 'o1' },
        {
          status: 'PARTIALLY_FILLED',
          filled_quantity: 100,
          filled_notional: 324_000,
          average_price: 3_240,
        },
      )
      .thenRow(
        EXECUTIONS,
        { order_id: 'o1', execution_id: 'x1' },
        { quantity: 100, price: 3_240, remaining_quantity: 200 },
      ));

  it('is FILLED only with OrderFilled, not with the last execution', () => {
    const spec = given(placed(), accepted(), executed('x1', 100, 3_240, 100)).when(
      executed('x2', 200, 3_240, 300),
    );
    spec.thenRow(ORDERS, { order_id: 'o1' }, { status: 'PARTIALLY_FILLED', filled_quantity: 300 });
  });

  it('shows the reject reason of a rejected order', () =>
    given(placed())
      .when(
        recorded(stream, 'OrderRejected', {
          orderId: 'o1',
          reason: 'INSUFFICIENT_FUNDS',
          detail: 'needs 975.00',
          at: '2026-01-05T13:00:01.000Z',
        }),
      )
      .thenRow(
        ORDERS,
        { order_id: 'o1' },
        { status: 'REJECTED', reject_reason: 'INSUFFICIENT_FUNDS', reject_detail: 'needs 975.00' },
      ));

  it('marks a cancel request, then the cancel', () => {
    given(placed(), accepted())
      .when(
        recorded(stream, 'OrderCancelRequested', {
          orderId: 'o1',
          requestedBy: 'a1',
          at: '2026-01-05T13:00:03.000Z',
        }),
      )
      .thenRow(ORDERS, { order_id: 'o1' }, { status: 'NEW', cancel_requested: true });
    given(placed(), accepted())
      .when(
        recorded(stream, 'OrderCanceled', {
          orderId: 'o1',
          canceledQuantity: 300,
          reason: 'SELF_TRADE_PREVENTION',
          at: '2026-01-05T13:00:03.000Z',
        }),
      )
      .thenRow(ORDERS, { order_id: 'o1' }, { status: 'CANCELED', cancel_reason: 'SELF_TRADE_PREVENTION' });
    given(placed(), accepted())
      .when(
        recorded(stream, 'OrderExpired', {
          orderId: 'o1',
          expiredQuantity: 300,
          reason: 'END_OF_DAY',
          at: '2026-01-05T21:00:00.000Z',
        }),
      )
      .thenRow(ORDERS, { order_id: 'o1' }, { status: 'EXPIRED', cancel_reason: 'END_OF_DAY' });
  });

  it('ignores other streams', () =>
    given()
      .when(recorded('wallet-a1', 'CashDeposited', { amount: 100 }))
      .thenNothing());
});
