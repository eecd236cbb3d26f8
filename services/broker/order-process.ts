/**
 * The order process manager: drives every broker order from placement to its end, and settles
 * what B3 reports. See docs/order-flow.md for the whole path and what each crash does.
 *
 * Two inputs:
 * - the broker event store, followed from the manager's own checkpoint:
 *   OrderPlaced → reserve cash or shares in `wallet-{accountId}` → OrderAccepted + NewOrder to B3
 *   (the order counts as routed once the publish is confirmed and the checkpoint passed it) or
 *   OrderRejected with the reservation's reason; OrderCancelRequested → CancelOrder to B3;
 *   an order that ends (filled, canceled, expired, rejected) → its unused reservation released;
 *   an admin's TradingHalted / TradingResumed in `instrument-{symbol}` → HaltTrading /
 *   ResumeTrading to B3 for each of the instrument's books (standard and fractional), so the
 *   exchange halts its books itself, from the same checkpoint: a halt the engine has not taken
 *   yet (it is down, or this process died before the confirm) is sent again until it has;
 * - ExecutionReports on `b3-to-broker`, one account's at a time: fills settle the wallet, then are
 *   recorded on the order (in that order, so the reservation release an OrderFilled triggers never
 *   overtakes the settlement of the last fill); cancels, expiries and rejections end the order.
 *
 * Every effect is idempotent: event ids derive from the causing event or execution id, so a replay
 * re-appends the same ids (the store answers idempotently) or the decider decides nothing
 * (executions and settlements are keyed by execution id); messages to B3 carry ids derived from
 * the causing event, which B3 deduplicates. Conflicts are retried on fresh state by `handleCommand`.
 *
 * Every wallet command (reserve, release, settle) goes through one lane per wallet: orders run side
 * by side, but one account's orders share its wallet stream, and racing on its version would spend
 * `handleCommand`'s retries and make the manager follow again from its checkpoint. A wallet lane
 * only appends to its wallet and never waits on an order or report lane, so lanes cannot deadlock.
 * The API's wallet routes in the same process run in the same lanes (`walletLanes`), so a deposit
 * and a reservation take turns too.
 */

import type { RejectReason } from '../../domain/b3/book-events.ts';
import type { ExecutionReport } from '../../domain/b3/execution-reports.ts';
import type {
  CancelOrderBody,
  HaltTradingBody,
  NewOrderBody,
  ResumeTradingBody,
} from '../../domain/b3/order-messages.ts';
import { b3ToBrokerSchemas, MESSAGE_SCHEMA_VERSION } from '../../domain/b3/order-messages.ts';
import {
  custodySymbol,
  instrumentDecider,
  instrumentStreamId,
} from '../../domain/broker/instrument/instrument.ts';
import { OrderClosed } from '../../domain/broker/order/errors.ts';
import type { OrderEvent } from '../../domain/broker/order/events.ts';
import {
  isTerminal,
  type Order,
  type OrderCommand,
  orderDecider,
  orderStreamId,
  remainingQuantity,
} from '../../domain/broker/order/order.ts';
import { reservationFor } from '../../domain/broker/order/reservation.ts';
import type { WalletEvent } from '../../domain/broker/wallet/events.ts';
import {
  type Wallet,
  type WalletCommand,
  walletDecider,
  walletStreamId,
} from '../../domain/broker/wallet/wallet.ts';
import { AggregateCache, loadAggregate } from '../../domain/shared/aggregate.ts';
import { isDomainError } from '../../domain/shared/domain-error.ts';
import {
  type EventStore,
  type RecordedEvent,
  type Subscription,
  WrongExpectedVersion,
} from '../../domain/shared/event-store.ts';
import { formatCents } from '../../domain/shared/money.ts';
import type { PriceCache } from '../../domain/shared/price-cache.ts';
import type {
  TransportConsumer,
  TransportMessage,
  TransportPublisher,
  TransportSubscription,
} from '../../domain/shared/transport.ts';
import type { RelayCheckpoints } from '../../projections/relay.ts';
import { isTransientError } from '../../projections/transient.ts';
import {
  aggregateOf,
  type CommandMetadata,
  type CommandResult,
  handleCommand,
} from '../shared/command-handler.ts';
import { deterministicId } from '../shared/deterministic-id.ts';
import { KeyedLanes } from '../shared/keyed-lanes.ts';
import { type ServiceLogger, silentLogger } from '../shared/service-logger.ts';
import { SnapshotCheckpoints } from '../shared/snapshot-checkpoints.ts';
import { countOrdersEnded, orderProcessSteps, trackOrderProcessLag } from '../shared/trading-metrics.ts';

/** Refused cancels remembered for their order's ACK (a few per outage, normally none). */
const REFUSED_CANCELS_KEPT = 10_000;

export const ORDER_PROCESS_ACTOR = 'order-process-manager';

export interface OrderProcessOptions {
  /** The broker event store. */
  store: EventStore;
  transport: TransportPublisher & TransportConsumer;
  /** The broker asset cache: the reference price a market buy reserves against (the instrument's when absent). */
  assetPrices: PriceCache;
  /** Half-width of the B3 price band in percent (a market buy reserves at its upper edge). */
  priceBandPercent: number;
  /** Where the manager's position is kept (default: snapshots in the broker store). */
  checkpoints?: RelayCheckpoints;
  /** The checkpoint's name (default `order-process`). */
  name?: string;
  logger?: ServiceLogger;
  now?: () => Date;
  /** ExecutionReport consumer: attempts and backoff before a report is dead-lettered. */
  maxAttempts?: number;
  retryDelaysMs?: readonly number[];
  /** Saves the checkpoint at most this often (default 1 s); `stop()` saves it too. */
  checkpointEveryMs?: number;
  /** Delay before following the store again after a failure (default 500 ms, doubling to 10 s). */
  restartDelayMs?: number;
  /**
   * How long a step may keep failing (the same event, followed again and again) before `progress()`
   * says the process is stuck (default 30,000 ms).
   */
  stuckAfterMs?: number;
  /**
   * The lanes wallet commands take turns in, by wallet stream. Where the HTTP API runs in the same
   * process, give both the same one, so that a deposit waits for a reservation instead of
   * conflicting with it (default: the manager's own).
   */
  walletLanes?: KeyedLanes;
  /** Test hooks: crash injection between an effect and its acknowledgement. */
  hooks?: {
    afterSettlement?: (report: ExecutionReport) => Promise<void>;
  };
}

type NewEventId = (index: number) => string;

/** What B3's reason codes for refusing a new order mean, for the order's `rejectDetail`. */
const B3_REJECTIONS: Record<RejectReason, string> = {
  BOOK_NOT_OPEN: 'the book is not open for trading',
  INSTRUMENT_HALTED: 'trading in the instrument is halted',
  DUPLICATE_ORDER_ID: 'B3 already has an order with this id',
  INVALID_QUANTITY: 'B3 refused the quantity',
  INVALID_PRICE: 'B3 refused the limit price',
  INVALID_STOP_PRICE: 'B3 refused the stop price',
  INVALID_EXPIRY: 'the expiry is not in the future',
  INVALID_DISPLAY_QUANTITY: 'B3 refused the displayed quantity',
  UNKNOWN_ORDER: 'B3 does not know the order',
  PRICE_BAND: 'the price is outside the price band around the reference price',
  NO_LIQUIDITY: 'there was nothing on the other side of the book to trade with',
  FOK_NOT_FILLABLE: 'the book could not fill the whole quantity at once (fill or kill)',
  REFERENCE_PRICE_MISSING: 'B3 has no reference price for the instrument yet',
  REFERENCE_PRICE_STALE: "B3's reference price for the instrument is out of date",
};

/**
 * The order's `rejectDetail` for a B3 refusal: the reason's text, and for `PRICE_BAND` the band's
 * edges and the price outside them, as the report carries them (reports of rejections recorded
 * before B3 kept those figures carry none, and get the text alone).
 */
export function b3RejectDetail(report: Pick<ExecutionReport, 'reason' | 'price' | 'priceBand'>): string {
  const text = B3_REJECTIONS[report.reason as RejectReason] ?? 'rejected by B3';
  const { priceBand, price } = report;
  if (report.reason !== 'PRICE_BAND' || priceBand === undefined || price === undefined) return text;
  return `the price ${formatCents(price)} is outside the price band around the reference price, which accepts ${formatCents(priceBand.low)} to ${formatCents(priceBand.high)}`;
}

/** An admin's halt or resume of an instrument, which B3 must apply to the instrument's books. */
function isStatusChange(event: RecordedEvent): boolean {
  return (
    event.streamId.startsWith('instrument-') &&
    (event.type === 'TradingHalted' || event.type === 'TradingResumed')
  );
}

/** How many orders the manager moves on at once. */
const ORDER_LANES = 16;

const ORDER_AGGREGATE = aggregateOf(orderDecider);

/** How many execution reports are taken off the channel at once (in lanes by account). */
const REPORT_PREFETCH = 32;

export class OrderProcess {
  private readonly store: EventStore;
  private readonly logger: ServiceLogger;
  private readonly checkpoints: RelayCheckpoints;
  private readonly name: string;
  private readonly now: () => Date;
  private subscription: Subscription | undefined;
  private reports: TransportSubscription | undefined;
  private running = false;
  private position = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  private restartDelay: number;
  private caughtUp = false;
  private savedAt = 0;
  private readonly idleWaiters = new Set<() => void>();
  private readonly reportLanes = new KeyedLanes();
  /** The orders and wallets this manager works on, as it last saw them. */
  private readonly orders = new AggregateCache<Order>();
  /**
   * Orders whose cancel B3 refused as UNKNOWN_ORDER while they were open here: the cancel overtook
   * the NewOrder (retried behind it), and goes again at the order's ACK. Kept in memory, oldest
   * dropped past `REFUSED_CANCELS_KEPT`.
   */
  private readonly refusedCancels = new Set<string>();
  private readonly wallets = new AggregateCache<Wallet>();
  /** One lane per order stream (and per instrument stream): its events are handled in store order. */
  private readonly orderLanes = new KeyedLanes();
  /**
   * By instrument (custody symbol), the last halt or resume dispatched and not yet sent: an order
   * placed after it waits for it before going to B3, so an order the broker took after a resume
   * never reaches a book still halted, whatever the lanes' timing.
   */
  private readonly statusChanges = new Map<string, Promise<void>>();
  /** One lane per wallet stream: its commands run one at a time (see the module comment). */
  private readonly walletLanes: KeyedLanes;
  /** Positions of the order events being handled. */
  private readonly handling = new Set<number>();
  /** A step failed: reading stops until the running steps settle and the manager follows again. */
  private restarting = false;
  /** The last position read and handed to a lane (or skipped). */
  private dispatched = 0;
  /** The first failure of a step since the checkpoint last moved past it: what `progress()` reports. */
  private failing: { position: number; since: number; error: string } | undefined;
  private saving: Promise<void> | undefined;

  constructor(private readonly options: OrderProcessOptions) {
    this.store = options.store;
    this.logger = options.logger ?? silentLogger;
    this.checkpoints = options.checkpoints ?? new SnapshotCheckpoints(options.store);
    this.name = options.name ?? 'order-process';
    this.now = options.now ?? (() => new Date());
    this.restartDelay = options.restartDelayMs ?? 500;
    this.walletLanes = options.walletLanes ?? new KeyedLanes();
  }

  /** Starts consuming execution reports (if not yet), then follows the store from the checkpoint. */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    await this.consumeReports();
    await this.follow();
    trackOrderProcessLag(this, this.name, async () =>
      Math.max(0, (await this.store.headPosition()) - this.checkpoint),
    );
  }

  /**
   * Starts consuming execution reports only. The engine may report as it starts (the expiries of
   * a session that closed while it was down), and an in-process transport confirms those
   * publishes only once they are handled: this consumer must be there first.
   */
  async consumeReports(): Promise<void> {
    if (this.reports) return;
    this.reports = await this.options.transport.consume<ExecutionReport>(
      'b3-to-broker',
      // One account's reports one at a time, in B3's order (a fill, then the cancel of the rest);
      // different accounts' side by side, as their wallets and orders are independent.
      (message) => this.reportLanes.run(message.body.accountId, () => this.onReport(message)),
      {
        schemas: b3ToBrokerSchemas,
        prefetch: REPORT_PREFETCH,
        maxAttempts: this.options.maxAttempts,
        retryDelaysMs: this.options.retryDelaysMs,
        // A store outage is waited out: a fill dead-lettered for it would never settle.
        isTransient: isTransientError,
      },
    );
  }

  /**
   * Stops following the store, so that no order is accepted and sent to B3 any more, but keeps
   * taking execution reports. A graceful stop runs this, then stops the engine (which books and
   * reports what it already took), then `stop`: a report published after its consumer stopped
   * would wait in the in-process transport and die with the process.
   */
  async stopFollowing(): Promise<void> {
    this.running = false;
    trackOrderProcessLag(this, this.name, undefined);
    if (this.restartTimer) clearTimeout(this.restartTimer);
    const subscription = this.subscription;
    this.subscription = undefined;
    this.advance(); // wakes a read waiting for a free lane
    await subscription?.stop();
    await this.orderLanes.drain();
  }

  async stop(): Promise<void> {
    await this.stopFollowing();
    await this.reports?.stop();
    this.reports = undefined;
    await this.saving;
    this.advance();
    if (this.position > 0) await this.checkpoints.save(this.name, this.position).catch(() => undefined);
  }

  /** The position of the last broker event fully handled. */
  get checkpoint(): number {
    return this.position;
  }

  /** Resolves once every event stored now has been handled (tests and graceful shutdown). */
  async idle(timeoutMs = 10_000): Promise<void> {
    const head = await this.store.headPosition();
    const deadline = Date.now() + timeoutMs;
    while (this.position < head || !this.caughtUp) {
      if (Date.now() > deadline) throw new Error(`order process at ${this.position}, head ${head}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 20);
        this.idleWaiters.add(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /**
   * Follows the broker store. Each order's events go to that order's lane and run one after the
   * other; different orders run side by side, at most ORDER_LANES events at once, and the store
   * keeps being read meanwhile, so a new order never waits for another order's slow step. The
   * checkpoint is the position below the oldest event still running: a crash replays from there,
   * and every step is idempotent.
   */
  private async follow(): Promise<void> {
    this.position = await this.checkpoints.load(this.name);
    this.dispatched = this.position;
    this.handling.clear();
    this.statusChanges.clear();
    this.caughtUp = false;
    const subscription = this.store.subscribeToAll({
      after: this.position,
      batchSize: 100,
      onBatch: async (events) => {
        for (const event of events) {
          while (this.handling.size >= ORDER_LANES && this.subscription === subscription && !this.restarting)
            await this.oneFinished();
          if (this.subscription !== subscription || this.restarting) return;
          if (event.streamId.startsWith('order-') || isStatusChange(event))
            this.dispatch(event, subscription);
          this.dispatched = event.position;
        }
        this.advance();
      },
      onCaughtUp: () => {
        this.caughtUp = true;
      },
      onError: (error) => {
        this.logger.error({ err: error, position: this.position }, 'order process failed, following again');
        this.scheduleRestart(subscription);
      },
    });
    this.subscription = subscription;
  }

  private dispatch(event: RecordedEvent, subscription: Subscription): void {
    const position = event.position;
    this.handling.add(position);
    const statusChanged = isStatusChange(event);
    const instrument = statusChanged
      ? (event.data as { symbol: string }).symbol
      : event.type === 'OrderPlaced'
        ? custodySymbol((event.data as { symbol: string }).symbol)
        : undefined;
    // Captured now, in store order: the status change an order placed after must wait for.
    const statusChange = instrument !== undefined ? this.statusChanges.get(instrument) : undefined;
    const step = this.orderLanes.run(event.streamId, () => this.onEvent(event, statusChange));
    if (instrument !== undefined && statusChanged) {
      const sent = step.then(() => undefined);
      this.statusChanges.set(instrument, sent);
      const forget = () => {
        if (this.statusChanges.get(instrument) === sent) this.statusChanges.delete(instrument);
      };
      sent.then(forget, forget);
    }
    step.then(
      () => {
        this.handling.delete(position);
        this.advance();
      },
      (error: unknown) => {
        const about = {
          position,
          event: event.type,
          eventStreamId: event.streamId,
          correlationId: event.metadata.correlationId,
        };
        // The event stays in `handling`, so the checkpoint stays below it: following again replays it.
        // A stream another writer kept moving is contention, not a fault: following again retries it.
        if (error instanceof WrongExpectedVersion)
          this.logger.warn(
            { ...about, streamId: error.streamId, conflict: error.message },
            'order process step conflicted, following again',
          );
        else this.logger.error({ err: error, ...about }, 'order process step failed, following again');
        if (!(error instanceof WrongExpectedVersion))
          this.failing ??= { position, since: Date.now(), error: (error as Error)?.message ?? String(error) };
        void this.restartAfter(subscription);
      },
    );
  }

  /** Moves the position to just below the oldest running event, saves it now and then, wakes waiters. */
  private advance(): void {
    let oldest = Number.POSITIVE_INFINITY;
    for (const position of this.handling) if (position < oldest) oldest = position;
    this.position = oldest === Number.POSITIVE_INFINITY ? this.dispatched : oldest - 1;
    if (this.failing && this.position >= this.failing.position) this.failing = undefined;
    // Every step is idempotent, so a checkpoint that lags only means handling a little again:
    // save at most once per interval.
    if (!this.saving && Date.now() - this.savedAt >= (this.options.checkpointEveryMs ?? 1_000)) {
      this.savedAt = Date.now();
      const position = this.position;
      this.saving = this.checkpoints
        .save(this.name, position)
        .then(() => {
          this.restartDelay = this.options.restartDelayMs ?? 500;
        })
        .catch((error: unknown) =>
          this.logger.warn({ err: error, position }, 'order process checkpoint not saved'),
        )
        .finally(() => {
          this.saving = undefined;
        });
    }
    const waiters = [...this.idleWaiters];
    this.idleWaiters.clear();
    for (const wake of waiters) wake();
  }

  private oneFinished(): Promise<void> {
    return new Promise((resolve) => this.idleWaiters.add(resolve));
  }

  /**
   * Resolves while orders move; rejects, for `/health/ready`, once one event's step has kept failing
   * for `stuckAfterMs`: every order after it waits, and an operator should know why.
   */
  async progress(): Promise<void> {
    const failing = this.failing;
    if (!failing) return;
    const seconds = Math.round((Date.now() - failing.since) / 1000);
    if (Date.now() - failing.since >= (this.options.stuckAfterMs ?? 30_000))
      throw new Error(
        `the order process has been stuck at position ${failing.position} for ${seconds} s, every order after it waiting: ${failing.error}`,
      );
  }

  /** A failed step: stop reading, let the running steps finish, then follow again from the checkpoint. */
  private async restartAfter(failed: Subscription): Promise<void> {
    if (this.subscription !== failed || this.restarting) return;
    this.restarting = true;
    this.advance(); // wakes a read waiting for a free lane
    try {
      await failed.stop();
      await this.orderLanes.drain();
      await this.saving;
    } finally {
      this.restarting = false;
    }
    this.scheduleRestart(failed);
  }

  private scheduleRestart(failed: Subscription): void {
    if (!this.running || this.subscription !== failed) return;
    this.subscription = undefined;
    const delay = this.restartDelay;
    this.restartDelay = Math.min(delay * 2, 10_000);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (!this.running) return;
      this.follow().catch((error: unknown) => {
        this.logger.error({ err: error }, 'order process could not follow the store');
        this.running && this.scheduleRestart(this.subscription ?? failed);
      });
    }, delay);
  }

  /**
   * One broker event: order streams, and an instrument's halts and resumes. `after`: a halt or
   * resume of the order's instrument stored before it and still being sent, which an order waits
   * for before it goes to B3. Exposed for tests.
   */
  async onEvent(event: RecordedEvent, after?: Promise<void>): Promise<void> {
    if (isStatusChange(event)) return this.onStatusChange(event);
    if (!event.streamId.startsWith('order-')) return;
    // Folded in as it goes by: deciding on the order then reads nothing back from the store.
    this.orders.follow(event, ORDER_AGGREGATE);
    switch ((event as RecordedEvent<OrderEvent['type']>).type) {
      case 'OrderPlaced':
        return this.onPlaced(event, after);
      case 'OrderCancelRequested':
        return this.onCancelRequested(event);
      case 'OrderRejected':
      case 'OrderFilled':
      case 'OrderCanceled':
      case 'OrderExpired':
        return this.onEnded(event);
      default:
        return;
    }
  }

  private metadataOf(event: RecordedEvent): CommandMetadata {
    return { correlationId: event.metadata.correlationId, causationId: event.id, actor: ORDER_PROCESS_ACTOR };
  }

  private idsFrom(...parts: string[]): NewEventId {
    return (index) => deterministicId(...parts, String(index));
  }

  private async loadOrder(streamId: string): Promise<Order> {
    return (await loadAggregate(this.store, streamId, ORDER_AGGREGATE, { cache: this.orders })).state;
  }

  /**
   * An order's placement (account, symbol, side, quantity), which never changes once placed: the
   * cached copy will do, whatever happened to the order since. Its status needs `loadOrder`.
   */
  private async placedOrder(streamId: string): Promise<Order> {
    const cached = this.orders.get(streamId)?.state;
    return cached?.placed ? cached : this.loadOrder(streamId);
  }

  private async onPlaced(event: RecordedEvent, after: Promise<void> | undefined): Promise<void> {
    const order = await this.loadOrder(event.streamId);
    if (!order.placed) return;
    const metadata = this.metadataOf(event);
    if (order.status === 'PENDING_NEW') {
      // An order whose cancel was asked for before its acceptance is not accepted but canceled (the
      // decider's word, asked again should the cancel land while this reserves): nothing reserved
      // for it, or what was released as it ends, and nothing sent to B3.
      const rejection = order.cancelRequested ? undefined : await this.reserve(order, event, metadata);
      const command: OrderCommand = rejection
        ? { type: 'RejectOrder', reason: rejection.reason, detail: rejection.detail, at: this.isoNow() }
        : { type: 'AcceptOrder', at: this.isoNow() };
      const result = await handleCommand(this.store, event.streamId, orderDecider, command, metadata, {
        newEventId: this.idsFrom(event.id, rejection ? 'reject' : 'accept'),
        cache: this.orders,
      });
      countOrdersEnded(result);
      if (result.state.status === 'CANCELED') {
        orderProcessSteps.inc({ step: 'canceled-before-routing' });
        return;
      }
      orderProcessSteps.inc({ step: rejection ? 'rejected' : 'reserved' });
      if (rejection) return;
      await after;
      await this.route(result.state, event);
      return;
    }
    // A replay after a crash: the order was accepted, maybe not routed, or routed while some of
    // what B3 reported about it was lost. The same message id again: B3 books nothing twice and
    // sends the reports of its booking again, the other side's fills included, so an order that
    // has ended is sent too. Only a rejected order never reached B3, or made no trade there.
    if (order.status !== 'REJECTED') {
      await after;
      await this.route(order, event);
    }
  }

  /**
   * An admin halted or resumed an instrument: the same to B3, for each of its books. The messages
   * name the instrument event's version, so B3 applies the newest and ignores a late older one;
   * their ids derive from the event, so sending again (a replay) is recognised by B3.
   */
  private async onStatusChange(event: RecordedEvent): Promise<void> {
    const instrument = (
      await loadAggregate(this.store, event.streamId, aggregateOf(instrumentDecider), {
        version: event.version,
      })
    ).state;
    if (!instrument.listed) return;
    const books = [instrument.symbol, ...(instrument.fractionalSymbol ? [instrument.fractionalSymbol] : [])];
    const halt = event.type === 'TradingHalted';
    const reason = halt ? (event.data as { reason: string }).reason : undefined;
    await Promise.all(
      books.map((symbol) => {
        const body: HaltTradingBody | ResumeTradingBody = halt
          ? { symbol, reason: reason!, catalogueVersion: event.version }
          : { symbol, catalogueVersion: event.version };
        return this.options.transport.publish('broker-to-b3', {
          messageId: deterministicId(event.id, halt ? 'halt-trading' : 'resume-trading', symbol),
          type: halt ? 'HaltTrading' : 'ResumeTrading',
          correlationId: event.metadata.correlationId,
          causationId: event.id,
          schemaVersion: MESSAGE_SCHEMA_VERSION,
          body,
        });
      }),
    );
    orderProcessSteps.inc({ step: halt ? 'halt-sent' : 'resume-sent' });
    this.logger.info(
      {
        symbol: instrument.symbol,
        books,
        catalogueVersion: event.version,
        correlationId: event.metadata.correlationId,
        ...(halt ? { reason } : {}),
      },
      halt ? 'instrument halt sent to B3' : 'instrument resume sent to B3',
    );
  }

  /** Reserves what the order needs; returns the reason when the wallet refuses. */
  private async reserve(
    order: Order,
    event: RecordedEvent,
    metadata: CommandMetadata,
  ): Promise<{ reason: string; detail: string } | undefined> {
    const walletStream = walletStreamId(order.accountId);
    // A replay finds its reservation made already. Only this manager reserves for its orders, so
    // the wallet it cached knows; without one, the wallet is read.
    const wallet =
      this.wallets.get(walletStream)?.state ??
      (await loadAggregate(this.store, walletStream, aggregateOf(walletDecider), { cache: this.wallets }))
        .state;
    if (wallet.reservations[order.orderId] || wallet.closedOrders[order.orderId]) return undefined;
    try {
      // A market buy reserves at the band's upper edge, so it needs a reference price; a market sell
      // uses one, when there is one, only to bound the proceeds it may bring.
      const needsMarketPrice = order.price === null;
      const referencePrice = needsMarketPrice ? await this.referencePrice(order.custodySymbol) : 0;
      if (order.side === 'BUY' && needsMarketPrice && referencePrice === undefined)
        return { reason: 'REFERENCE_PRICE_MISSING', detail: `no reference price for ${order.custodySymbol}` };
      const command = reservationFor(order, {
        referencePrice: referencePrice ?? 0,
        priceBandPercent: this.options.priceBandPercent,
      });
      await this.walletCommand(order.accountId, command, metadata, this.idsFrom(event.id, 'reserve'));
      return undefined;
    } catch (error) {
      if (isDomainError(error)) return { reason: error.reason, detail: error.message };
      throw error;
    }
  }

  /** One command on an account's wallet, in that wallet's lane. */
  private async walletCommand(
    accountId: string,
    command: WalletCommand,
    metadata: CommandMetadata,
    newEventId: NewEventId,
  ): Promise<CommandResult<Wallet, WalletEvent>> {
    const streamId = walletStreamId(accountId);
    return this.walletLanes.run(streamId, () =>
      handleCommand(this.store, streamId, walletDecider, command, metadata, {
        newEventId,
        cache: this.wallets,
      }),
    );
  }

  private async referencePrice(symbol: string): Promise<number | undefined> {
    const cached = await this.options.assetPrices.get(symbol);
    if (cached) return cached.price;
    const instrument = (
      await loadAggregate(this.store, instrumentStreamId(symbol), aggregateOf(instrumentDecider))
    ).state;
    return instrument.listed ? instrument.referencePrice : undefined;
  }

  /** Sends the order to B3; resolves on the broker's confirm, which is what makes it routed. */
  private async route(order: Order, placed: RecordedEvent): Promise<void> {
    const body: NewOrderBody = {
      orderId: order.orderId,
      accountId: order.accountId,
      symbol: order.symbol,
      side: order.side,
      orderType: order.type,
      quantity: order.quantity,
      ...(order.price !== null ? { price: order.price } : {}),
      ...(order.stopPrice !== null ? { stopPrice: order.stopPrice } : {}),
      timeInForce: order.timeInForce,
      ...(order.expiresAt !== null ? { expiresAt: Date.parse(order.expiresAt) } : {}),
    };
    await this.options.transport.publish('broker-to-b3', {
      messageId: deterministicId(placed.id, 'new-order'),
      type: 'NewOrder',
      correlationId: placed.metadata.correlationId,
      causationId: placed.id,
      schemaVersion: MESSAGE_SCHEMA_VERSION,
      body,
    });
    orderProcessSteps.inc({ step: 'routed' });
  }

  private async onCancelRequested(event: RecordedEvent): Promise<void> {
    const order = await this.loadOrder(event.streamId);
    // A cancel before acceptance is carried by the placement: it cancels the order instead of
    // accepting it, a rejected order needs none, and one accepted first is routed before this
    // event is handled (events are handled in store order), then canceled here.
    if (!order.placed || isTerminal(order.status) || order.status === 'PENDING_NEW') return;
    await this.sendCancel(
      order,
      deterministicId(event.id, 'cancel-order'),
      event.metadata.correlationId,
      event.id,
    );
  }

  private rememberRefusedCancel(orderId: string): void {
    this.refusedCancels.add(orderId);
    if (this.refusedCancels.size > REFUSED_CANCELS_KEPT)
      this.refusedCancels.delete(this.refusedCancels.values().next().value!);
  }

  private async sendCancel(
    order: Order,
    messageId: string,
    correlationId: string,
    causationId: string,
  ): Promise<void> {
    const body: CancelOrderBody = {
      orderId: order.orderId,
      accountId: order.accountId,
      symbol: order.symbol,
    };
    await this.options.transport.publish('broker-to-b3', {
      messageId,
      type: 'CancelOrder',
      correlationId,
      causationId,
      schemaVersion: MESSAGE_SCHEMA_VERSION,
      body,
    });
    orderProcessSteps.inc({ step: 'cancel-sent' });
  }

  private async onEnded(event: RecordedEvent): Promise<void> {
    const order = await this.placedOrder(event.streamId);
    if (!order.placed) return;
    await this.walletCommand(
      order.accountId,
      { type: 'ReleaseReservation', orderId: order.orderId },
      this.metadataOf(event),
      this.idsFrom(event.id, 'release'),
    );
    orderProcessSteps.inc({ step: 'released' });
  }

  /** One ExecutionReport from B3. Throwing retries it (then dead-letters it); resolving acks it. */
  async onReport(message: TransportMessage<ExecutionReport>): Promise<void> {
    const report = message.body;
    const streamId = orderStreamId(report.orderId);
    const order = await this.placedOrder(streamId);
    if (!order.placed)
      throw new Error(`execution report ${report.executionId} for unknown order ${report.orderId}`);
    const metadata: CommandMetadata = {
      correlationId: message.correlationId,
      causationId: message.messageId,
      actor: ORDER_PROCESS_ACTOR,
    };
    const at = new Date(report.at).toISOString();
    const ids = (step: string) => this.idsFrom('report', report.executionId, step);
    switch (report.type) {
      case 'FILL':
      case 'PARTIAL_FILL': {
        const quantity = report.quantity;
        const price = report.price;
        if (quantity === undefined || price === undefined)
          throw new Error(`fill ${report.executionId} without quantity or price`);
        const settled = await this.walletCommand(
          order.accountId,
          {
            type: 'SettleExecution',
            executionId: report.executionId,
            orderId: order.orderId,
            quantity,
            price,
          },
          metadata,
          ids('settle'),
        );
        this.reportUnusualSettlement(settled, order.accountId, metadata);
        await this.options.hooks?.afterSettlement?.(report);
        const recorded = await handleCommand(
          this.store,
          streamId,
          orderDecider,
          { type: 'RecordExecution', executionId: report.executionId, quantity, price, at },
          metadata,
          { newEventId: ids('record'), cache: this.orders },
        );
        countOrdersEnded(recorded);
        orderProcessSteps.inc({ step: 'settled' });
        return;
      }
      case 'CANCELED':
        this.assertFillsArrived(report, await this.loadOrder(streamId));
        return this.endOrder(
          streamId,
          { type: 'CancelOrder', reason: await this.cancelReason(streamId, order, report.reason), at },
          metadata,
          ids,
        );
      case 'EXPIRED':
        this.assertFillsArrived(report, await this.loadOrder(streamId));
        return this.endOrder(streamId, { type: 'ExpireOrder', reason: report.reason, at }, metadata, ids);
      case 'REJECTED':
        if (report.request !== undefined && report.request !== 'NEW') {
          if (report.request === 'CANCEL' && report.reason === 'UNKNOWN_ORDER') {
            const current = await this.loadOrder(streamId);
            if (current.cancelRequested && !isTerminal(current.status))
              this.rememberRefusedCancel(report.orderId);
          }
          this.logger.info(
            {
              orderId: report.orderId,
              correlationId: metadata.correlationId,
              request: report.request,
              reason: report.reason,
              detail: b3RejectDetail(report),
            },
            'B3 refused a request on an order',
          );
          return;
        }
        return this.endOrder(
          streamId,
          {
            type: 'RejectOrder',
            reason: report.reason ?? 'REJECTED_BY_B3',
            detail: b3RejectDetail(report),
            at,
          },
          metadata,
          ids,
        );
      case 'ACK':
        // A cancel asked before B3 booked the order may have reached B3 first (the NewOrder retried
        // behind it, through a store outage), and been refused as UNKNOWN_ORDER: the order would
        // rest with its cancel asked and nothing left to send it. Now that it is booked, that
        // cancel goes again (only that one: a cancel B3 took needs no second).
        if (
          report.request === 'NEW' &&
          this.refusedCancels.delete(report.orderId) &&
          !isTerminal((await this.loadOrder(streamId)).status)
        )
          await this.sendCancel(
            order,
            deterministicId(report.executionId, 'cancel-after-ack'),
            message.correlationId,
            message.messageId,
          );
        return;
    }
  }

  /**
   * B3 takes out of its book what is left of an order after its fills, and reports the fills first.
   * A cancel or expiry of fewer shares than the broker still has open means fills it has not handled
   * yet (a report being retried, or re-sent by an engine recovering from a crash): ending the order
   * now would release the reservation those fills settle against, and they would settle one side of
   * the trade only. Throwing retries the report after them (then dead-letters it, the order left
   * open with its reservation, for an operator).
   */
  private assertFillsArrived(report: ExecutionReport, order: Order): void {
    if (isTerminal(order.status) || report.quantity === undefined) return;
    const open = remainingQuantity(order);
    if (report.quantity < open)
      throw new Error(
        `${report.type} report ${report.executionId} takes ${report.quantity} shares out of order ${order.orderId}, which has ${open} open here: its fills have not arrived yet`,
      );
  }

  /**
   * What a settlement may book that an operator must know of (B3 has traded, so it is booked all the
   * same): a buy filled above the price its reservation covered, the excess taken from available cash
   * (a warning; below zero, the wallet owes it), and a sale whose proceeds took the balance past the
   * exact range, which reservations are meant to prevent (an error).
   */
  private reportUnusualSettlement(
    settled: Pick<CommandResult<Wallet, WalletEvent>, 'events' | 'state'>,
    accountId: string,
    metadata: CommandMetadata,
  ): void {
    const wallet = settled.state;
    const available = wallet.cash.available;
    const money = (cents: number) => (Number.isSafeInteger(cents) ? formatCents(cents) : String(cents));
    for (const event of settled.events) {
      const { orderId, executionId, price } = event.data as {
        orderId: string;
        executionId: string;
        price: number;
      };
      const details = {
        accountId,
        orderId,
        executionId,
        price: money(price),
        correlationId: metadata.correlationId,
      };
      if (event.type === 'BuySettled' && event.data.fromAvailable > 0)
        this.logger.warn(
          {
            ...details,
            fromAvailable: money(event.data.fromAvailable),
            available: money(available),
          },
          'buy filled above its reservation: the excess was taken from available cash',
        );
      if (event.type === 'SellSettled' && !Number.isSafeInteger(wallet.cash.available + wallet.cash.reserved))
        this.logger.error(
          { ...details, amount: money(event.data.amount) },
          "sale settled past the wallet's exact cash range: the balance is no longer exact",
        );
    }
  }

  /**
   * Why the order was canceled, as the broker records it. B3 reports every cancel its participant
   * (the broker) asked for as CANCELED_BY_TRADER; the broker knows who asked: the owner, or an admin
   * acting on another's order (CANCELED_BY_ADMIN), kept in the order's state as `cancelRequestedBy`.
   */
  private async cancelReason(
    streamId: string,
    order: Order,
    reason: string | undefined,
  ): Promise<string | null> {
    if (reason !== 'CANCELED_BY_TRADER') return reason ?? null;
    // A state folded from a snapshot older than `cancelRequestedBy` does not know: read the request.
    const requestedBy =
      order.cancelRequestedBy ??
      (
        (await this.store.readStream(streamId)).findLast((event) => event.type === 'OrderCancelRequested')
          ?.data as { requestedBy?: string } | undefined
      )?.requestedBy;
    return requestedBy !== undefined && requestedBy !== order.accountId ? 'CANCELED_BY_ADMIN' : reason;
  }

  /** Ends an order on B3's word; an order that already ended (filled first, say) stays as it is. */
  private async endOrder(
    streamId: string,
    command: OrderCommand,
    metadata: CommandMetadata,
    ids: (step: string) => NewEventId,
  ): Promise<void> {
    try {
      countOrdersEnded(
        await handleCommand(this.store, streamId, orderDecider, command, metadata, {
          newEventId: ids('end'),
          cache: this.orders,
        }),
      );
      orderProcessSteps.inc({ step: 'ended' });
    } catch (error) {
      if (error instanceof OrderClosed) {
        this.logger.info(
          { streamId, status: error.status, command: command.type, correlationId: metadata.correlationId },
          'order already ended',
        );
        return;
      }
      throw error;
    }
  }

  private isoNow(): string {
    return this.now().toISOString();
  }
}
