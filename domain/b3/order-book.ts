import { z } from 'zod';
import { priceBandEdges } from '../shared/money.ts';
import {
  type BookEvent,
  type CancelReason,
  type ExpireReason,
  OrderType,
  type RejectReason,
  Side,
  TimeInForce,
} from './book-events.ts';
import type { BookCommand, CancelOrder, EndOfDay, ModifyOrder, OpenBook, PlaceOrder } from './commands.ts';
import { OrderIndex } from './order-index.ts';

/**
 * The B3 matching engine: one order book per symbol, price-time priority, integer cents and shares.
 *
 * This is the hot path, so the book is mutable: `execute` decides and changes the book in one pass,
 * and every change goes through the same small `apply…` methods that `apply(event)` uses on replay,
 * so the live book and a book rebuilt from its events cannot drift apart (the property tests check it).
 *
 * Layout: each side keeps its price levels in an array sorted worst → best (the best level is the
 * last element, so consuming it is a `pop`), a Map from price to level, and each level is an
 * intrusive doubly linked FIFO of orders; one hash index (`OrderIndex`) holds the orders waiting in
 * the book (resting or parked stops) by id, so a cancel is O(1) apart from removing an emptied level.
 * The order being matched is held apart (`incoming`) and enters the index only if it rests: market
 * orders and orders filled on arrival never touch it, which spares two index writes on a hot path.
 */

export interface OrderBookOptions {
  /** The id of the trade made by the `OrdersMatched` event with this sequence. Deterministic: no clock, no randomness. */
  tradeId?: (symbol: string, sequence: number) => string;
}

export type BookStatus = 'NOT_OPEN' | 'OPEN' | 'HALTED';

const NO_EVENTS: BookEvent[] = [];
/** Enough spare orders for the churn of a busy book, without holding on to a whole flushed book. */
const MAX_SPARE_ORDERS = 16_384;
const BPS = 10_000;
const defaultTradeId = (symbol: string, sequence: number): string => `${symbol}-${sequence}`;
const isPositiveInteger = (value: unknown): value is number =>
  typeof value === 'number' && Number.isSafeInteger(value) && value > 0;

/** One order the book knows: resting at a price level, parked as an untriggered stop, or incoming. */
class BookOrder {
  prev: BookOrder | null = null;
  next: BookOrder | null = null;
  level: PriceLevel | null = null;
  id = '';
  accountId = '';
  side: Side = 'BUY';
  orderType: OrderType = 'LIMIT';
  timeInForce: TimeInForce = 'DAY';
  /** Limit price in cents; 0 for market orders. */
  price = 0;
  /** Trigger price in cents; 0 when not a stop. */
  stopPrice = 0;
  /** Total quantity, filled shares included. */
  quantity = 0;
  /** Open quantity, hidden iceberg shares included. */
  remaining = 0;
  /** Quantity shown at the price level (the iceberg's current slice). */
  visible = 0;
  /** Iceberg slice size; 0 when the order shows everything. */
  display = 0;
  /** GTD expiry instant; 0 when none (a GTD expiry is always after its command's instant ≥ 0). */
  expiresAt = 0;
  acceptedSequence = 0;
  /** When the book accepted it (epoch ms): which session a DAY order belongs to. */
  acceptedAt = 0;
  parked = false;

  /** Sets every field: a new order, or a spare one taken back from a finished order. */
  init(
    id: string,
    accountId: string,
    side: Side,
    orderType: OrderType,
    timeInForce: TimeInForce,
    price: number,
    stopPrice: number,
    quantity: number,
    remaining: number,
    visible: number,
    display: number,
    expiresAt: number,
    acceptedSequence: number,
    acceptedAt: number,
    parked: boolean,
  ): BookOrder {
    this.prev = null;
    this.next = null;
    this.level = null;
    this.id = id;
    this.accountId = accountId;
    this.side = side;
    this.orderType = orderType;
    this.timeInForce = timeInForce;
    this.price = price;
    this.stopPrice = stopPrice;
    this.quantity = quantity;
    this.remaining = remaining;
    this.visible = visible;
    this.display = display;
    this.expiresAt = expiresAt;
    this.acceptedSequence = acceptedSequence;
    this.acceptedAt = acceptedAt;
    this.parked = parked;
    return this;
  }
}

class PriceLevel {
  head: BookOrder | null = null;
  tail: BookOrder | null = null;
  count = 0;
  /** Open quantity of the level's orders, hidden iceberg shares included. */
  quantity = 0;
  /** What the market sees at this price. */
  visible = 0;
  constructor(readonly price: number) {}
}

class BookSide {
  /** Sorted worst → best: the best level is last. */
  readonly levels: PriceLevel[] = [];
  private readonly byPrice = new Map<number, PriceLevel>();

  constructor(readonly bid: boolean) {}

  best(): PriceLevel | undefined {
    return this.levels[this.levels.length - 1];
  }

  append(order: BookOrder): void {
    let level = this.byPrice.get(order.price);
    if (level === undefined) {
      level = new PriceLevel(order.price);
      this.byPrice.set(order.price, level);
      this.insertLevel(level);
    }
    this.link(level, order);
  }

  remove(order: BookOrder): void {
    const level = order.level!;
    this.unlink(level, order);
    if (level.count === 0) this.removeLevel(level);
  }

  /** Sends an order to the back of its level's queue (an iceberg's new slice). */
  requeue(order: BookOrder, visible: number): void {
    const level = order.level!;
    this.unlink(level, order);
    order.visible = visible;
    this.link(level, order);
  }

  private link(level: PriceLevel, order: BookOrder): void {
    order.level = level;
    order.prev = level.tail;
    order.next = null;
    if (level.tail === null) level.head = order;
    else level.tail.next = order;
    level.tail = order;
    level.count++;
    level.quantity += order.remaining;
    level.visible += order.visible;
  }

  private unlink(level: PriceLevel, order: BookOrder): void {
    if (order.prev === null) level.head = order.next;
    else order.prev.next = order.next;
    if (order.next === null) level.tail = order.prev;
    else order.next.prev = order.prev;
    order.prev = null;
    order.next = null;
    order.level = null;
    level.count--;
    level.quantity -= order.remaining;
    level.visible -= order.visible;
  }

  /** Index of the first level whose price is better than `price`. */
  private firstBetterThan(price: number): number {
    const levels = this.levels;
    let low = 0;
    let high = levels.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      const other = levels[middle]!.price;
      if (this.bid ? other > price : other < price) high = middle;
      else low = middle + 1;
    }
    return low;
  }

  private insertLevel(level: PriceLevel): void {
    const levels = this.levels;
    const best = levels[levels.length - 1];
    if (best === undefined || (this.bid ? level.price > best.price : level.price < best.price))
      levels.push(level);
    else levels.splice(this.firstBetterThan(level.price), 0, level);
  }

  private removeLevel(level: PriceLevel): void {
    this.byPrice.delete(level.price);
    const levels = this.levels;
    if (levels[levels.length - 1] === level) levels.pop();
    else levels.splice(this.firstBetterThan(level.price) - 1, 1);
  }
}

export class OrderBook {
  private status: BookStatus = 'NOT_OPEN';
  private referencePrice = 0;
  private priceBandBps = 0;
  private bandLow = 0;
  private bandHigh = 0;
  private sequence = 0;
  private lastTradePrice = 0;
  private readonly bids = new BookSide(true);
  private readonly asks = new BookSide(false);
  /** The orders waiting in the book, resting or parked, by id: never the incoming order. */
  private readonly orders = new OrderIndex<BookOrder>();
  /**
   * Orders that left the book, kept to be reused by the next ones: most orders live a few
   * microseconds, and reusing them spares the young-generation collector from copying and promoting
   * every resting order. An order goes back here only once nothing in the book refers to it.
   */
  private readonly spare: BookOrder[] = [];
  /** Untriggered buy stops, lowest stop price first (the first to fire on a rising price), then by arrival. */
  private readonly buyStops: BookOrder[] = [];
  /** Untriggered sell stops, highest stop price first, then by arrival. */
  private readonly sellStops: BookOrder[] = [];
  /** The order being matched during a command (not in `orders`); null between commands. */
  private incoming: BookOrder | null = null;
  /** No GTD order expires before this instant (a lower bound: canceled orders are not taken out). */
  private nextExpiry = Number.POSITIVE_INFINITY;
  /** The close the book last ended a session for (its last SessionEnded's `closedAt`; 0 before any). */
  private sessionEndedAt = 0;
  /** When the book's first event happened (epoch ms; 0 before any): a close before it ended no session of the book. */
  private openedAt = 0;
  /** The newest catalogue version a halt or resume came with (0 before any; see `CatalogueVersioned`). */
  private catalogueVersion = 0;
  private readonly tradeIdOf: (symbol: string, sequence: number) => string;
  private out: BookEvent[] = NO_EVENTS;
  private at = 0;

  constructor(
    readonly symbol: string,
    options: OrderBookOptions = {},
  ) {
    this.tradeIdOf = options.tradeId ?? defaultTradeId;
  }

  /** Rebuilds a book from its events (from the first, `BookOpened`). */
  static replay(symbol: string, events: Iterable<BookEvent>, options?: OrderBookOptions): OrderBook {
    const book = new OrderBook(symbol, options);
    for (const event of events) book.apply(event);
    return book;
  }

  /** Rebuilds a book from a snapshot; apply the events after `snapshot.sequence` to bring it up to date. */
  static fromSnapshot(snapshot: BookSnapshot, options?: OrderBookOptions): OrderBook {
    const book = new OrderBook(snapshot.symbol, options);
    book.status = snapshot.status;
    book.setBand(snapshot.referencePrice, snapshot.priceBandBps);
    book.sequence = snapshot.sequence;
    book.lastTradePrice = snapshot.lastTradePrice;
    book.sessionEndedAt = snapshot.sessionEndedAt;
    book.openedAt = snapshot.openedAt;
    book.catalogueVersion = snapshot.catalogueVersion;
    for (const state of [...snapshot.bids, ...snapshot.asks, ...snapshot.stops]) {
      const order = book
        .newOrder()
        .init(
          state.orderId,
          state.accountId,
          state.side,
          state.orderType,
          state.timeInForce,
          state.price,
          state.stopPrice,
          state.quantity,
          state.remaining,
          state.displayedQuantity,
          state.displayQuantity,
          state.expiresAt,
          state.acceptedSequence,
          state.acceptedAt,
          state.parked,
        );
      book.orders.add(order);
      if (order.parked) book.park(order);
      else book.sideOf(order).append(order);
      if (order.expiresAt !== 0 && order.expiresAt < book.nextExpiry) book.nextExpiry = order.expiresAt;
    }
    return book;
  }

  get bookStatus(): BookStatus {
    return this.status;
  }

  /** The sequence of the last event the book includes (0 before any). */
  get lastSequence(): number {
    return this.sequence;
  }

  /**
   * The earliest GTD expiry among the orders it holds, or undefined: when an `ExpireOrders` has
   * something to do. A lower bound: an order that left the book early may still set it, and then
   * the tick expires nothing.
   */
  get pendingExpiry(): number | undefined {
    return this.nextExpiry === Number.POSITIVE_INFINITY ? undefined : this.nextExpiry;
  }

  /** When the book last ended a session (epoch ms; 0 before any). */
  get lastSessionEnd(): number {
    return this.sessionEndedAt;
  }

  /**
   * Whether the session that closed at `closedAt` is one the book has yet to end: the book had
   * events by then (its first at or before the close, which takes the orders accepted at its
   * instant) and no `SessionEnded` at or after it. A book opened after a close has no session before it.
   */
  hasSessionToEnd(closedAt: number): boolean {
    return this.sequence > 0 && this.openedAt <= closedAt && this.sessionEndedAt < closedAt;
  }

  get lastPrice(): number | undefined {
    return this.lastTradePrice === 0 ? undefined : this.lastTradePrice;
  }

  get bestBid(): number | undefined {
    return this.bids.best()?.price;
  }

  get bestAsk(): number | undefined {
    return this.asks.best()?.price;
  }

  /** How many orders the book holds: resting and parked stops. */
  get size(): number {
    return this.orders.size;
  }

  /**
   * Decides a command: pushes its events onto `out` (a fresh array by default; pass a reused one
   * on hot paths) and applies them to the book. Throws only for commands no trader sends
   * (opening a book twice, a non-positive reference price): everything else is an event.
   */
  execute(command: BookCommand, out: BookEvent[] = []): BookEvent[] {
    this.out = out;
    this.at = command.at;
    const firstCommand = this.sequence === 0;
    try {
      if (command.at >= this.nextExpiry) this.expireGoodTillDate(command.at);
      switch (command.type) {
        case 'PlaceOrder':
          this.place(command);
          break;
        case 'CancelOrder':
          this.cancelRequest(command);
          break;
        case 'ModifyOrder':
          this.modify(command);
          break;
        case 'OpenBook':
          this.open(command);
          break;
        case 'SetReferencePrice':
          if (!isPositiveInteger(command.referencePrice))
            throw new RangeError('reference price must be positive cents');
          this.out.push({
            type: 'ReferencePriceSet',
            data: { sequence: ++this.sequence, at: this.at, referencePrice: command.referencePrice },
          });
          this.setBand(command.referencePrice, this.priceBandBps);
          break;
        case 'HaltTrading': {
          // A book not opened yet is halted too: the order that would open it must be refused.
          const version = command.catalogueVersion;
          if (version === undefined ? this.status === 'HALTED' : version <= this.catalogueVersion) break;
          this.out.push({
            type: 'TradingHalted',
            data: {
              sequence: ++this.sequence,
              at: this.at,
              ...(command.reason !== undefined ? { reason: command.reason } : {}),
              ...(version !== undefined ? { catalogueVersion: version } : {}),
            },
          });
          this.applyHalted(version);
          break;
        }
        case 'ResumeTrading': {
          const version = command.catalogueVersion;
          if (version === undefined ? this.status !== 'HALTED' : version <= this.catalogueVersion) break;
          this.out.push({
            type: 'TradingResumed',
            data: {
              sequence: ++this.sequence,
              at: this.at,
              ...(version !== undefined ? { catalogueVersion: version } : {}),
            },
          });
          this.applyResumed(version);
          break;
        }
        case 'EndOfDay':
          this.endSession(command);
          break;
        case 'ExpireOrders':
          break;
      }
    } finally {
      this.out = NO_EVENTS;
    }
    if (firstCommand && this.sequence > 0) this.openedAt = command.at;
    return out;
  }

  /** Applies one recorded event: how a book is rebuilt from its stream (or a snapshot plus the tail). */
  apply(event: BookEvent): void {
    switch (event.type) {
      case 'BookOpened':
        this.status = 'OPEN';
        this.setBand(event.data.referencePrice, event.data.priceBandBps);
        break;
      case 'ReferencePriceSet':
        this.setBand(event.data.referencePrice, this.priceBandBps);
        break;
      case 'TradingHalted':
        this.applyHalted(event.data.catalogueVersion);
        break;
      case 'TradingResumed':
        this.applyResumed(event.data.catalogueVersion);
        break;
      case 'SessionEnded':
        this.sessionEndedAt = event.data.closedAt ?? event.data.at;
        break;
      case 'OrderRejected':
      case 'RequestRejected':
        break;
      case 'OrderAccepted': {
        const data = event.data;
        const parked = data.orderType === 'STOP' || data.orderType === 'STOP_LIMIT';
        this.applyAccepted(
          this.newOrder().init(
            data.orderId,
            data.accountId,
            data.side,
            data.orderType,
            data.timeInForce,
            data.price ?? 0,
            data.stopPrice ?? 0,
            data.quantity,
            data.quantity,
            0,
            data.displayQuantity ?? 0,
            data.expiresAt ?? 0,
            data.sequence,
            data.at,
            parked,
          ),
        );
        break;
      }
      case 'StopTriggered':
        this.applyTriggered(this.known(event.data.orderId));
        break;
      case 'OrdersMatched': {
        const incoming = this.incoming;
        if (incoming === null || incoming.id !== event.data.incomingOrderId)
          throw new Error(
            `book ${this.symbol}: match of ${event.data.incomingOrderId}, which is not the incoming order`,
          );
        this.applyMatch(
          this.known(event.data.restingOrderId),
          incoming,
          event.data.quantity,
          event.data.price,
        );
        break;
      }
      case 'IcebergReplenished': {
        const order = this.known(event.data.orderId);
        this.sideOf(order).requeue(order, event.data.displayedQuantity);
        break;
      }
      case 'OrderRested':
        this.applyRested(this.known(event.data.orderId), event.data.displayedQuantity);
        break;
      case 'OrderModified': {
        const data = event.data;
        this.applyModified(
          this.known(data.orderId),
          data.price ?? 0,
          data.quantity,
          data.remaining,
          data.priority,
        );
        break;
      }
      case 'OrderCanceled':
      case 'OrderExpired':
        this.applyRemoved(this.known(event.data.orderId));
        break;
    }
    if (this.sequence === 0) this.openedAt = event.data.at;
    this.sequence = event.data.sequence;
  }

  /** The book's whole state, in priority order: equal snapshots mean equal books. */
  snapshot(): BookSnapshot {
    const sideState = (side: BookSide): RestingOrderState[] => {
      const states: RestingOrderState[] = [];
      for (let index = side.levels.length - 1; index >= 0; index--)
        for (let order = side.levels[index]!.head; order !== null; order = order.next)
          states.push(stateOf(order));
      return states;
    };
    return {
      symbol: this.symbol,
      status: this.status,
      referencePrice: this.referencePrice,
      priceBandBps: this.priceBandBps,
      sequence: this.sequence,
      lastTradePrice: this.lastTradePrice,
      sessionEndedAt: this.sessionEndedAt,
      openedAt: this.openedAt,
      catalogueVersion: this.catalogueVersion,
      bids: sideState(this.bids),
      asks: sideState(this.asks),
      stops: [...this.buyStops, ...this.sellStops].map(stateOf),
    };
  }

  /** Price levels best first, with the quantity the market sees and how many orders are queued. */
  depth(maxLevels = Number.POSITIVE_INFINITY): { bids: DepthLevel[]; asks: DepthLevel[] } {
    const levelsOf = (side: BookSide): DepthLevel[] => {
      const levels: DepthLevel[] = [];
      for (let index = side.levels.length - 1; index >= 0 && levels.length < maxLevels; index--) {
        const level = side.levels[index]!;
        levels.push({ price: level.price, quantity: level.visible, orders: level.count });
      }
      return levels;
    };
    return { bids: levelsOf(this.bids), asks: levelsOf(this.asks) };
  }

  /** A live order (resting or parked stop), or undefined. */
  order(orderId: string): RestingOrderState | undefined {
    const order = this.orders.get(orderId);
    return order && stateOf(order);
  }

  // ── deciding ────────────────────────────────────────────────────────────────────────────────

  private applyHalted(catalogueVersion: number | undefined): void {
    this.status = 'HALTED';
    if (catalogueVersion !== undefined) this.catalogueVersion = catalogueVersion;
  }

  /** A resume goes back to open, or to not open yet for a book halted before its first order. */
  private applyResumed(catalogueVersion: number | undefined): void {
    // A book opens with its reference price (always positive): none means it never opened.
    this.status = this.referencePrice > 0 ? 'OPEN' : 'NOT_OPEN';
    if (catalogueVersion !== undefined) this.catalogueVersion = catalogueVersion;
  }

  private open(command: OpenBook): void {
    if (this.status !== 'NOT_OPEN') throw new Error(`book ${this.symbol} is already open`);
    if (!isPositiveInteger(command.referencePrice))
      throw new RangeError('reference price must be positive cents');
    const bps = command.priceBandBps;
    if (!Number.isInteger(bps) || bps < 0 || bps > BPS)
      throw new RangeError('price band must be 0..10000 bps');
    this.out.push({
      type: 'BookOpened',
      data: {
        sequence: ++this.sequence,
        at: this.at,
        symbol: this.symbol,
        referencePrice: command.referencePrice,
        priceBandBps: bps,
      },
    });
    this.status = 'OPEN';
    this.setBand(command.referencePrice, bps);
  }

  private place(command: PlaceOrder): void {
    const reason = this.validate(command);
    if (reason !== undefined) {
      this.out.push({
        type: 'OrderRejected',
        data: {
          sequence: ++this.sequence,
          at: this.at,
          orderId: command.orderId,
          accountId: command.accountId,
          reason,
          // The limit price, unless it is inside the band: then the stop price is the one outside.
          ...(reason === 'PRICE_BAND'
            ? this.bandFigures(
                command.price !== undefined && !this.withinBand(command.price)
                  ? command.price
                  : command.stopPrice!,
              )
            : {}),
        },
      });
      return;
    }
    const type = command.orderType;
    const parked = type === 'STOP' || type === 'STOP_LIMIT';
    const order = this.newOrder().init(
      command.orderId,
      command.accountId,
      command.side,
      type,
      command.timeInForce,
      command.price ?? 0,
      command.stopPrice ?? 0,
      command.quantity,
      command.quantity,
      0,
      command.displayQuantity ?? 0,
      command.expiresAt ?? 0,
      this.sequence + 1,
      this.at,
      parked,
    );
    if (command.timeInForce === 'GTD' && order.expiresAt <= this.at) {
      // Its time ran out before it arrived: it expires as it would have resting, without trading.
      this.accept(order);
      this.expire(order, 'GOOD_TILL_DATE');
      return;
    }
    if (parked) this.accept(order);
    else this.enter(order, true);
    this.triggerStops();
  }

  /** The first rule an order breaks, in the order the documentation lists them. */
  private validate(command: PlaceOrder): RejectReason | undefined {
    if (this.status === 'NOT_OPEN') return 'BOOK_NOT_OPEN';
    if (this.status === 'HALTED') return 'INSTRUMENT_HALTED';
    if (this.orders.has(command.orderId)) return 'DUPLICATE_ORDER_ID';
    if (!isPositiveInteger(command.quantity)) return 'INVALID_QUANTITY';
    const type = command.orderType;
    const limited = type === 'LIMIT' || type === 'STOP_LIMIT';
    const stop = type === 'STOP' || type === 'STOP_LIMIT';
    if (limited ? !isPositiveInteger(command.price) : command.price !== undefined) return 'INVALID_PRICE';
    if (stop ? !isPositiveInteger(command.stopPrice) : command.stopPrice !== undefined)
      return 'INVALID_STOP_PRICE';
    const tif = command.timeInForce;
    if (tif === 'GTD') {
      // An expiry already past is no client's error (the broker refuses one in the past): the order
      // was delayed on its way, and expires on arrival (`place`).
      if (!isPositiveInteger(command.expiresAt)) return 'INVALID_EXPIRY';
    } else if (command.expiresAt !== undefined) return 'INVALID_EXPIRY';
    const display = command.displayQuantity;
    if (
      display !== undefined &&
      (!limited ||
        tif === 'IOC' ||
        tif === 'FOK' ||
        !isPositiveInteger(display) ||
        display >= command.quantity)
    )
      return 'INVALID_DISPLAY_QUANTITY';
    if (limited && !this.withinBand(command.price!)) return 'PRICE_BAND';
    if (stop && !this.withinBand(command.stopPrice!)) return 'PRICE_BAND';
    return undefined;
  }

  /**
   * An order meets the book: a new one (acknowledged here, once its pre-trade checks pass), a
   * triggered stop, or an order that lost its priority in a modify. Matches, then rests, cancels
   * or finishes filled.
   */
  private enter(order: BookOrder, isNew: boolean): void {
    const market = order.orderType === 'MARKET';
    const opposite = order.side === 'BUY' ? this.asks : this.bids;
    if (market) {
      const best = opposite.best();
      if (best === undefined) {
        this.refuse(order, isNew, 'NO_LIQUIDITY');
        return;
      }
      if (this.beyondBand(order.side, best.price)) {
        this.refuse(order, isNew, 'PRICE_BAND', best.price);
        return;
      }
    }
    if (order.timeInForce === 'FOK' && !this.fillable(order, opposite)) {
      this.refuse(order, isNew, 'FOK_NOT_FILLABLE');
      return;
    }
    if (isNew) this.accept(order);
    const stoppedByBand = this.sweep(order, opposite);
    if (order.remaining === 0) return;
    if (market) this.cancel(order, stoppedByBand ? 'PRICE_BAND' : 'NO_LIQUIDITY');
    else if (order.timeInForce === 'IOC') this.cancel(order, 'IMMEDIATE_OR_CANCEL');
    // Unreachable: a fillable FOK fills, because self-trade prevention only removes orders the check left out.
    else if (order.timeInForce === 'FOK') this.cancel(order, 'FOK_NOT_FILLABLE');
    else this.rest(order);
  }

  /** Matches the incoming order against the opposite side; true when a market order stopped at the band. */
  private sweep(order: BookOrder, opposite: BookSide): boolean {
    const buy = order.side === 'BUY';
    const limit = order.orderType === 'LIMIT' ? order.price : 0;
    while (order.remaining > 0) {
      const level = opposite.best();
      if (level === undefined) return false;
      const price = level.price;
      if (limit !== 0) {
        if (buy ? price > limit : price < limit) return false;
      } else if (buy ? price > this.bandHigh : price < this.bandLow) return true;
      let resting = level.head;
      while (resting !== null && order.remaining > 0) {
        if (resting.accountId === order.accountId) this.cancel(resting, 'SELF_TRADE_PREVENTION');
        else {
          this.match(resting, order, Math.min(resting.visible, order.remaining), price);
          if (resting.remaining > 0 && resting.visible === 0) this.replenish(resting);
        }
        // The head was filled, canceled or sent to the back: the next in line is the new head.
        resting = level.head;
      }
    }
    return false;
  }

  /** FOK: can the whole order trade now, within its limit (or the band), leaving out its own account's orders? */
  private fillable(order: BookOrder, opposite: BookSide): boolean {
    const buy = order.side === 'BUY';
    const limit = order.orderType === 'LIMIT' ? order.price : 0;
    let needed = order.remaining;
    for (let index = opposite.levels.length - 1; index >= 0; index--) {
      const level = opposite.levels[index]!;
      const price = level.price;
      if (limit !== 0 ? (buy ? price > limit : price < limit) : this.beyondBand(order.side, price))
        return false;
      for (let resting = level.head; resting !== null; resting = resting.next) {
        if (resting.accountId === order.accountId) continue;
        needed -= resting.remaining;
        if (needed <= 0) return true;
      }
    }
    return false;
  }

  private cancelRequest(command: CancelOrder): void {
    const order = this.orders.get(command.orderId);
    if (order === undefined || order.accountId !== command.accountId) {
      this.refuseRequest(command, 'CANCEL', 'UNKNOWN_ORDER');
      return;
    }
    this.cancel(order, 'CANCELED_BY_TRADER');
  }

  private modify(command: ModifyOrder): void {
    if (this.status === 'HALTED') {
      this.refuseRequest(command, 'MODIFY', 'INSTRUMENT_HALTED');
      return;
    }
    const order = this.orders.get(command.orderId);
    if (order === undefined || order.accountId !== command.accountId) {
      this.refuseRequest(command, 'MODIFY', 'UNKNOWN_ORDER');
      return;
    }
    const filled = order.quantity - order.remaining;
    if (
      command.quantity !== undefined &&
      (!isPositiveInteger(command.quantity) || command.quantity <= filled)
    ) {
      this.refuseRequest(command, 'MODIFY', 'INVALID_QUANTITY');
      return;
    }
    if (command.price !== undefined) {
      if (order.price === 0 || !isPositiveInteger(command.price)) {
        this.refuseRequest(command, 'MODIFY', 'INVALID_PRICE');
        return;
      }
      if (!this.withinBand(command.price)) {
        this.refuseRequest(command, 'MODIFY', 'PRICE_BAND', command.price);
        return;
      }
    }
    const price = command.price ?? order.price;
    const quantity = command.quantity ?? order.quantity;
    const remaining = quantity - filled;
    // B3 priority rule: a new price or more shares is a new place in the queue; fewer shares keeps it.
    const priority = !order.parked && (price !== order.price || quantity > order.quantity) ? 'LOST' : 'KEPT';
    this.out.push({
      type: 'OrderModified',
      data: {
        sequence: ++this.sequence,
        at: this.at,
        orderId: order.id,
        accountId: order.accountId,
        side: order.side,
        price: price === 0 ? undefined : price,
        quantity,
        remaining,
        priority,
      },
    });
    this.applyModified(order, price, quantity, remaining, priority);
    if (priority === 'LOST') {
      this.enter(order, false);
      this.triggerStops();
    }
  }

  /** Fires every stop the last trade price has reached, one at a time: each may trade and fire more. */
  private triggerStops(): void {
    while (this.lastTradePrice !== 0 && this.status === 'OPEN') {
      const buy = this.buyStops[0];
      const sell = this.sellStops[0];
      const buyFires = buy !== undefined && this.lastTradePrice >= buy.stopPrice;
      const sellFires = sell !== undefined && this.lastTradePrice <= sell.stopPrice;
      let order: BookOrder;
      if (buyFires && sellFires) order = buy.acceptedSequence < sell.acceptedSequence ? buy : sell;
      else if (buyFires) order = buy;
      else if (sellFires) order = sell!;
      else return;
      this.out.push({
        type: 'StopTriggered',
        data: {
          sequence: ++this.sequence,
          at: this.at,
          orderId: order.id,
          accountId: order.accountId,
          lastTradePrice: this.lastTradePrice,
        },
      });
      this.applyTriggered(order);
      this.enter(order, false);
    }
  }

  private endSession(command: EndOfDay): void {
    const { closedAt } = command;
    if (closedAt !== undefined) {
      if (!Number.isSafeInteger(closedAt) || closedAt < 0 || closedAt > command.at)
        throw new RangeError('a session close must be an instant at or before the command');
      if (!this.hasSessionToEnd(closedAt)) return;
    }
    const cutoff = closedAt ?? command.at;
    this.expireAll((order) => order.timeInForce === 'DAY' && order.acceptedAt <= cutoff, 'END_OF_DAY');
    // The close's instant, not the moment it ran: a catch-up run late must not swallow the next close.
    this.out.push({
      type: 'SessionEnded',
      data: { sequence: ++this.sequence, at: this.at, closedAt: cutoff },
    });
    this.sessionEndedAt = cutoff;
  }

  private expireGoodTillDate(now: number): void {
    this.expireAll((order) => order.expiresAt !== 0 && order.expiresAt <= now, 'GOOD_TILL_DATE');
    let next = Number.POSITIVE_INFINITY;
    for (const order of this.orders.values())
      if (order.expiresAt !== 0 && order.expiresAt < next) next = order.expiresAt;
    this.nextExpiry = next;
  }

  /** Expires matching orders in arrival order, so the events do not depend on how the book was built. */
  private expireAll(expires: (order: BookOrder) => boolean, reason: ExpireReason): void {
    const expiring: BookOrder[] = [];
    for (const order of this.orders.values()) if (expires(order)) expiring.push(order);
    expiring.sort((a, b) => a.acceptedSequence - b.acceptedSequence);
    for (const order of expiring) this.expire(order, reason);
  }

  private expire(order: BookOrder, reason: ExpireReason): void {
    this.remove(order, { type: 'OrderExpired', reason });
  }

  // ── emitting: push the event, then apply it through the same method replay uses ─────────────

  private accept(order: BookOrder): void {
    this.out.push({
      type: 'OrderAccepted',
      data: {
        sequence: ++this.sequence,
        at: this.at,
        orderId: order.id,
        accountId: order.accountId,
        side: order.side,
        orderType: order.orderType,
        timeInForce: order.timeInForce,
        quantity: order.quantity,
        price: order.price === 0 ? undefined : order.price,
        stopPrice: order.stopPrice === 0 ? undefined : order.stopPrice,
        displayQuantity: order.display === 0 ? undefined : order.display,
        expiresAt: order.expiresAt === 0 ? undefined : order.expiresAt,
      },
    });
    this.applyAccepted(order);
  }

  /**
   * A new order fails its pre-trade checks: rejected; an accepted one (a triggered stop): canceled.
   * `price`: for a `PRICE_BAND` refusal, the price outside the band.
   */
  private refuse(
    order: BookOrder,
    isNew: boolean,
    reason: RejectReason & CancelReason,
    price?: number,
  ): void {
    if (!isNew) {
      this.cancel(order, reason);
      return;
    }
    this.out.push({
      type: 'OrderRejected',
      data: {
        sequence: ++this.sequence,
        at: this.at,
        orderId: order.id,
        accountId: order.accountId,
        reason,
        ...(price !== undefined ? this.bandFigures(price) : {}),
      },
    });
    this.release(order);
  }

  /** `price`: for a `PRICE_BAND` refusal, the price outside the band. */
  private refuseRequest(
    command: CancelOrder | ModifyOrder,
    request: 'CANCEL' | 'MODIFY',
    reason: RejectReason,
    price?: number,
  ): void {
    this.out.push({
      type: 'RequestRejected',
      data: {
        sequence: ++this.sequence,
        at: this.at,
        orderId: command.orderId,
        accountId: command.accountId,
        request,
        reason,
        ...(price !== undefined ? this.bandFigures(price) : {}),
      },
    });
  }

  /** What a `PRICE_BAND` refusal records: the band's edges as they are now, and the price outside them. */
  private bandFigures(price: number): { priceBand: { low: number; high: number }; price: number } {
    return { priceBand: { low: this.bandLow, high: this.bandHigh }, price };
  }

  private match(resting: BookOrder, incoming: BookOrder, quantity: number, price: number): void {
    const sequence = ++this.sequence;
    this.out.push({
      type: 'OrdersMatched',
      data: {
        sequence,
        at: this.at,
        tradeId: this.tradeIdOf(this.symbol, sequence),
        price,
        quantity,
        aggressorSide: incoming.side,
        restingOrderId: resting.id,
        restingAccountId: resting.accountId,
        restingRemaining: resting.remaining - quantity,
        incomingOrderId: incoming.id,
        incomingAccountId: incoming.accountId,
        incomingRemaining: incoming.remaining - quantity,
      },
    });
    this.applyMatch(resting, incoming, quantity, price);
  }

  private replenish(order: BookOrder): void {
    const displayed = Math.min(order.display, order.remaining);
    this.out.push({
      type: 'IcebergReplenished',
      data: {
        sequence: ++this.sequence,
        at: this.at,
        orderId: order.id,
        accountId: order.accountId,
        side: order.side,
        price: order.price,
        displayedQuantity: displayed,
      },
    });
    this.sideOf(order).requeue(order, displayed);
  }

  private rest(order: BookOrder): void {
    const displayed =
      order.display !== 0 && order.display < order.remaining ? order.display : order.remaining;
    this.out.push({
      type: 'OrderRested',
      data: {
        sequence: ++this.sequence,
        at: this.at,
        orderId: order.id,
        accountId: order.accountId,
        side: order.side,
        price: order.price,
        remaining: order.remaining,
        displayedQuantity: displayed,
      },
    });
    this.applyRested(order, displayed);
  }

  private cancel(order: BookOrder, reason: CancelReason): void {
    this.remove(order, { type: 'OrderCanceled', reason });
  }

  /** An order leaves the book with what is left of it: canceled or expired, with why. */
  private remove(
    order: BookOrder,
    why: { type: 'OrderCanceled'; reason: CancelReason } | { type: 'OrderExpired'; reason: ExpireReason },
  ): void {
    this.out.push({
      type: why.type,
      data: {
        sequence: ++this.sequence,
        at: this.at,
        orderId: order.id,
        accountId: order.accountId,
        side: order.side,
        remaining: order.remaining,
        reason: why.reason,
      },
    } as BookEvent);
    this.applyRemoved(order);
  }

  // ── state changes, shared by deciding and replaying ─────────────────────────────────────────

  private applyAccepted(order: BookOrder): void {
    if (order.parked) {
      this.orders.add(order);
      this.park(order);
    } else this.incoming = order;
    if (order.expiresAt !== 0 && order.expiresAt < this.nextExpiry) this.nextExpiry = order.expiresAt;
  }

  private applyTriggered(order: BookOrder): void {
    this.unpark(order);
    this.orders.delete(order.id);
    order.parked = false;
    order.orderType = order.orderType === 'STOP' ? 'MARKET' : 'LIMIT';
    this.incoming = order;
  }

  private applyMatch(resting: BookOrder, incoming: BookOrder, quantity: number, price: number): void {
    const level = resting.level!;
    resting.remaining -= quantity;
    resting.visible -= quantity;
    level.quantity -= quantity;
    level.visible -= quantity;
    incoming.remaining -= quantity;
    this.lastTradePrice = price;
    if (resting.remaining === 0) {
      this.sideOf(resting).remove(resting);
      this.orders.delete(resting.id);
      this.release(resting);
    }
    if (incoming.remaining === 0) {
      this.incoming = null;
      this.release(incoming);
    }
  }

  private applyRested(order: BookOrder, displayed: number): void {
    order.visible = displayed;
    this.sideOf(order).append(order);
    this.orders.add(order);
    this.incoming = null;
  }

  private applyModified(
    order: BookOrder,
    price: number,
    quantity: number,
    remaining: number,
    priority: 'KEPT' | 'LOST',
  ): void {
    if (order.parked) {
      order.price = price;
      order.quantity = quantity;
      order.remaining = remaining;
    } else if (priority === 'KEPT') {
      const level = order.level!;
      const visible = order.display === 0 || remaining < order.visible ? remaining : order.visible;
      level.quantity += remaining - order.remaining;
      level.visible += visible - order.visible;
      order.quantity = quantity;
      order.remaining = remaining;
      order.visible = visible;
    } else {
      this.sideOf(order).remove(order);
      this.orders.delete(order.id);
      order.price = price;
      order.quantity = quantity;
      order.remaining = remaining;
      order.visible = 0;
      this.incoming = order;
    }
  }

  private applyRemoved(order: BookOrder): void {
    if (this.incoming === order) this.incoming = null;
    else {
      if (order.parked) this.unpark(order);
      else this.sideOf(order).remove(order);
      this.orders.delete(order.id);
    }
    this.release(order);
  }

  // ── helpers ─────────────────────────────────────────────────────────────────────────────────

  /** A blank order to `init`: a spare one when there is one. */
  private newOrder(): BookOrder {
    return this.spare.pop() ?? new BookOrder();
  }

  /**
   * Takes back an order that has left the book (filled, canceled, expired or rejected). Its fields
   * stay as they were until `newOrder` hands it out again, which only happens when a new order
   * arrives, so code finishing the current step may still read them (a filled order's remaining 0).
   */
  private release(order: BookOrder): void {
    if (this.spare.length < MAX_SPARE_ORDERS) this.spare.push(order);
  }

  private sideOf(order: BookOrder): BookSide {
    return order.side === 'BUY' ? this.bids : this.asks;
  }

  /** An order an event names: the incoming one, or one waiting in the book. */
  private known(orderId: string): BookOrder {
    const incoming = this.incoming;
    if (incoming !== null && incoming.id === orderId) return incoming;
    const order = this.orders.get(orderId);
    if (order === undefined) throw new Error(`book ${this.symbol}: event for unknown order ${orderId}`);
    return order;
  }

  private setBand(referencePrice: number, priceBandBps: number): void {
    this.referencePrice = referencePrice;
    this.priceBandBps = priceBandBps;
    ({ low: this.bandLow, high: this.bandHigh } = priceBandEdges(referencePrice, priceBandBps));
  }

  private withinBand(price: number): boolean {
    return price >= this.bandLow && price <= this.bandHigh;
  }

  /** A market order's sweep may not go past the band edge on its side. */
  private beyondBand(side: Side, price: number): boolean {
    return side === 'BUY' ? price > this.bandHigh : price < this.bandLow;
  }

  private park(order: BookOrder): void {
    const stops = order.side === 'BUY' ? this.buyStops : this.sellStops;
    const buy = order.side === 'BUY';
    let index = stops.length;
    while (index > 0) {
      const before = stops[index - 1]!;
      const firesFirst = buy ? before.stopPrice < order.stopPrice : before.stopPrice > order.stopPrice;
      if (
        firesFirst ||
        (before.stopPrice === order.stopPrice && before.acceptedSequence < order.acceptedSequence)
      )
        break;
      index--;
    }
    stops.splice(index, 0, order);
  }

  private unpark(order: BookOrder): void {
    const stops = order.side === 'BUY' ? this.buyStops : this.sellStops;
    stops.splice(stops.indexOf(order), 1);
  }
}

export interface DepthLevel {
  price: number;
  /** Shares shown: an iceberg counts with its current slice only. */
  quantity: number;
  orders: number;
}

const stateOf = (order: BookOrder): RestingOrderState => ({
  orderId: order.id,
  accountId: order.accountId,
  side: order.side,
  orderType: order.orderType,
  timeInForce: order.timeInForce,
  price: order.price,
  stopPrice: order.stopPrice,
  quantity: order.quantity,
  remaining: order.remaining,
  displayedQuantity: order.visible,
  displayQuantity: order.display,
  expiresAt: order.expiresAt,
  acceptedSequence: order.acceptedSequence,
  acceptedAt: order.acceptedAt,
  parked: order.parked,
});

/** A snapshot's shape; stored with `BOOK_SNAPSHOT_SCHEMA_VERSION` so an old shape is ignored, not misread. */
// 2: orders carry acceptedAt and the book its sessionEndedAt (the session close needs both).
// 3: the book carries openedAt (a catch-up skips a book opened after the close); older snapshots
// are ignored and the book is replayed from its events, which give it exactly.
export const BOOK_SNAPSHOT_SCHEMA_VERSION = 3;

const count = z.number().int().nonnegative();
export const RestingOrderState = z.object({
  orderId: z.string().min(1),
  accountId: z.string().min(1),
  side: Side,
  orderType: OrderType,
  timeInForce: TimeInForce,
  /** 0 when the order has no limit price. */
  price: count,
  /** 0 when the order is not a stop. */
  stopPrice: count,
  quantity: count,
  remaining: count,
  displayedQuantity: count,
  /** Iceberg slice size; 0 when not an iceberg. */
  displayQuantity: count,
  /** 0 when not GTD. */
  expiresAt: count,
  acceptedSequence: count,
  /** Epoch ms. */
  acceptedAt: count,
  parked: z.boolean(),
});
export type RestingOrderState = z.infer<typeof RestingOrderState>;

export const BookSnapshot = z.object({
  symbol: z.string().min(1),
  status: z.enum(['NOT_OPEN', 'OPEN', 'HALTED']),
  referencePrice: count,
  priceBandBps: count,
  sequence: count,
  lastTradePrice: count,
  /** Epoch ms of the last SessionEnded; 0 before any. */
  sessionEndedAt: count,
  /** Epoch ms of the book's first event; 0 before any. */
  openedAt: count,
  /** The newest catalogue version of a halt or resume; 0 before any (and in snapshots taken before it was kept). */
  catalogueVersion: count.default(0),
  /** Best price first, and in time priority within a price. */
  bids: z.array(RestingOrderState),
  asks: z.array(RestingOrderState),
  /** Untriggered stops in firing order: buys, then sells. */
  stops: z.array(RestingOrderState),
});
export type BookSnapshot = z.infer<typeof BookSnapshot>;
