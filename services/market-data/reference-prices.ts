/**
 * Admins' reference prices, from the broker's catalogue to the market data: follows the broker
 * store's `instrument-{symbol}` events from a durable checkpoint and records each admin's price —
 * a listing's (`InstrumentListed`), an update's (`ReferencePriceUpdated`) — through the feed, as a
 * pinned admin quote: both price caches and the symbol's `quotes-…` stream. It runs wherever the
 * feed runs (the market-data service, or `tradecore start`), so an instrument listed through
 * broker-api in another process trades at once, and the B3 band follows an admin's price.
 *
 * At least once, never twice: the checkpoint is saved after the batch's prices are recorded, and
 * a catalogue event's quote has an id derived from the event's, so following again after a crash
 * records nothing new. See docs/market-data.md.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { quoteStreamId } from '../../domain/b3/quote-events.ts';
import type { InstrumentListed, ReferencePriceUpdated } from '../../domain/broker/instrument/events.ts';
import type { EventStore, RecordedEvent } from '../../domain/shared/event-store.ts';
import { CheckpointedFollower } from '../../projections/checkpointed-follower.ts';
import type { RelayCheckpoints } from '../../projections/relay.ts';
import { isSeeded } from '../shared/seed-metadata.ts';
import { type ServiceLogger, silentLogger } from '../shared/service-logger.ts';
import { SnapshotCheckpoints } from '../shared/snapshot-checkpoints.ts';
import { adminQuoteId, type CataloguePrice, type MarketDataFeed } from './feed.ts';

/** The checkpoint's name (a `checkpoint-…` snapshot in the broker store by default). */
export const REFERENCE_PRICES_CHECKPOINT = 'market-data-reference-prices';

/**
 * The admin price a catalogue event sets, if any. The default catalogue's listings (seeded at
 * start) are not: their symbols are priced by the quote source, as before any admin acts.
 */
export function cataloguePriceOf(event: RecordedEvent): CataloguePrice | undefined {
  if (!event.streamId.startsWith('instrument-')) return undefined;
  const source = { eventId: event.id, correlationId: event.metadata.correlationId };
  if (event.type === 'InstrumentListed') {
    if (isSeeded(event.metadata)) return undefined;
    const data = event.data as InstrumentListed['data'];
    return { symbol: data.symbol, price: data.referencePrice, at: Date.parse(data.listedAt), ...source };
  }
  if (event.type === 'ReferencePriceUpdated') {
    const data = event.data as ReferencePriceUpdated['data'];
    return { symbol: data.symbol, price: data.referencePrice, at: Date.parse(data.at), ...source };
  }
  return undefined;
}

export interface ReferencePriceFollowerOptions {
  /** The broker event store, where the `instrument-…` streams are. */
  broker: EventStore;
  feed: Pick<MarketDataFeed, 'recordCataloguePrice'>;
  /** Default: snapshots in the broker store. */
  checkpoints?: RelayCheckpoints;
  /** Names the checkpoint (default `market-data-reference-prices`). */
  name?: string;
  /** A batch without a catalogue price saves the checkpoint at most this often (default 1,000 ms). */
  checkpointEveryMs?: number;
  /** First delay before following again after a failure, doubled up to 10 s (default 500). */
  retryDelayMs?: number;
  logger?: ServiceLogger;
}

export class ReferencePriceFollower {
  private readonly follower: CheckpointedFollower;
  private readonly logger: ServiceLogger;
  private savedAt = 0;

  constructor(private readonly options: ReferencePriceFollowerOptions) {
    this.logger = options.logger ?? silentLogger;
    this.follower = new CheckpointedFollower({
      name: options.name ?? REFERENCE_PRICES_CHECKPOINT,
      source: options.broker,
      checkpoints: options.checkpoints ?? new SnapshotCheckpoints(options.broker),
      handle: (events, checkpoint) => this.record(events, checkpoint),
      retryDelayMs: options.retryDelayMs,
      maxRetryDelayMs: 10_000,
      logger: this.logger,
      retryMessage: 'reference prices from the catalogue failed: following again from the checkpoint',
    });
  }

  /** The position of the last broker event handled. */
  get checkpoint(): number {
    return this.follower.progress().position;
  }

  /** Loads the checkpoint and follows the broker store from there. */
  start(): Promise<void> {
    return this.follower.start();
  }

  private async record(events: RecordedEvent[], checkpoint: () => Promise<void>): Promise<void> {
    let recorded = 0;
    for (const event of events) {
      const price = cataloguePriceOf(event);
      if (!price) continue;
      await this.options.feed.recordCataloguePrice(price);
      recorded += 1;
      this.logger.info(
        { symbol: price.symbol, price: price.price, event: event.type },
        'reference price from the catalogue',
      );
    }
    // Most of the broker's events are orders and wallets: those batches move the checkpoint now and
    // then (a crash only reads them again); one that recorded a price moves it at once.
    if (recorded > 0 || Date.now() - this.savedAt >= (this.options.checkpointEveryMs ?? 1_000)) {
      await checkpoint();
      this.savedAt = Date.now();
    }
  }

  /** Stops following; a batch in flight finishes first, and the position reached is saved. */
  async stop(): Promise<void> {
    await this.follower.stop();
    await this.follower
      .saveCheckpoint()
      .catch((error: unknown) => this.logger.warn({ err: error }, 'reference prices checkpoint not saved'));
  }
}

/**
 * Waits until the market data has recorded a catalogue event's price — the quote is in the
 * symbol's `quotes-…` stream of the B3 store, and so in both caches, which are set first — or
 * until `timeoutMs` has passed. What the admin routes answer after, in whichever process the
 * market data runs: an instrument is tradable once listed.
 */
export async function cataloguePriceRecorded(
  b3: EventStore,
  symbol: string,
  catalogueEventId: string,
  timeoutMs: number,
): Promise<boolean> {
  const id = adminQuoteId(catalogueEventId);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    // An admin's quote pins its symbol, so nothing but another admin's price lands after it.
    const recent = await b3.readStream(quoteStreamId(symbol), { direction: 'backwards', limit: 20 });
    if (recent.some((event) => event.id === id)) return true;
    if (Date.now() >= deadline) return false;
    await delay(25);
  }
}
