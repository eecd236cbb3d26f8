/**
 * Test support for the order path: accounts with cash and shares, instruments, orders placed as
 * the API would, and bounded waits. Not for production code.
 */
import { randomUUID } from 'node:crypto';
import { openPgliteEventStore } from '../../adapters/pglite/event-store.ts';
import { b3EventDefinitions } from '../../domain/b3/book-events.ts';
import { quoteEventDefinitions } from '../../domain/b3/quote-events.ts';
import { brokerEvents } from '../../domain/broker/events.ts';
import { instrumentDecider, instrumentStreamId } from '../../domain/broker/instrument/instrument.ts';
import type { OrderSide, OrderType, TimeInForce } from '../../domain/broker/order/events.ts';
import { type Order, orderDecider, orderStreamId } from '../../domain/broker/order/order.ts';
import { type Wallet, walletDecider, walletStreamId } from '../../domain/broker/wallet/wallet.ts';
import { loadAggregate } from '../../domain/shared/aggregate.ts';
import { EventSchemas } from '../../domain/shared/event-schemas.ts';
import type { EventStore } from '../../domain/shared/event-store.ts';
import { aggregateOf, handleCommand } from './command-handler.ts';
import { loadConfig } from './config.ts';
import { SEED } from './seed-metadata.ts';
import { startTradingServices, type TradingServices } from './trading.ts';

export const brokerSchemas = () => new EventSchemas(brokerEvents);
export const b3Schemas = () => new EventSchemas([...b3EventDefinitions, ...quoteEventDefinitions]);

export interface InProcessOrderPath {
  broker: EventStore;
  b3: EventStore;
  services: TradingServices;
  stop(): Promise<void>;
}

/**
 * The whole order path in one process, as the in-process order-path tests start it: PGlite event
 * stores in memory, the in-process transport and caches, quotes off, PETR4 listed and priced at 32.50.
 */
export async function inProcessOrderPath(): Promise<InProcessOrderPath> {
  const broker = await openPgliteEventStore({ schema: 'broker', schemas: brokerSchemas() });
  const b3 = await openPgliteEventStore({ schema: 'b3', schemas: b3Schemas() });
  const services = await startTradingServices({
    config: loadConfig({ QUOTES_ENABLED: 'false', QUOTE_SOURCE: 'off' }),
    eventStores: { broker, b3 },
    retryDelaysMs: [20, 50],
  });
  await services.marketData.setReferencePrice('PETR4', 32_50);
  await listInstrument(broker, 'PETR4', 32_50);
  return {
    broker,
    b3,
    services,
    async stop() {
      await services.stop();
      await broker.close();
      await b3.close();
    },
  };
}

const meta = (actor = 'test') => ({ correlationId: randomUUID(), causationId: randomUUID(), actor });

/**
 * Lists an instrument as a start seeds the default catalogue: its symbol is the quote source's to
 * price (tests set prices with `marketData.setReferencePrice`). `{ byAdmin: true }` lists it as
 * `POST /v1/admin/instruments` does, whose reference price the market data records, pinned.
 */
export async function listInstrument(
  store: EventStore,
  symbol: string,
  referencePrice: number,
  options: { byAdmin?: boolean } = {},
): Promise<void> {
  const loaded = await loadAggregate(store, instrumentStreamId(symbol), aggregateOf(instrumentDecider));
  if (loaded.state.listed) return;
  await handleCommand(
    store,
    instrumentStreamId(symbol),
    instrumentDecider,
    {
      type: 'ListInstrument',
      symbol,
      name: symbol,
      lotSize: 100,
      tickSize: 1,
      fractional: true,
      referencePrice,
      at: new Date().toISOString(),
    },
    options.byAdmin ? meta('admin') : SEED,
  );
}

/** An admin's halt of an instrument, as `POST /v1/admin/instruments/{symbol}/halt` records it. */
export async function haltInstrument(store: EventStore, symbol: string, reason: string): Promise<void> {
  await handleCommand(
    store,
    instrumentStreamId(symbol),
    instrumentDecider,
    { type: 'HaltTrading', reason, at: new Date().toISOString() },
    meta('admin'),
  );
}

/** An admin's resume, as `POST /v1/admin/instruments/{symbol}/resume` records it. */
export async function resumeInstrument(store: EventStore, symbol: string): Promise<void> {
  await handleCommand(
    store,
    instrumentStreamId(symbol),
    instrumentDecider,
    { type: 'ResumeTrading', at: new Date().toISOString() },
    meta('admin'),
  );
}

export async function deposit(store: EventStore, accountId: string, amount: number): Promise<void> {
  await handleCommand(store, walletStreamId(accountId), walletDecider, { type: 'Deposit', amount }, meta());
}

export async function transferSharesIn(
  store: EventStore,
  accountId: string,
  symbol: string,
  quantity: number,
  unitCost = 1000,
): Promise<void> {
  await handleCommand(
    store,
    walletStreamId(accountId),
    walletDecider,
    { type: 'TransferSharesIn', symbol, quantity, unitCost },
    meta(),
  );
}

export interface PlaceOrderInput {
  accountId: string;
  symbol: string;
  side: OrderSide;
  quantity: number;
  price?: number;
  stopPrice?: number;
  type?: OrderType;
  timeInForce?: TimeInForce;
  /** A GTD order's expiry (ISO 8601). */
  expiresAt?: string;
  orderId?: string;
}

/** Places an order as `POST /v1/orders` does: an OrderPlaced event on `order-{id}`. */
export async function placeOrder(store: EventStore, input: PlaceOrderInput): Promise<string> {
  const orderId = input.orderId ?? randomUUID();
  const custody = input.symbol.replace(/F$/, '');
  const instrument = (await loadAggregate(store, instrumentStreamId(custody), aggregateOf(instrumentDecider)))
    .state;
  await handleCommand(
    store,
    orderStreamId(orderId),
    orderDecider,
    {
      type: 'PlaceOrder',
      orderId,
      accountId: input.accountId,
      symbol: input.symbol,
      side: input.side,
      orderType: input.type ?? 'LIMIT',
      quantity: input.quantity,
      price: input.price ?? null,
      stopPrice: input.stopPrice ?? null,
      timeInForce: input.timeInForce ?? 'DAY',
      ...(input.expiresAt ? { expiresAt: input.expiresAt } : {}),
      instrument,
      at: new Date().toISOString(),
    },
    meta(input.accountId),
  );
  return orderId;
}

export async function requestCancel(store: EventStore, orderId: string, requestedBy: string): Promise<void> {
  await handleCommand(
    store,
    orderStreamId(orderId),
    orderDecider,
    { type: 'RequestCancel', requestedBy, at: new Date().toISOString() },
    meta(requestedBy),
  );
}

export async function orderOf(store: EventStore, orderId: string): Promise<Order> {
  return (await loadAggregate(store, orderStreamId(orderId), aggregateOf(orderDecider))).state;
}

export async function walletOf(store: EventStore, accountId: string): Promise<Wallet> {
  return (await loadAggregate(store, walletStreamId(accountId), aggregateOf(walletDecider))).state;
}

/** Cash (available + reserved) and shares per symbol (available + reserved), summed over the wallets. */
export async function totals(
  store: EventStore,
  accountIds: readonly string[],
): Promise<{ cash: number; shares: Record<string, number> }> {
  let cash = 0;
  const shares: Record<string, number> = {};
  for (const accountId of accountIds) {
    const wallet = await walletOf(store, accountId);
    cash += wallet.cash.available + wallet.cash.reserved;
    for (const [symbol, held] of Object.entries(wallet.positions))
      shares[symbol] = (shares[symbol] ?? 0) + held.available + held.reserved;
  }
  return { cash, shares };
}

/** Polls until `check` resolves truthy, or fails after `timeoutMs` with the last value seen. */
export async function eventually<T>(
  check: () => Promise<T>,
  timeoutMs = 15_000,
  what = 'condition',
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      last = await check();
      if (last) return last as NonNullable<T>;
    } catch (error) {
      lastError = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(
    `${what} not met in ${timeoutMs} ms (last: ${JSON.stringify(last)}${lastError ? `, error: ${String(lastError)}` : ''})`,
  );
}

/** Waits until every order is in one of the statuses. */
export async function ordersReach(
  store: EventStore,
  orderIds: readonly string[],
  statuses: readonly Order['status'][],
  timeoutMs = 15_000,
): Promise<Order[]> {
  return eventually(
    async () => {
      const orders = await Promise.all(orderIds.map((orderId) => orderOf(store, orderId)));
      return orders.every((order) => statuses.includes(order.status)) ? orders : undefined;
    },
    timeoutMs,
    `orders ${statuses.join('/')}`,
  );
}
