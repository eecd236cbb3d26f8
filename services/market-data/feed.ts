/**
 * The market data feed: every quote goes to both price caches (the broker asset cache and the B3
 * market cache) and to a `QuoteReceived` event in the B3 store's `quotes-{symbol}` stream, which
 * the relay publishes to `assets-market-data-v1` keyed by symbol and the quote-history read model
 * projects. See docs/market-data.md.
 *
 * Admin commands (`setQuotesEnabled`, `setReferencePrice`) make tests and demos deterministic:
 * with quotes off, only prices an admin sets move, and those are pinned (they never go stale).
 * A pinned symbol's feed quotes are dropped until the next admin price, so its stream's last quote
 * stays the admin's: the pin comes back from the stream after a restart, and the quote routes show
 * the price the B3 band uses.
 */
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { quoteStreamId } from '../../domain/b3/quote-events.ts';
import type { EventStore } from '../../domain/shared/event-store.ts';
import type { CachedPrice, PriceCache } from '../../domain/shared/price-cache.ts';
import { deterministicId } from '../shared/deterministic-id.ts';
import { KeyedLanes } from '../shared/keyed-lanes.ts';
import { type ServiceLogger, silentLogger } from '../shared/service-logger.ts';
import { quotesPublished } from '../shared/trading-metrics.ts';
import { BrapiClient, type BrapiClientOptions } from './brapi-client.ts';
import { parseBrapiRecording, type Quote, randomWalk } from './quotes.ts';

export const MARKET_DATA_ACTOR = 'market-data';

export type QuoteSourceConfig =
  | { kind: 'off' }
  | {
      kind: 'random-walk';
      start: Record<string, number>;
      seed: number;
      intervalMs: number;
      maxStepBps?: number;
    }
  /** Replays the file's quotes one step (one timestamp) per interval, stamped with the replay time, then stops. */
  | { kind: 'replay'; file: string; intervalMs: number; keepOriginalTime?: boolean }
  /** Polls Brapi every interval for the tickers (needs network and, for most tickers, a token). */
  | { kind: 'brapi'; tickers: readonly string[]; intervalMs: number; client: BrapiClientOptions };

export interface MarketDataFeedOptions {
  /** The B3 event store (`quotes-{symbol}` streams). */
  store: EventStore;
  brokerPrices: PriceCache;
  marketPrices: PriceCache;
  source?: QuoteSourceConfig;
  /** Quotes flow from the start (default true); admin prices are taken either way. */
  enabled?: boolean;
  now?: () => number;
  logger?: ServiceLogger;
}

/** An admin's price as the broker's catalogue recorded it: what `recordCataloguePrice` takes. */
export interface CataloguePrice {
  symbol: string;
  /** Cents. */
  price: number;
  /** Epoch milliseconds: when the admin set it. */
  at: number;
  /** The catalogue event (`InstrumentListed`, `ReferencePriceUpdated`) it comes from. */
  eventId: string;
  /** That event's correlation id: the admin's request, so the audit trace reaches the quote. */
  correlationId: string;
}

/** The id of the admin quote recorded for a catalogue event: one quote per event, however often it is followed. */
export const adminQuoteId = (catalogueEventId: string): string =>
  deterministicId('admin-quote', catalogueEventId);

interface QuoteIdentity {
  id: string;
  correlationId: string;
  causationId: string;
}

/** How often a feed whose quotes keep failing says so again. */
const FAILING_SAID_EVERY_MS = 60_000;

/**
 * How often the caches are filled again from the streams (`keepCachesWarm`): the longest a flushed
 * Redis leaves the broker reserving at the catalogue's price instead of the last quote.
 */
export const CACHE_REWARM_MS = 10_000;

export class MarketDataFeed {
  private enabled: boolean;
  private timer: NodeJS.Timeout | undefined;
  private rewarmTimer: NodeJS.Timeout | undefined;
  private rewarming: Promise<unknown> = Promise.resolve();
  private readonly logger: ServiceLogger;
  private readonly now: () => number;
  private inFlight: Promise<void> = Promise.resolve();
  private published = 0;
  /** Since when quotes fail to publish, how many were dropped, and when that was last said. */
  private failing: { since: number; dropped: number; said: number } | undefined;
  /** One symbol's quotes are recorded one after another: a feed quote never lands after a pin. */
  private readonly lanes = new KeyedLanes();
  /** Whether each symbol's last recorded quote is an admin's, read from its stream on first use. */
  private readonly pinned = new Map<string, boolean>();

  constructor(private readonly options: MarketDataFeedOptions) {
    this.enabled = options.enabled ?? true;
    this.logger = options.logger ?? silentLogger;
    this.now = options.now ?? Date.now;
  }

  get quotesEnabled(): boolean {
    return this.enabled;
  }

  /** Quotes published since start (admin prices included). */
  get count(): number {
    return this.published;
  }

  /** Starts the configured source on its timer. */
  async start(): Promise<void> {
    const source = this.options.source ?? { kind: 'off' };
    if (source.kind === 'off' || this.timer) return;
    let next: () => Quote[] | Promise<Quote[]>;
    if (source.kind === 'brapi') {
      const client = new BrapiClient(source.client);
      next = () => client.quotes(source.tickers);
    } else if (source.kind === 'random-walk') {
      // From where each price was left (a restart goes on from the last quote, not back to the
      // catalogue's price), every step then at most the walk's own.
      const start = { ...source.start };
      for (const symbol of Object.keys(start)) {
        const last = await lastRecordedPrice(this.options.store, symbol);
        if (last) start[symbol] = last.price;
      }
      const step = randomWalk({ ...source, start });
      next = () =>
        step().map(({ symbol, price }) => ({ symbol, price, at: this.now(), source: 'random-walk' }));
    } else {
      const quotes = parseBrapiRecording(
        await readFile(source.file, 'utf8'),
        `replay:${basename(source.file)}`,
      );
      const byTime = new Map<number, Quote[]>();
      for (const quote of quotes) byTime.set(quote.at, [...(byTime.get(quote.at) ?? []), quote]);
      const steps = [...byTime.values()];
      let index = 0;
      next = () => {
        const batch = steps[index++] ?? [];
        if (index >= steps.length) this.stopTimer();
        return source.keepOriginalTime ? batch : batch.map((quote) => ({ ...quote, at: this.now() }));
      };
    }
    // The first quotes go out now, not a whole interval later: a freshly started exchange has
    // reference prices before the first order can reach the engine.
    if (this.enabled) {
      this.inFlight = this.inFlight
        .then(async () => this.publishAll(await next()))
        .catch((error: unknown) => this.failed(error, 1));
      await this.inFlight;
    }
    this.timer = setInterval(() => {
      if (!this.enabled) return;
      this.inFlight = this.inFlight
        .then(async () => this.publishAll(await next()))
        .catch((error: unknown) => this.failed(error, 1));
    }, source.intervalMs);
  }

  async stop(): Promise<void> {
    this.stopTimer();
    if (this.rewarmTimer) clearInterval(this.rewarmTimer);
    this.rewarmTimer = undefined;
    await Promise.all([this.inFlight, this.rewarming]);
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Admin: switch the feed's quotes off (or on again). Admin prices still go through. */
  setQuotesEnabled(enabled: boolean): void {
    this.enabled = enabled;
    this.logger.info({ enabled }, 'market data quotes switched');
  }

  /**
   * Admin: sets a symbol's reference price (cents) in both caches, pinned so it never goes
   * stale, and records it as a quote from `admin`. It holds until the next admin price: the
   * feed's quotes for the symbol are dropped meanwhile.
   */
  async setReferencePrice(symbol: string, price: number): Promise<Quote> {
    return this.pin({ symbol, price, at: this.now(), source: 'admin' });
  }

  /**
   * An admin's price from the broker's catalogue (an instrument's listing or reference price
   * update, see `ReferencePriceFollower`): pinned like `setReferencePrice`, stamped with the
   * catalogue event's time, and recorded under an id derived from that event, so that following
   * the catalogue again after a crash records it once.
   */
  async recordCataloguePrice(price: CataloguePrice): Promise<Quote> {
    return this.pin(
      { symbol: price.symbol, price: price.price, at: price.at, source: 'admin' },
      {
        id: adminQuoteId(price.eventId),
        correlationId: price.correlationId,
        causationId: price.eventId,
      },
    );
  }

  private async pin(quote: Quote, identity?: QuoteIdentity): Promise<Quote> {
    if (!Number.isSafeInteger(quote.price) || quote.price <= 0)
      throw new RangeError(`reference price must be positive cents, got ${quote.price}`);
    return this.lanes.run(quote.symbol, async () => {
      await this.record(quote, true, identity);
      this.pinned.set(quote.symbol, true);
      return quote;
    });
  }

  /**
   * Fills the caches from the last recorded quote of each symbol, as after a restart with an
   * in-process cache (or a flushed Redis): the caches are derived from the `quotes-…` streams.
   * A cached newer price is kept; an admin's price comes back pinned.
   */
  async warmCaches(symbols: readonly string[]): Promise<number> {
    let warmed = 0;
    // In the symbol's lane: a pin recorded meanwhile is not undone by the price read before it.
    for (const symbol of symbols)
      await this.lanes.run(symbol, async () => {
        const cached = await lastRecordedPrice(this.options.store, symbol);
        this.pinned.set(symbol, cached?.pinned ?? false);
        if (!cached) return;
        await Promise.all([this.options.brokerPrices.set(cached), this.options.marketPrices.set(cached)]);
        warmed += 1;
      });
    return warmed;
  }

  /**
   * Fills the caches again from the streams every `everyMs`, for every symbol this feed has seen
   * (warmed, quoted or priced by an admin): a Redis flushed or restarted empty gets its prices back
   * without a restart of ours, whether quotes flow or not. A cached newer price is kept, as above.
   */
  keepCachesWarm(everyMs = CACHE_REWARM_MS): void {
    if (this.rewarmTimer) return;
    this.rewarmTimer = setInterval(() => {
      this.rewarming = this.rewarming
        .then(() => this.warmEmptiedCaches([...this.pinned.keys()]))
        .catch((error: unknown) =>
          this.logger.warn({ err: error }, 'price caches not filled again from the streams: retried'),
        );
    }, everyMs);
    this.rewarmTimer.unref();
  }

  /**
   * `warmCaches` for the symbols one of the caches lost (a flush, a restart of Redis): what both
   * still hold is not read again from its stream.
   */
  async warmEmptiedCaches(symbols: readonly string[]): Promise<number> {
    const { brokerPrices, marketPrices } = this.options;
    const held = await Promise.all(
      symbols.map(async (symbol) => {
        const [broker, market] = await Promise.all([brokerPrices.get(symbol), marketPrices.get(symbol)]);
        return broker !== undefined && market !== undefined;
      }),
    );
    return this.warmCaches(symbols.filter((_, i) => !held[i]));
  }

  /** One quote from a source: dropped while quotes are off, or while an admin's price pins its symbol. */
  async publish(quote: Quote): Promise<boolean> {
    if (!this.enabled) return false;
    return this.lanes.run(quote.symbol, async () => {
      if (await this.isPinned(quote.symbol)) return false;
      await this.record(quote, false);
      return true;
    });
  }

  private async isPinned(symbol: string): Promise<boolean> {
    let pinned = this.pinned.get(symbol);
    if (pinned === undefined) {
      pinned = (await lastRecordedPrice(this.options.store, symbol))?.pinned ?? false;
      this.pinned.set(symbol, pinned);
    }
    return pinned;
  }

  /**
   * A tick's quotes, each symbol on its own stream: appended together, so that the event store
   * commits them as one group instead of one append after another. One that fails is logged and
   * does not hold back the others.
   */
  async publishAll(quotes: Quote[]): Promise<void> {
    const outcomes = await Promise.allSettled(quotes.map((quote) => this.publish(quote)));
    const failures = outcomes.filter((outcome) => outcome.status === 'rejected');
    if (failures.length > 0) this.failed(failures[0]!.reason, failures.length);
    else if (this.failing) {
      this.logger.info(
        { dropped: this.failing.dropped, forSeconds: Math.round((this.now() - this.failing.since) / 1000) },
        'quotes published again',
      );
      this.failing = undefined;
    }
  }

  /**
   * Quotes that could not be published (the event store or a cache down): said once with the error,
   * then once a minute with how many were dropped, and once when they go through again, rather than
   * a line with a stack for every symbol of every tick.
   */
  private failed(error: unknown, quotes: number): void {
    const now = this.now();
    if (!this.failing) {
      this.failing = { since: now, dropped: quotes, said: now };
      this.logger.warn(
        { err: error, quotes },
        'quotes not published: the feed goes on and says when they are again',
      );
      return;
    }
    this.failing.dropped += quotes;
    if (now - this.failing.said < FAILING_SAID_EVERY_MS) return;
    this.failing.said = now;
    this.logger.warn(
      {
        error: error instanceof Error ? error.message : String(error),
        dropped: this.failing.dropped,
        forSeconds: Math.round((now - this.failing.since) / 1000),
      },
      'quotes still not published',
    );
  }

  private async record(quote: Quote, pinned: boolean, identity?: QuoteIdentity): Promise<void> {
    const cached = { symbol: quote.symbol, price: quote.price, at: quote.at, source: quote.source, pinned };
    await Promise.all([this.options.brokerPrices.set(cached), this.options.marketPrices.set(cached)]);
    await this.options.store.append(
      quoteStreamId(quote.symbol),
      [
        {
          // The same quote from the same source is one event, however often it is replayed.
          id:
            identity?.id ??
            deterministicId('quote', quote.source, quote.symbol, String(quote.at), String(quote.price)),
          type: 'QuoteReceived',
          data: {
            symbol: quote.symbol,
            bid: null,
            ask: null,
            bidSize: 0,
            askSize: 0,
            last: quote.price,
            volume: 0,
            source: quote.source,
            at: quote.at,
          },
          metadata: {
            correlationId:
              identity?.correlationId ??
              deterministicId('quote-correlation', quote.source, quote.symbol, String(quote.at)),
            causationId: identity?.causationId ?? quote.source,
            actor: MARKET_DATA_ACTOR,
            occurredAt: new Date(quote.at).toISOString(),
          },
        },
      ],
      { expectedVersion: 'any' },
    );
    this.published += 1;
    quotesPublished.inc({ source: quote.source.startsWith('replay:') ? 'replay' : quote.source });
  }
}

/**
 * The price a symbol's last recorded quote gives (its `quotes-…` stream in the B3 store), as a
 * cache holds it: what an emptied cache is filled from. An admin's price comes back pinned.
 */
export async function lastRecordedPrice(store: EventStore, symbol: string): Promise<CachedPrice | undefined> {
  const [last] = await store.readStream(quoteStreamId(symbol), { direction: 'backwards', limit: 1 });
  const data = last?.data as { last: number | null; at: number; source: string } | undefined;
  if (!data || data.last === null) return undefined;
  return { symbol, price: data.last, at: data.at, source: data.source, pinned: data.source === 'admin' };
}
