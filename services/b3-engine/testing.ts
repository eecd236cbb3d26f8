import { randomUUID } from 'node:crypto';
import type { BrokerToB3Body, NewOrderBody } from '../../domain/b3/order-messages.ts';
import type { TransportMessage } from '../../domain/shared/transport.ts';

/** A broker's NewOrder message for the engine's tests: 100 PETR4 bought at 32.50, DAY, unless told otherwise. */
export function newOrderMessage(
  body: Partial<NewOrderBody> = {},
  messageId = randomUUID(),
): TransportMessage<BrokerToB3Body> {
  return {
    messageId,
    type: 'NewOrder',
    correlationId: randomUUID(),
    causationId: randomUUID(),
    schemaVersion: 1,
    body: {
      orderId: randomUUID(),
      accountId: 'acc-1',
      symbol: 'PETR4',
      side: 'BUY',
      orderType: 'LIMIT',
      quantity: 100,
      price: 32_50,
      timeInForce: 'DAY',
      ...body,
    },
  };
}
