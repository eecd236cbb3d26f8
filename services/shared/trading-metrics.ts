import { Counter, Gauge, Histogram } from 'prom-client';
import type { BookEvent } from '../../domain/b3/book-events.ts';
import type { OrderEvent } from '../../domain/broker/order/events.ts';

/**
 * Metrics of the order path (prom-client default registry, on every service's `/metrics`). Each is
 * counted where the decision is appended (the order process for broker orders, the B3 engine for
 * its books), never where a replay or a redelivery finds it made already. Labels stay few: a
 * symbol (the catalogue is small), a type, an outcome, a reason code; never an account or order id.
 */

export const orderProcessSteps = new Counter({
  name: 'tradecore_order_process_steps_total',
  help: 'Steps the order process manager took, by step (reserved, rejected, canceled-before-routing, routed, cancel-sent, released, settled, ended, halt-sent, resume-sent); a step replayed after a crash counts again',
  labelNames: ['step'] as const,
});

/** How far each running order process is behind its store, asked at each scrape. */
const orderProcessLags = new Map<object, { name: string; lag: () => Promise<number> }>();

/**
 * Counts an order process in `tradecore_order_process_lag_positions` while it runs, by its
 * checkpoint's name; `undefined` once it stops.
 */
export function trackOrderProcessLag(
  process: object,
  name: string,
  lag: (() => Promise<number>) | undefined,
): void {
  if (lag) orderProcessLags.set(process, { name, lag });
  else if (orderProcessLags.delete(process)) orderProcessLag.remove({ process: name });
}

export const orderProcessLag = new Gauge({
  name: 'tradecore_order_process_lag_positions',
  help: 'Head position of the broker event store minus the order process checkpoint: placed orders (and cancels) waiting to be reserved and sent to B3 show here, while the API keeps accepting them',
  labelNames: ['process'] as const,
  async collect() {
    for (const { name, lag } of orderProcessLags.values())
      this.set({ process: name }, await lag().catch(() => Number.NaN));
  },
});

export const ordersEnded = new Counter({
  name: 'tradecore_orders_ended_total',
  help: 'Broker orders that reached a final status, by outcome (FILLED, CANCELED, EXPIRED, REJECTED) and reason (REJECTED: the wallet or B3 reason code; CANCELED: who or which B3 rule canceled it; EXPIRED: END_OF_DAY or GOOD_TILL_DATE). Counted once, when the order process appends the final event: a replay or a redelivered report decides nothing and counts nothing (an append whose answer was lost is not counted)',
  labelNames: ['outcome', 'reason'] as const,
});

export const engineMessages = new Counter({
  name: 'tradecore_engine_messages_total',
  help: "Messages and session commands the B3 engine decided, by type and outcome: accepted, rejected (with the reason code), unchanged (nothing to record), counted once when the book events are appended; duplicate: a redelivery of one already booked (its reports are sent again), counted on every redelivery; resent: a session command whose reports a book's recovery sent again after a crash",
  labelNames: ['type', 'outcome', 'reason'] as const,
});

export const matchingSeconds = new Histogram({
  name: 'tradecore_engine_matching_seconds',
  help: "Time the B3 engine took to decide a message, by type: from taking it (queued in its symbol's line) until the book events of its decision are appended to book-{symbol}; includes waiting for the symbol's line, the reference-price check, matching and the group-commit append, not the trades and reports sent after. Not observed for a duplicate or a failed append (the message is retried)",
  labelNames: ['type'] as const,
  buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
});

export const trades = new Counter({
  name: 'tradecore_engine_trades_total',
  help: 'Trades the B3 engine matched, by symbol; counted when the match is appended to book-{symbol}',
  labelNames: ['symbol'] as const,
});

export const tradedShares = new Counter({
  name: 'tradecore_engine_traded_shares_total',
  help: 'Shares traded at B3, by symbol',
  labelNames: ['symbol'] as const,
});

export const tradedNotional = new Counter({
  name: 'tradecore_engine_traded_notional_cents_total',
  help: 'Value traded at B3 (price × quantity), in integer cents of BRL, by symbol',
  labelNames: ['symbol'] as const,
});

export const executions = new Counter({
  name: 'tradecore_engine_executions_total',
  help: "Order executions at B3, two per trade, by symbol, the order's side (BUY, SELL) and liquidity: taker (the incoming, aggressor order) or maker (the resting order)",
  labelNames: ['symbol', 'side', 'liquidity'] as const,
});

export const referencePriceRejections = new Counter({
  name: 'tradecore_engine_reference_price_rejections_total',
  help: 'Orders the B3 engine rejected for want of a usable reference price, by reason',
  labelNames: ['reason'] as const,
});

export const quotesPublished = new Counter({
  name: 'tradecore_market_data_quotes_total',
  help: 'Quotes the market data feed sent to the caches and the event store, by source',
  labelNames: ['source'] as const,
});

/** Labelled children made once and kept: counting an order allocates no label object. */
function children<Child>(make: (key: string) => Child): (key: string) => Child {
  const made = new Map<string, Child>();
  return (key) => {
    let child = made.get(key);
    if (child === undefined) {
      child = make(key);
      made.set(key, child);
    }
    return child;
  };
}

const ended = {
  FILLED: ordersEnded.labels({ outcome: 'FILLED' }),
  EXPIRED: children((reason) => ordersEnded.labels({ outcome: 'EXPIRED', ...(reason ? { reason } : {}) })),
  REJECTED: children((reason) => ordersEnded.labels({ outcome: 'REJECTED', reason })),
  CANCELED: children((reason) => ordersEnded.labels({ outcome: 'CANCELED', ...(reason ? { reason } : {}) })),
};

/**
 * Counts the orders a command on an order stream ended. Only what the command appended counts:
 * the decider decides nothing for a repeat (a replayed step, a redelivered report), and an append
 * whose events were stored already (`idempotent`) wrote nothing. The price of never counting twice:
 * an end whose append was stored but whose answer was lost (the command failed, its repeat is
 * answered "stored already") is not counted at all. A cache that missed the end answers every
 * further repeat that way too, so counting idempotent answers could count one end many times.
 */
export function countOrdersEnded(result: {
  events: ReadonlyArray<Pick<OrderEvent, 'type' | 'data'>>;
  idempotent?: boolean;
}): void {
  if (result.idempotent) return;
  for (const event of result.events as OrderEvent[]) {
    switch (event.type) {
      case 'OrderFilled':
        ended.FILLED.inc();
        break;
      case 'OrderExpired':
        ended.EXPIRED(event.data.reason ?? '').inc();
        break;
      case 'OrderRejected':
        ended.REJECTED(event.data.reason).inc();
        break;
      case 'OrderCanceled':
        ended.CANCELED(event.data.reason ?? '').inc();
        break;
    }
  }
}

const decidedAs = children((type) => ({
  accepted: engineMessages.labels({ type, outcome: 'accepted' }),
  unchanged: engineMessages.labels({ type, outcome: 'unchanged' }),
  duplicate: engineMessages.labels({ type, outcome: 'duplicate' }),
  resent: engineMessages.labels({ type, outcome: 'resent' }),
  rejected: children((reason) => engineMessages.labels({ type, outcome: 'rejected', reason })),
  matching: matchingSeconds.labels({ type }),
}));

const tradedIn = children((symbol) => ({
  trades: trades.labels({ symbol }),
  shares: tradedShares.labels({ symbol }),
  notional: tradedNotional.labels({ symbol }),
  BUY: {
    taker: executions.labels({ symbol, side: 'BUY', liquidity: 'taker' }),
    maker: executions.labels({ symbol, side: 'BUY', liquidity: 'maker' }),
  },
  SELL: {
    taker: executions.labels({ symbol, side: 'SELL', liquidity: 'taker' }),
    maker: executions.labels({ symbol, side: 'SELL', liquidity: 'maker' }),
  },
}));

/**
 * Counts what the B3 engine decided for one request once its events are appended: the outcome
 * (rejected when one of its events refuses the request's own order or request), the matching time
 * since it was taken, and its trades. Returns the rejection's reason, if it was one.
 */
export function countEngineDecision(
  symbol: string,
  type: string,
  orderId: string | undefined,
  events: readonly BookEvent[],
  seconds: number,
): string | undefined {
  const counted = decidedAs(type);
  counted.matching.observe(seconds);
  let rejection: string | undefined;
  for (const event of events) {
    if (event.type === 'OrdersMatched') {
      const { quantity, price, aggressorSide } = event.data;
      const traded = tradedIn(symbol);
      traded.trades.inc();
      traded.shares.inc(quantity);
      traded.notional.inc(quantity * price);
      traded[aggressorSide].taker.inc();
      traded[aggressorSide === 'BUY' ? 'SELL' : 'BUY'].maker.inc();
    } else if (
      rejection === undefined &&
      (event.type === 'OrderRejected' || event.type === 'RequestRejected') &&
      (orderId === undefined || event.data.orderId === orderId)
    )
      rejection = event.data.reason;
  }
  if (rejection !== undefined) counted.rejected(rejection).inc();
  else if (events.length === 0) counted.unchanged.inc();
  else counted.accepted.inc();
  return rejection;
}

/** A redelivered request the engine found booked already: its decision was counted when it was made. */
export function countEngineDuplicate(type: string): void {
  decidedAs(type).duplicate.inc();
}

/** A session command whose reports a book's recovery sent again after a crash. */
export function countEngineResent(type: string): void {
  decidedAs(type).resent.inc();
}
