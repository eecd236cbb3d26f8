import { randomUUID } from 'node:crypto';
import type { HaltTradingBody, NewOrderBody, ResumeTradingBody } from '../../domain/b3/order-messages.ts';
import type { TransportMessage } from '../../domain/shared/transport.ts';

/** A broker's NewOrder message for the engine's tests: 100 PETR4 bought at 32.50, DAY, unless told otherwise. */
export function newOrderMessage(
  body: Partial<NewOrderBody> = {},
  messageId = randomUUID(),
): TransportMessage<NewOrderBody> {
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

/** The broker's HaltTrading of one book, as the order process sends it for an admin's halt. */
export function haltMessage(
  symbol: string,
  catalogueVersion: number,
  reason = 'material fact pending',
  messageId = randomUUID(),
): TransportMessage<HaltTradingBody> {
  return {
    messageId,
    type: 'HaltTrading',
    correlationId: randomUUID(),
    causationId: randomUUID(),
    schemaVersion: 1,
    body: { symbol, reason, catalogueVersion },
  };
}

/** The broker's ResumeTrading of one book. */
export function resumeMessage(
  symbol: string,
  catalogueVersion: number,
  messageId = randomUUID(),
): TransportMessage<ResumeTradingBody> {
  return {
    messageId,
    type: 'ResumeTrading',
    correlationId: randomUUID(),
    causationId: randomUUID(),
    schemaVersion: 1,
    body: { symbol, catalogueVersion },
  };
}
