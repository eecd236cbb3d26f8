/**
 * The B3 engine service: consumes `broker-to-b3`, keeps one order book per symbol, appends what
 * each book decides to `book-{symbol}` (and each trade to `trade-{tradeId}`) in the B3 event
 * store, then publishes the ExecutionReports to `b3-to-broker`. See docs/order-flow.md. Besides
 * orders and cancels, the broker sends an admin's HaltTrading / ResumeTrading of a book on the same
 * channel: they take their turn in the symbol's line like any message.
 *
 * One writer per symbol: commands for a symbol are decided one after the other in their symbol's
 * line, and those that queued while an append was in flight are booked together by the next
 * append (group commit: one round trip for many orders under load, one per order when idle).
 * Each append names the book's version as the expected version, so a second engine instance on
 * the same symbol fails instead of forking the book (the failed commands are retried on the book
 * reloaded from the store).
 *
 * Idempotent: the events of one message carry its message id as their causation id (and ids
 * derived from it). A message already in the book (same message id, or a NewOrder whose order id
 * is already booked) books nothing: the service re-appends its trades (idempotent by id) and
 * re-publishes the reports its events gave (same message ids, derived from the execution ids).
 *
 * The book stream is the engine's outbox: a request's trades and reports are confirmed after its
 * events are appended, and until then the request is `unreported` (kept in the book's snapshots).
 * Recovering a book completes every unconfirmed request again, in booking order, before anything
 * booked after the recovery: what the engine decides on its own (a session command: a close's
 * expiries, a GTD expiry; marked `sessionCommand` in the events' metadata) has no message that
 * would come again, and a message that does come again may come after later requests' reports —
 * a fill after the cancel of the rest of its order. `start` recovers every book.
 */

import { randomUUID } from 'node:crypto';
import {
  type BookEvent,
  bookStreamId,
  parseBookEvent,
  tradeExecuted,
  tradeStreamId,
} from '../../domain/b3/book-events.ts';
import type { BookCommand } from '../../domain/b3/commands.ts';
import { ExecutionReport, executionReports } from '../../domain/b3/execution-reports.ts';
import { BOOK_SNAPSHOT_SCHEMA_VERSION, BookSnapshot, OrderBook } from '../../domain/b3/order-book.ts';
import {
  type BrokerToB3Body,
  brokerToB3Schemas,
  type CancelOrderBody,
  type HaltTradingBody,
  MESSAGE_SCHEMA_VERSION,
  type NewOrderBody,
  type ResumeTradingBody,
} from '../../domain/b3/order-messages.ts';
import type { EventMetadata, EventStore, NewEvent, RecordedEvent } from '../../domain/shared/event-store.ts';
import { type CachedPrice, type PriceCache, usablePrice } from '../../domain/shared/price-cache.ts';
import type {
  TransportConsumer,
  TransportMessage,
  TransportPublisher,
  TransportSubscription,
} from '../../domain/shared/transport.ts';
import { isTransientError } from '../../projections/transient.ts';
import { lastRecordedPrice } from '../market-data/feed.ts';
import { deterministicId } from '../shared/deterministic-id.ts';
import { KeyedLanes } from '../shared/keyed-lanes.ts';
import { type ServiceLogger, silentLogger } from '../shared/service-logger.ts';
import {
  countEngineDecision,
  countEngineDuplicate,
  countEngineResent,
  referencePriceRejections,
} from '../shared/trading-metrics.ts';
import { BookDirectory } from './book-directory.ts';
import { type SessionBooks, SessionClock, type SessionSchedule, type Timers } from './session-clock.ts';

export const ENGINE_ACTOR = 'b3-engine';
/** The engine service's snapshot of a book: the domain snapshot plus the dedupe index. */
export const ENGINE_SNAPSHOT_SCHEMA_VERSION = 1_000 + BOOK_SNAPSHOT_SCHEMA_VERSION;

export interface EngineServiceOptions {
  /** The B3 event store. */
  store: EventStore;
  transport: TransportPublisher & TransportConsumer;
  /** The B3 market cache: the reference price of the price band. */
  marketPrices: PriceCache;
  /** A reference price older than this rejects the order (REFERENCE_PRICE_STALE). */
  priceMaxAgeMs: number;
  /** Price band half-width in basis points of the reference price (1000 = ±10%). */
  priceBandBps: number;
  /** Epoch milliseconds (default Date.now). */
  now?: () => number;
  /** Snapshot a book when this many events were appended since the last one (default 500). */
  snapshotEvery?: number;
  /**
   * Messages taken off the channel at once across symbols (default 256): the more are waiting in a
   * symbol's queue, the more one append books.
   */
  prefetch?: number;
  maxAttempts?: number;
  retryDelaysMs?: readonly number[];
  logger?: ServiceLogger;
  /**
   * Runs the session clock (docs/order-flow.md): `EndOfDay` on every book at the close, and
   * `ExpireOrders` when a GTD order's time comes. Absent: nothing expires unless asked (`session`).
   */
  sessionClock?: {
    schedule: SessionSchedule;
    /** Default: the runtime's timers. */
    timers?: Timers;
    /** Symbols probed for books on a first start over an existing store (the listed catalogue). */
    seedSymbols?: readonly string[];
  };
  /** Test hooks: crash injection between an effect and its acknowledgement. */
  hooks?: { afterAppend?: (message: TransportMessage<BrokerToB3Body>) => Promise<void> };
}

/** Session commands an operator (or a clock) runs on a book, besides the traders' messages. */
export type SessionCommand = 'EndOfDay' | 'ExpireOrders' | 'HaltTrading' | 'ResumeTrading';

/** One unit of work in a symbol's line: a transport message or a session command. */
interface Request {
  /** The dedupe key and causation id: the message id, or the session command's request id. */
  id: string;
  correlationId: string;
  type: string;
  /** A NewOrder's order id: booked once, whatever the message id. */
  orderId?: string;
  message?: TransportMessage<BrokerToB3Body>;
  decide: (state: BookState) => Promise<BookEvent[]>;
}

/** A request waiting in its symbol's queue, and how to answer its caller. */
interface Queued {
  request: Request;
  /** When the engine took it (`performance.now()`): the start of its matching time. */
  takenAt: number;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** A request and what the book decided for it (nothing, for some). */
interface Decided {
  item: Queued;
  events: BookEvent[];
}

/** A booked (or already booked) request's events, waiting for their trades and reports. */
interface Completion {
  item: Queued;
  events: RecordedEvent[];
  outcome: 'booked' | 'duplicate';
}

/** The most requests one append books. */
const MAX_BATCH = 256;

/** The stream versions one message's events occupy. */
interface Range {
  from: number;
  to: number;
}

interface BookState {
  book: OrderBook;
  /** The `book-{symbol}` stream's version (-1: no stream). */
  version: number;
  referencePrice: number;
  /** Message ids (and `order:{orderId}` of booked NewOrders) → the events they produced. */
  index: Map<string, Range>;
  appendedSinceSnapshot: number;
  /**
   * Booked requests' ids → their events, while their trades and reports are not confirmed. A
   * snapshot keeps them, and recovering the book completes them again before anything booked after
   * it: a redelivered message would come too late, after the reports of later requests (a fill
   * would reach the broker after the cancel of the rest of its order), and a session command's
   * would not come at all.
   */
  unreported: Map<string, Range>;
}

/** How many dedupe entries a snapshot keeps: redeliveries come soon after the first delivery. */
const INDEX_KEPT = 20_000;

interface EngineSnapshotState {
  book: BookSnapshot;
  index: Array<[string, Range]>;
  /** `BookState.unreported` when the snapshot was taken (absent in snapshots from before it was kept). */
  unreported?: Array<[string, Range]>;
}

function placeOrderCommand(body: NewOrderBody, at: number): BookCommand {
  return {
    type: 'PlaceOrder',
    orderId: body.orderId,
    accountId: body.accountId,
    side: body.side,
    orderType: body.orderType,
    quantity: body.quantity,
    timeInForce: body.timeInForce,
    at,
    ...(body.price !== undefined ? { price: body.price } : {}),
    ...(body.stopPrice !== undefined ? { stopPrice: body.stopPrice } : {}),
    ...(body.expiresAt !== undefined ? { expiresAt: body.expiresAt } : {}),
  };
}

/** `PETR4F` (fractional market) trades against `PETR4`'s reference price. */
export function referenceSymbol(symbol: string): string {
  return symbol.replace(/^([A-Z][A-Z0-9]{3}\d{1,2})F$/, '$1');
}

export class EngineService {
  private readonly books = new Map<string, Promise<BookState>>();
  /** One line per symbol: a book has one writer. */
  private readonly lines = new KeyedLanes();
  /** Per symbol, the trades and reports of booked batches, in booking order. */
  private readonly completions = new KeyedLanes();
  /** Requests waiting for their symbol's line. */
  private readonly queues = new Map<string, Queued[]>();
  private readonly logger: ServiceLogger;
  private readonly now: () => number;
  private subscription: TransportSubscription | undefined;
  private readonly directory: BookDirectory;
  /** The session clock, when the options ask for one. */
  readonly clock: SessionClock | undefined;

  constructor(private readonly options: EngineServiceOptions) {
    this.logger = options.logger ?? silentLogger;
    this.now = options.now ?? Date.now;
    this.directory = new BookDirectory(options.store, options.sessionClock?.seedSymbols);
    this.clock =
      options.sessionClock &&
      new SessionClock({
        books: this.sessionBooks(),
        schedule: options.sessionClock.schedule,
        timers: options.sessionClock.timers,
        now: this.now,
        logger: this.logger,
      });
  }

  async start(): Promise<void> {
    if (this.subscription) return;
    // Before the first message: every book is recovered, which re-sends the reports of its session
    // commands a crash may have kept from the broker; then a session that closed while the engine
    // was down ends.
    await this.recoverBooks();
    await this.clock?.start();
    this.subscription = await this.options.transport.consume<BrokerToB3Body>(
      'broker-to-b3',
      (message) => this.handle(message),
      {
        schemas: brokerToB3Schemas,
        prefetch: this.options.prefetch ?? MAX_BATCH,
        maxAttempts: this.options.maxAttempts,
        retryDelaysMs: this.options.retryDelaysMs,
        // A store outage is waited out: an order dead-lettered for it would never reach the book.
        isTransient: isTransientError,
      },
    );
  }

  async stop(): Promise<void> {
    await this.clock?.stop();
    await this.subscription?.stop();
    this.subscription = undefined;
    await this.lines.drain();
    await this.completions.drain();
    await this.snapshotReported();
  }

  /**
   * On a graceful stop, each book is snapshotted as it stands, its reports all gone out: the next
   * start re-sends none (only a crash, or a publish that failed, leaves some to re-send).
   */
  private async snapshotReported(): Promise<void> {
    await Promise.all(
      [...this.books.entries()].map(async ([symbol, loading]) => {
        const state = await loading.catch(() => undefined);
        if (!state || state.appendedSinceSnapshot === 0) return;
        if (this.books.get(symbol) === loading) await this.snapshot(symbol, state);
      }),
    );
  }

  /** Loads every book with a stream; one that fails to load is recovered when it is next used. */
  private async recoverBooks(): Promise<void> {
    let symbols: string[];
    try {
      symbols = await this.directory.list();
    } catch (error) {
      this.logger.warn({ err: error }, 'cannot list the books to recover');
      return;
    }
    await Promise.all(
      symbols.map((symbol) =>
        this.state(symbol).catch((error: unknown) => {
          this.books.delete(symbol);
          this.logger.warn({ err: error, symbol }, 'book recovery failed');
        }),
      ),
    );
  }

  /** Drops every book from memory: the next message recovers it from the store, as after a restart. */
  forget(): void {
    this.books.clear();
  }

  /** Depth and status of a symbol's book as the engine holds it (diagnostics and tests). */
  async book(symbol: string): Promise<OrderBook> {
    return (await this.state(symbol)).book;
  }

  /** One message, in its symbol's line. Throwing retries it; resolving acks it. */
  handle(message: TransportMessage<BrokerToB3Body>): Promise<void> {
    const symbol = message.body.symbol;
    return this.inLine(symbol, {
      id: message.messageId,
      correlationId: message.correlationId,
      type: message.type,
      ...(message.type === 'NewOrder' ? { orderId: (message.body as NewOrderBody).orderId } : {}),
      message,
      decide: (state) => this.decide(symbol, state, message),
    });
  }

  /**
   * Runs a session command on a book: `EndOfDay` expires every DAY order, `ExpireOrders` the GTD
   * orders past their time, `HaltTrading` / `ResumeTrading` stop and restart matching. `requestId`
   * (a uuid) makes it idempotent: the same id runs once, and a repeat re-sends its reports.
   */
  session(
    symbol: string,
    command: SessionCommand,
    requestId: string,
    options: { closedAt?: number; reason?: string } = {},
  ): Promise<void> {
    const { closedAt, reason } = options;
    return this.inLine(symbol, {
      id: requestId,
      correlationId: requestId,
      type: command,
      decide: async (state) =>
        state.book.execute(
          command === 'EndOfDay' && closedAt !== undefined
            ? { type: command, closedAt, at: this.now() }
            : command === 'HaltTrading' && reason !== undefined
              ? { type: command, reason, at: this.now() }
              : { type: command, at: this.now() },
        ),
    });
  }

  /**
   * The session clock's view of the books. A close's request id derives from the symbol and the
   * close, so two engine instances' clocks send the same request: the second finds it booked (or,
   * its book behind the store, fails its expected version, reloads and finds it) and books nothing.
   */
  private sessionBooks(): SessionBooks {
    return {
      symbols: async () => [...new Set([...(await this.directory.list()), ...this.books.keys()])].sort(),
      endSession: async (symbol, closedAt) => {
        const { version, book } = await this.state(symbol);
        // No stream: no orders, and no reason to create one. A later end: this close is in it. A
        // book opened after the close: it had no session then.
        if (version === -1 || !book.hasSessionToEnd(closedAt)) return false;
        const requestId = deterministicId(symbol, 'end-of-day', String(closedAt));
        await this.session(symbol, 'EndOfDay', requestId, { closedAt });
        return true;
      },
      // A fresh id each time: an ExpireOrders is decided on the book as it is (a repeat expires
      // nothing), and deciding is what recomputes the book's next expiry. A deduplicated repeat
      // would leave a past expiry armed, firing again and again.
      expireOrders: (symbol) => this.session(symbol, 'ExpireOrders', randomUUID()),
    };
  }

  /**
   * The market cache's price for the band; when the cache has none (emptied by a restart, and the
   * symbol listed after the catalogue was warmed), the last quote recorded for it, put back.
   */
  private async referencePrice(symbol: string): Promise<CachedPrice | undefined> {
    const cached = await this.options.marketPrices.get(symbol);
    if (cached) return cached;
    const recorded = await lastRecordedPrice(this.options.store, symbol);
    if (recorded) await this.options.marketPrices.set(recorded);
    return recorded;
  }

  private inLine(symbol: string, request: Request): Promise<void> {
    return new Promise((resolve, reject) => {
      let queue = this.queues.get(symbol);
      if (!queue) {
        queue = [];
        this.queues.set(symbol, queue);
      }
      queue.push({ request, takenAt: performance.now(), resolve, reject });
      void this.lines.run(symbol, () => this.drainQueue(symbol));
    });
  }

  /**
   * Takes everything waiting for a symbol (up to a limit) and books it with one append: while an
   * append is in flight the next requests queue up, so under load each append carries many, and
   * when idle each carries one. Every request resolves or rejects on its own.
   */
  private async drainQueue(symbol: string): Promise<void> {
    const queue = this.queues.get(symbol);
    if (!queue || queue.length === 0) return;
    const batch = queue.splice(0, MAX_BATCH);
    const retryLater = (items: Queued[]) => {
      queue.unshift(...items);
      if (items.length > 0) void this.lines.run(symbol, () => this.drainQueue(symbol));
    };
    let state: BookState;
    try {
      state = await this.state(symbol);
    } catch (error) {
      this.books.delete(symbol);
      for (const item of batch) item.reject(error);
      return;
    }

    const decided: Decided[] = [];
    const duplicates: Array<{ item: Queued; seen: Range }> = [];
    const keys = new Set<string>();
    for (const [position, item] of batch.entries()) {
      const { request } = item;
      const orderKey = request.orderId ? `order:${request.orderId}` : undefined;
      const seen = state.index.get(request.id) ?? (orderKey ? state.index.get(orderKey) : undefined);
      if (seen) {
        countEngineDuplicate(request.type);
        duplicates.push({ item, seen });
        continue;
      }
      if (keys.has(request.id) || (orderKey && keys.has(orderKey))) {
        // The same message twice in one batch: the second waits, and finds the first booked.
        retryLater(batch.slice(position));
        break;
      }
      try {
        decided.push({ item, events: await request.decide(state) });
        keys.add(request.id);
        if (orderKey) keys.add(orderKey);
      } catch (error) {
        // The book in memory may hold this request's half-made decision: book what came before it,
        // then rebuild the book from the store for what comes after.
        item.reject(error);
        this.books.delete(symbol);
        retryLater(batch.slice(position + 1));
        break;
      }
    }

    const booked = decided.filter(({ events }) => events.length > 0);
    let recorded: RecordedEvent[][] = [];
    try {
      if (booked.length > 0) recorded = await this.append(symbol, state, booked);
    } catch (error) {
      // The book in memory is ahead of the store: rebuild it from the store next time.
      this.books.delete(symbol);
      for (const { item } of decided) item.reject(error);
      decided.length = 0;
    }
    let next = 0;
    const completions: Completion[] = [];
    const appendedAt = performance.now();
    for (const { item, events } of decided) {
      const { request } = item;
      const seconds = (appendedAt - item.takenAt) / 1000;
      const refused = countEngineDecision(symbol, request.type, request.orderId, events, seconds);
      if (refused !== undefined) {
        const body = request.message?.body;
        const orderId = body && 'orderId' in body ? body.orderId : undefined;
        this.logger.info(
          { symbol, type: request.type, orderId, reason: refused, correlationId: request.correlationId },
          'request refused',
        );
      }
      if (events.length === 0) item.resolve();
      else completions.push({ item, events: recorded[next++]!, outcome: 'booked' });
    }
    if (
      booked.length > 0 &&
      this.books.has(symbol) &&
      state.appendedSinceSnapshot >= (this.options.snapshotEvery ?? 500)
    )
      await this.snapshot(symbol, state);
    // Orders came or went: the book's timer follows its earliest GTD expiry.
    if (this.books.has(symbol)) this.clock?.watch(symbol, state.book.pendingExpiry);
    // Trades and reports go out in their own line, in booking order, while this line books the next batch.
    void this.completions.run(symbol, () => this.completeAll(symbol, state, completions, duplicates));
  }

  /**
   * Trades and reports of a batch, in booking order (`sendTradesAndReports`). Requests already
   * booked (redeliveries) re-send what their events gave.
   */
  private async completeAll(
    symbol: string,
    state: BookState,
    booked: Completion[],
    duplicates: Array<{ item: Queued; seen: Range }>,
  ): Promise<void> {
    const all = [...booked];
    for (const { item, seen } of duplicates) {
      this.logger.info(
        { symbol, requestId: item.request.id, correlationId: item.request.correlationId },
        'message already booked, re-sending its reports',
      );
      try {
        const events = await this.options.store.readStream(bookStreamId(symbol), {
          fromVersion: seen.from,
          toVersion: seen.to,
        });
        all.push({ item, events, outcome: 'duplicate' });
      } catch (error) {
        item.reject(error);
      }
    }
    const outcomes = await this.sendTradesAndReports(
      symbol,
      all.map(({ item, events, outcome }) => {
        const { message, correlationId } = item.request;
        return {
          events,
          correlationId,
          before:
            outcome === 'booked' && message
              ? async () => this.options.hooks?.afterAppend?.(message)
              : undefined,
        };
      }),
    );
    for (const [index, outcome] of outcomes.entries()) {
      const { item, events } = all[index]!;
      const session = item.request.message === undefined;
      if (outcome.status === 'rejected') {
        // A retry of the command may decide nothing (an ExpireOrders): the book's recovery re-sends.
        if (session) this.books.delete(symbol);
        item.reject(outcome.reason);
        continue;
      }
      this.reported(state, item.request.id, events);
      item.resolve();
    }
  }

  /**
   * Trades to their streams, then the reports to the broker, for requests in booking order: both
   * idempotent, so safe to repeat. The trades are appended side by side (after a request's
   * `before`, a test's crash hook); the reports are all handed to the transport in order before
   * any confirm is awaited. Each request's outcome: its reports' publishes, or why they did not go.
   */
  private async sendTradesAndReports(
    symbol: string,
    requests: Array<{ events: RecordedEvent[]; correlationId: string; before?: () => Promise<unknown> }>,
  ): Promise<Array<PromiseSettledResult<unknown[]>>> {
    const traded = await Promise.allSettled(
      requests.map(async ({ events, before }) => {
        await before?.();
        await Promise.all(this.trades(symbol, events));
      }),
    );
    return Promise.allSettled(
      requests.map(({ events, correlationId }, index) => {
        const trades = traded[index]!;
        return trades.status === 'fulfilled'
          ? Promise.all(this.reports(symbol, events, correlationId))
          : Promise.reject(trades.reason);
      }),
    );
  }

  /** A request's trades and reports are confirmed: no recovery needs to send them again. */
  private reported(state: BookState, requestId: string, events: RecordedEvent[]): void {
    const from = events[0]?.version;
    if (from === undefined) return;
    if (state.unreported.get(requestId)?.from === from) {
      state.unreported.delete(requestId);
      return;
    }
    // A redelivered NewOrder found by its order id under another message id: its booking's entry.
    for (const [booked, range] of state.unreported) if (range.from === from) state.unreported.delete(booked);
  }

  private async decide(
    symbol: string,
    state: BookState,
    message: TransportMessage<BrokerToB3Body>,
  ): Promise<BookEvent[]> {
    const at = this.now();
    const { book } = state;
    const out: BookEvent[] = [];
    if (message.type === 'CancelOrder') {
      const body = message.body as CancelOrderBody;
      book.execute({ type: 'CancelOrder', orderId: body.orderId, accountId: body.accountId, at }, out);
      return out;
    }
    if (message.type === 'HaltTrading') {
      // A repeat, or a halt a later resume overtook, decides nothing (its catalogue version).
      const { reason, catalogueVersion } = message.body as HaltTradingBody;
      return book.execute({ type: 'HaltTrading', reason, catalogueVersion, at }, out);
    }
    if (message.type === 'ResumeTrading') {
      const { catalogueVersion } = message.body as ResumeTradingBody;
      return book.execute({ type: 'ResumeTrading', catalogueVersion, at }, out);
    }
    if (message.type !== 'NewOrder') throw new Error(`the engine does not handle ${message.type}`);
    const body = message.body as NewOrderBody;
    // A halted book refuses the order whatever the price: no band to check, nothing to open or move.
    if (book.bookStatus === 'HALTED') return book.execute(placeOrderCommand(body, at), out);
    const cached = await this.referencePrice(referenceSymbol(symbol));
    const usable = usablePrice(cached, at, this.options.priceMaxAgeMs);
    if (!usable.ok) {
      referencePriceRejections.inc({ reason: usable.reason });
      // No band without a reference price: the order is refused, recorded like any rejection.
      const rejected: BookEvent = {
        type: 'OrderRejected',
        data: {
          sequence: book.lastSequence + 1,
          at,
          orderId: body.orderId,
          accountId: body.accountId,
          reason: usable.reason,
        },
      };
      book.apply(rejected);
      return [rejected];
    }
    if (book.bookStatus === 'NOT_OPEN')
      book.execute(
        { type: 'OpenBook', referencePrice: usable.price, priceBandBps: this.options.priceBandBps, at },
        out,
      );
    else if (usable.price !== state.referencePrice)
      book.execute({ type: 'SetReferencePrice', referencePrice: usable.price, at }, out);
    state.referencePrice = usable.price;
    book.execute(placeOrderCommand(body, at), out);
    return out;
  }

  /** One append for the requests' events, each request's with its own metadata; returns them per request. */
  private async append(symbol: string, state: BookState, booked: Decided[]): Promise<RecordedEvent[][]> {
    const occurredAt = new Date(this.now()).toISOString();
    const perRequest = booked.map(({ item: { request }, events }) => {
      const metadata: EventMetadata = {
        correlationId: request.correlationId,
        causationId: request.id,
        actor: ENGINE_ACTOR,
        occurredAt,
        schemaVersion: 1,
        ...(request.orderId ? { orderId: request.orderId } : {}),
        ...(request.message ? {} : { sessionCommand: request.type }),
      };
      return events.map(
        (event, index): NewEvent => ({
          id: deterministicId(request.id, 'book', String(index)),
          type: event.type,
          data: event.data,
          metadata,
        }),
      );
    });
    const streamId = bookStreamId(symbol);
    const result = await this.options.store.append(streamId, perRequest.flat(), {
      expectedVersion: state.version === -1 ? 'no_stream' : state.version,
    });
    if (state.version === -1) await this.rememberBook(symbol);
    const recordedAt = new Date();
    let version = state.version + 1;
    let offset = 0;
    const recorded = perRequest.map((events, which) => {
      const range = { from: version, to: version + events.length - 1 };
      const { request } = booked[which]!.item;
      this.remember(state, request.id, range);
      if (request.orderId) this.remember(state, `order:${request.orderId}`, range);
      state.unreported.set(request.id, range);
      const own = events.map((event, index) => ({
        ...event,
        streamId,
        version: range.from + index,
        position: result.positions[offset + index] ?? 0,
        metadata: event.metadata as EventMetadata,
        recordedAt,
      }));
      version += events.length;
      offset += events.length;
      return own;
    });
    state.version = result.nextExpectedVersion;
    state.appendedSinceSnapshot += offset;
    return recorded;
  }

  /** A new book stream goes into the directory the session clock reaches every book by. */
  private async rememberBook(symbol: string): Promise<void> {
    try {
      await this.directory.add(symbol);
    } catch (error) {
      // The next add or close merges it in; until then only a restart could miss this book.
      this.logger.warn({ err: error, symbol }, 'book directory update failed');
    }
  }

  private remember(state: BookState, key: string, range: Range): void {
    state.index.delete(key);
    state.index.set(key, range);
    if (state.index.size > INDEX_KEPT * 2) {
      const excess = state.index.size - INDEX_KEPT;
      let dropped = 0;
      for (const stale of state.index.keys()) {
        if (dropped++ >= excess) break;
        state.index.delete(stale);
      }
    }
  }

  /** The appends of the trades among a request's book events. */
  private trades(symbol: string, events: RecordedEvent[]): Promise<unknown>[] {
    return events
      .filter((event) => event.type === 'OrdersMatched')
      .map((event) => {
        const trade = tradeExecuted(symbol, parseBookEvent(event).data as never);
        return this.options.store.append(
          tradeStreamId(trade.data.tradeId),
          [
            {
              id: deterministicId(event.id, 'trade'),
              type: trade.type,
              data: trade.data,
              metadata: {
                correlationId: event.metadata.correlationId,
                causationId: event.id,
                actor: ENGINE_ACTOR,
                occurredAt: event.metadata.occurredAt,
              },
            },
          ],
          { expectedVersion: 'any' },
        );
      });
  }

  /** The publishes of the ExecutionReports a request's book events give, started in order. */
  private reports(symbol: string, events: RecordedEvent[], correlationId: string): Promise<void>[] {
    return events.flatMap((event) =>
      executionReports(symbol, parseBookEvent(event)).map((report) =>
        this.options.transport.publish(
          'b3-to-broker',
          {
            messageId: deterministicId('report', report.executionId),
            type: 'ExecutionReport',
            correlationId,
            causationId: event.id,
            schemaVersion: MESSAGE_SCHEMA_VERSION,
            body: report,
          },
          { schema: ExecutionReport },
        ),
      ),
    );
  }

  private state(symbol: string): Promise<BookState> {
    let loading = this.books.get(symbol);
    if (!loading) {
      loading = this.recover(symbol);
      this.books.set(symbol, loading);
    }
    return loading;
  }

  /** The book from its latest engine snapshot plus the events after it (or from its first event). */
  private async recover(symbol: string): Promise<BookState> {
    const streamId = bookStreamId(symbol);
    const snapshot = await this.options.store.loadSnapshot(streamId, {
      schemaVersion: ENGINE_SNAPSHOT_SCHEMA_VERSION,
    });
    let state: BookState;
    if (snapshot) {
      const saved = snapshot.state as EngineSnapshotState;
      const bookSnapshot = BookSnapshot.parse(saved.book);
      state = {
        book: OrderBook.fromSnapshot(bookSnapshot),
        version: snapshot.version,
        referencePrice: bookSnapshot.referencePrice,
        index: new Map(saved.index),
        appendedSinceSnapshot: 0,
        unreported: new Map(),
      };
    } else {
      state = {
        book: new OrderBook(symbol),
        version: -1,
        referencePrice: 0,
        index: new Map(),
        appendedSinceSnapshot: 0,
        unreported: new Map(),
      };
    }
    // The requests whose trades and reports may not have gone out: those the snapshot says were
    // not confirmed, and every one after it.
    const unconfirmed = new Map<string, Range>(
      snapshot ? ((snapshot.state as EngineSnapshotState).unreported ?? []) : [],
    );
    const snapshotVersion = state.version;
    const fromVersion = Math.min(
      snapshotVersion + 1,
      ...[...unconfirmed.values()].map((range) => range.from),
    );
    const events = await this.options.store.readStream(streamId, { fromVersion });
    let current: { key: string; orderKey?: string; range: Range } | undefined;
    const resend: Array<{ requestId: string; events: RecordedEvent[] }> = [];
    for (const event of events) {
      const key = event.metadata.causationId;
      if (event.version <= snapshotVersion) {
        // In the snapshot's book already: only its reports may be missing.
        const range = unconfirmed.get(key);
        if (!range || event.version < range.from || event.version > range.to) continue;
        if (resend.at(-1)?.requestId !== key) {
          state.unreported.set(key, range);
          resend.push({ requestId: key, events: [] });
        }
        resend.at(-1)!.events.push(event);
        continue;
      }
      const bookEvent = parseBookEvent(event);
      state.book.apply(bookEvent);
      if (bookEvent.type === 'BookOpened' || bookEvent.type === 'ReferencePriceSet')
        state.referencePrice = bookEvent.data.referencePrice;
      state.version = event.version;
      state.appendedSinceSnapshot += 1;
      if (current?.key === key) current.range.to = event.version;
      else {
        const orderId = (event.metadata as { orderId?: unknown }).orderId;
        current = {
          key,
          ...(typeof orderId === 'string' ? { orderKey: `order:${orderId}` } : {}),
          range: { from: event.version, to: event.version },
        };
        this.remember(state, key, current.range);
        if (current.orderKey) this.remember(state, current.orderKey, current.range);
        state.unreported.set(key, current.range);
        resend.push({ requestId: key, events: [] });
      }
      resend.at(-1)!.events.push(event);
    }
    this.logger.info(
      { symbol, version: state.version, fromSnapshot: snapshot?.version, replayed: events.length },
      'book recovered',
    );
    this.clock?.watch(symbol, state.book.pendingExpiry);
    // In the completions line, so they go out before the reports of anything booked from now on.
    if (resend.length > 0) void this.completions.run(symbol, () => this.resendReports(symbol, state, resend));
    return state;
  }

  /**
   * The trades and reports of the requests a recovered book found unconfirmed, sent again in
   * booking order: trades are appended by id and the broker applies a report once (by execution
   * id), so what had gone out changes nothing. Failing, the book is dropped from memory and its
   * next recovery tries again.
   */
  private async resendReports(
    symbol: string,
    state: BookState,
    requests: Array<{ requestId: string; events: RecordedEvent[] }>,
  ): Promise<void> {
    const outcomes = await this.sendTradesAndReports(
      symbol,
      requests.map(({ events }) => ({ events, correlationId: events[0]!.metadata.correlationId })),
    );
    let reports = 0;
    for (const [index, outcome] of outcomes.entries()) {
      const { requestId, events } = requests[index]!;
      if (outcome.status === 'rejected') {
        this.logger.warn({ err: outcome.reason, symbol, requestId }, "re-sending a request's reports failed");
        this.books.delete(symbol);
        continue;
      }
      state.unreported.delete(requestId);
      // A close with nothing to expire (only SessionEnded), a halt, a rested order's own events:
      // nothing to report, or nothing new.
      if (outcome.value.length === 0) continue;
      reports += outcome.value.length;
      countEngineResent(String(events[0]!.metadata.sessionCommand ?? 'message'));
    }
    if (reports > 0) this.logger.info({ symbol, reports }, 'unconfirmed reports sent again');
  }

  private async snapshot(symbol: string, state: BookState): Promise<void> {
    const saved: EngineSnapshotState = {
      book: state.book.snapshot(),
      index: [...state.index.entries()],
      unreported: [...state.unreported.entries()],
    };
    try {
      await this.options.store.saveSnapshot({
        streamId: bookStreamId(symbol),
        version: state.version,
        state: saved,
        schemaVersion: ENGINE_SNAPSHOT_SCHEMA_VERSION,
      });
      state.appendedSinceSnapshot = 0;
    } catch (error) {
      // Only recovery speed depends on it.
      this.logger.warn({ err: error, symbol }, 'book snapshot failed');
    }
  }
}
