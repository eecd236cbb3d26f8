import type { BookEvent } from '../../domain/b3/book-events.ts';
import { bookStreamId, tradeExecuted, tradeStreamId } from '../../domain/b3/book-events.ts';
import { OrderBook } from '../../domain/b3/order-book.ts';
import { quoteStreamId } from '../../domain/b3/quote-events.ts';
import {
  type Instrument,
  type InstrumentCommand,
  initialInstrument,
  instrumentDecider,
  instrumentStreamId,
} from '../../domain/broker/instrument/instrument.ts';
import type { NewEvent } from '../../domain/shared/event-store.ts';

/**
 * A deterministic trading day, as real domain events: the B3 side comes from the real matching
 * engine (`OrderBook.execute`), the broker side follows it the way the order process manager does
 * (place, reserve, accept, record executions, settle, fill or cancel and release). The catalogue
 * lists the symbols before the day opens, and after its last request an admin sets each one's next
 * reference price, halts the first and halts and resumes the second (the instrument decider's
 * events, so the catalogue read model has all of its kinds to project). Same seed, same
 * events, ids included: for the read-model tests and the projections benchmark. Pure: no clock,
 * no I/O, randomness from the seed.
 */
export interface WorkloadEvent {
  store: 'broker' | 'b3';
  streamId: string;
  event: NewEvent;
}

export interface WorkloadOptions {
  seed: number;
  /** How many trader requests (orders and cancels) to generate. */
  requests: number;
  symbols?: string[];
  accounts?: number;
  /** Epoch milliseconds of the first event. */
  start?: number;
}

interface OpenOrder {
  orderId: string;
  accountId: string;
  symbol: string;
  side: 'BUY' | 'SELL';
  quantity: number;
  filled: number;
  notional: number;
  /** Per-share price the buy reservation covers. */
  reservedPrice: number;
  correlationId: string;
}

const REFERENCE_PRICE = 3_000;
const PRICE_BAND_BPS = 1_000;

export function* tradingWorkload(options: WorkloadOptions): Generator<WorkloadEvent> {
  const random = mulberry32(options.seed);
  const symbols = options.symbols ?? ['PETR4', 'VALE3', 'ITUB4', 'BBDC4'];
  const accounts = Array.from(
    { length: options.accounts ?? 20 },
    (_, index) => `acc-${options.seed}-${index}`,
  );
  let now = options.start ?? Date.UTC(2026, 0, 5, 13, 0, 0);
  let sequence = 0;
  let correlationId = 'setup';
  const books = new Map(
    symbols.map((symbol) => [
      symbol,
      new OrderBook(symbol, { tradeId: (s, n) => `${s}-${options.seed}-${n}` }),
    ]),
  );
  const instruments = new Map<string, Instrument>(symbols.map((symbol) => [symbol, initialInstrument()]));
  const orders = new Map<string, OpenOrder>();
  const resting: string[] = [];
  const held = new Map<string, { shares: number; cost: number }>();

  const id = () => {
    sequence += 1;
    const hex = sequence.toString(16).padStart(12, '0');
    const seed = (options.seed >>> 0).toString(16).padStart(8, '0');
    return `${seed}-0000-4000-8000-${hex}`;
  };
  const event = (store: 'broker' | 'b3', streamId: string, type: string, data: unknown): WorkloadEvent => ({
    store,
    streamId,
    event: {
      id: id(),
      type,
      data,
      metadata: {
        correlationId,
        causationId: correlationId,
        actor: store === 'broker' ? 'broker' : 'b3-engine',
        occurredAt: new Date(now).toISOString(),
      },
    },
  });
  const iso = () => new Date(now).toISOString();
  const positionOf = (accountId: string, symbol: string) => {
    const key = `${accountId}/${symbol}`;
    let position = held.get(key);
    if (!position) {
      position = { shares: 0, cost: 0 };
      held.set(key, position);
    }
    return position;
  };

  /** A catalogue command through the instrument decider: its events, in the instrument's stream. */
  function* catalogue(symbol: string, command: InstrumentCommand): Generator<WorkloadEvent> {
    let instrument = instruments.get(symbol)!;
    for (const decided of instrumentDecider.decide(command, instrument)) {
      instrument = instrumentDecider.evolve(instrument, decided);
      yield event('broker', instrumentStreamId(symbol), decided.type, decided.data);
    }
    instruments.set(symbol, instrument);
  }

  function* engine(symbol: string, events: BookEvent[]): Generator<WorkloadEvent> {
    const book = books.get(symbol)!;
    for (const bookEvent of events) {
      yield event('b3', bookStreamId(symbol), bookEvent.type, bookEvent.data);
      if (bookEvent.type === 'OrdersMatched') {
        const trade = tradeExecuted(symbol, bookEvent.data);
        yield event('b3', tradeStreamId(trade.data.tradeId), trade.type, trade.data);
        for (const [orderId, remaining] of [
          [bookEvent.data.restingOrderId, bookEvent.data.restingRemaining],
          [bookEvent.data.incomingOrderId, bookEvent.data.incomingRemaining],
        ] as const)
          yield* execution(
            orderId,
            bookEvent.data.tradeId,
            bookEvent.data.quantity,
            bookEvent.data.price,
            remaining,
          );
      }
      if (bookEvent.type === 'OrderRested') resting.push(bookEvent.data.orderId);
      if (bookEvent.type === 'OrderRejected') yield* rejected(bookEvent.data.orderId, bookEvent.data.reason);
      if (bookEvent.type === 'OrderCanceled' || bookEvent.type === 'OrderExpired')
        yield* canceled(
          bookEvent.data.orderId,
          bookEvent.data.remaining,
          bookEvent.type === 'OrderCanceled' ? bookEvent.data.reason : null,
        );
    }
    yield event('b3', quoteStreamId(symbol), 'QuoteReceived', {
      symbol,
      bid: book.bestBid ?? null,
      ask: book.bestAsk ?? null,
      bidSize: 0,
      askSize: 0,
      last: book.lastPrice ?? null,
      volume: 0,
      source: 'b3-engine',
      at: now,
    });
  }

  function* execution(
    orderId: string,
    tradeId: string,
    quantity: number,
    price: number,
    remaining: number,
  ): Generator<WorkloadEvent> {
    const order = orders.get(orderId)!;
    order.filled += quantity;
    order.notional += quantity * price;
    const averagePrice = Math.round(order.notional / order.filled);
    const executionId = `${tradeId}-${order.side === 'BUY' ? 'B' : 'S'}`;
    const saved = correlationId;
    correlationId = order.correlationId;
    yield event('broker', `order-${orderId}`, 'ExecutionRecorded', {
      orderId,
      executionId,
      quantity,
      price,
      executedAt: iso(),
      filledQuantity: order.filled,
      remainingQuantity: remaining,
      averagePrice,
    });
    const position = positionOf(order.accountId, order.symbol);
    if (order.side === 'BUY') {
      position.shares += quantity;
      position.cost += quantity * price;
      yield event('broker', `wallet-${order.accountId}`, 'BuySettled', {
        executionId,
        orderId,
        symbol: order.symbol,
        quantity,
        price,
        amount: quantity * price,
        released: quantity * (order.reservedPrice - price),
        fromAvailable: 0,
      });
    } else {
      const costBasisRemoved = Math.round((position.cost * quantity) / Math.max(position.shares, quantity));
      position.shares -= quantity;
      position.cost -= costBasisRemoved;
      yield event('broker', `wallet-${order.accountId}`, 'SellSettled', {
        executionId,
        orderId,
        symbol: order.symbol,
        quantity,
        price,
        amount: quantity * price,
        costBasisRemoved,
      });
    }
    if (remaining === 0) {
      yield event('broker', `order-${orderId}`, 'OrderFilled', {
        orderId,
        filledQuantity: order.filled,
        averagePrice,
        at: iso(),
      });
      orders.delete(orderId);
    }
    correlationId = saved;
  }

  function* rejected(orderId: string, reason: string): Generator<WorkloadEvent> {
    const order = orders.get(orderId);
    if (!order) return;
    yield event('broker', `order-${orderId}`, 'OrderRejected', { orderId, reason, detail: null, at: iso() });
    yield event('broker', `wallet-${order.accountId}`, 'ReservationReleased', {
      orderId,
      symbol: order.symbol,
      side: order.side,
      cash: order.side === 'BUY' ? order.quantity * order.reservedPrice : 0,
      shares: order.side === 'SELL' ? order.quantity : 0,
    });
    orders.delete(orderId);
  }

  function* canceled(orderId: string, remaining: number, reason: string | null): Generator<WorkloadEvent> {
    const order = orders.get(orderId);
    if (!order) return;
    const saved = correlationId;
    correlationId = order.correlationId;
    yield event('broker', `order-${orderId}`, 'OrderCanceled', {
      orderId,
      canceledQuantity: remaining,
      reason,
      at: iso(),
    });
    yield event('broker', `wallet-${order.accountId}`, 'ReservationReleased', {
      orderId,
      symbol: order.symbol,
      side: order.side,
      cash: order.side === 'BUY' ? remaining * order.reservedPrice : 0,
      shares: order.side === 'SELL' ? remaining : 0,
    });
    orders.delete(orderId);
    correlationId = saved;
  }

  // The catalogue lists the day's symbols: standard lot 100, tick R$ 0.01, a fractional market each.
  correlationId = 'catalogue';
  for (const symbol of symbols)
    yield* catalogue(symbol, {
      type: 'ListInstrument',
      symbol,
      name: `${symbol} workload`,
      lotSize: 100,
      tickSize: 1,
      fractional: true,
      referencePrice: REFERENCE_PRICE,
      at: iso(),
    });
  // The day opens: books at their reference price, accounts funded with cash and shares.
  for (const symbol of symbols)
    yield* engine(
      symbol,
      books.get(symbol)!.execute({
        type: 'OpenBook',
        referencePrice: REFERENCE_PRICE,
        priceBandBps: PRICE_BAND_BPS,
        at: now,
      }),
    );
  for (const accountId of accounts) {
    correlationId = `fund-${accountId}`;
    yield event('broker', `wallet-${accountId}`, 'CashDeposited', { amount: 100_000_000_000 });
    for (const symbol of symbols) {
      positionOf(accountId, symbol).shares += 10_000_000;
      positionOf(accountId, symbol).cost += 10_000_000 * REFERENCE_PRICE;
      yield event('broker', `wallet-${accountId}`, 'SharesTransferredIn', {
        symbol,
        quantity: 10_000_000,
        unitCost: REFERENCE_PRICE,
      });
    }
  }

  for (let request = 1; request <= options.requests; request += 1) {
    now += 50 + Math.floor(random() * 450);
    correlationId = `req-${options.seed}-${request}`;
    const accountId = accounts[Math.floor(random() * accounts.length)]!;
    if (random() < 0.1 && resting.length > 0) {
      const orderId = resting.splice(Math.floor(random() * resting.length), 1)[0]!;
      const order = orders.get(orderId);
      if (!order) continue;
      correlationId = order.correlationId;
      yield event('broker', `order-${orderId}`, 'OrderCancelRequested', {
        orderId,
        requestedBy: order.accountId,
        at: iso(),
      });
      yield* engine(
        order.symbol,
        books
          .get(order.symbol)!
          .execute({ type: 'CancelOrder', orderId, accountId: order.accountId, at: now }),
      );
      continue;
    }
    const symbol = symbols[Math.floor(random() * symbols.length)]!;
    const side = random() < 0.5 ? 'BUY' : 'SELL';
    const market = random() < 0.08;
    const quantity = 100 * (1 + Math.floor(random() * 5));
    // Limit prices within 2% of the reference, buyers a little lower: the book fills up and trades.
    const offset = Math.floor(random() * 60) - (side === 'BUY' ? 35 : 25);
    const price = REFERENCE_PRICE + offset;
    const timeInForce = market || random() < 0.1 ? 'IOC' : 'DAY';
    const orderId = `ord-${options.seed}-${request}`;
    const reservedPrice = market ? Math.floor((REFERENCE_PRICE * (10_000 + PRICE_BAND_BPS)) / 10_000) : price;
    orders.set(orderId, {
      orderId,
      accountId,
      symbol,
      side,
      quantity,
      filled: 0,
      notional: 0,
      reservedPrice,
      correlationId,
    });
    yield event('broker', `order-${orderId}`, 'OrderPlaced', {
      orderId,
      accountId,
      symbol,
      custodySymbol: symbol,
      market: 'STANDARD',
      side,
      type: market ? 'MARKET' : 'LIMIT',
      quantity,
      price: market ? null : price,
      stopPrice: null,
      timeInForce,
      expiresAt: null,
      placedAt: iso(),
    });
    if (side === 'BUY')
      yield event('broker', `wallet-${accountId}`, 'CashReserved', {
        orderId,
        symbol,
        quantity,
        price: reservedPrice,
        amount: quantity * reservedPrice,
        basis: market ? 'PRICE_BAND_UPPER_EDGE' : 'LIMIT_PRICE',
      });
    else yield event('broker', `wallet-${accountId}`, 'SharesReserved', { orderId, symbol, quantity });
    yield event('broker', `order-${orderId}`, 'OrderAccepted', { orderId, at: iso() });
    yield* engine(
      symbol,
      books.get(symbol)!.execute({
        type: 'PlaceOrder',
        orderId,
        accountId,
        side,
        orderType: market ? 'MARKET' : 'LIMIT',
        quantity,
        ...(market ? {} : { price }),
        timeInForce,
        at: now,
      }),
    );
  }

  // After the session: the next reference price is each symbol's last trade; then the first symbol
  // is halted (and stays so), the second halted and resumed.
  now += 1_000;
  correlationId = `close-${options.seed}`;
  for (const symbol of symbols)
    yield* catalogue(symbol, {
      type: 'UpdateReferencePrice',
      referencePrice: books.get(symbol)!.lastPrice ?? REFERENCE_PRICE,
      at: iso(),
    });
  const [halted, resumed] = symbols;
  if (halted) yield* catalogue(halted, { type: 'HaltTrading', reason: 'corporate event pending', at: iso() });
  if (resumed) {
    yield* catalogue(resumed, { type: 'HaltTrading', reason: 'volatility auction', at: iso() });
    now += 1_000;
    yield* catalogue(resumed, { type: 'ResumeTrading', at: iso() });
  }
}

/** Appends a workload to its two event stores, a stream's consecutive events in one append. */
export async function appendWorkload(
  stores: {
    broker: { append(stream: string, events: NewEvent[]): Promise<unknown> };
    b3: { append(stream: string, events: NewEvent[]): Promise<unknown> };
  },
  events: Iterable<WorkloadEvent>,
): Promise<number> {
  let count = 0;
  let pending: WorkloadEvent[] = [];
  const flush = async () => {
    if (pending.length === 0) return;
    await stores[pending[0]!.store].append(
      pending[0]!.streamId,
      pending.map((item) => item.event),
    );
    pending = [];
  };
  for (const item of events) {
    const last = pending.at(-1);
    if (last && (last.streamId !== item.streamId || last.store !== item.store)) await flush();
    pending.push(item);
    count += 1;
  }
  await flush();
  return count;
}

function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}
