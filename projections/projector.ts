import type { EventStore, RecordedEvent, Subscription } from '../domain/shared/event-store.ts';
import { withTimeout } from './deadline.ts';
import {
  projectedEvents,
  projectionCheckpoint,
  projectionLagEvents,
  projectionLagSeconds,
} from './metrics.ts';
import type { Change, ProjectionDefinition } from './model.ts';
import type { OpenBatch, ReadModelStore, Target } from './store.ts';
import { isTransientError, retryLogLevel } from './transient.ts';

export interface RebuildProgress {
  projection: string;
  /** Position reached and the head it is heading for. */
  position: number;
  head: number;
  events: number;
  eventsPerSecond: number;
  /** Seconds left at the current rate, undefined before a rate is known. */
  etaSeconds?: number;
}

/**
 * `retrying`: a transient error (the store or the event store unreachable, a deadlock) stopped
 * the live follower, which follows again from the stored checkpoint after a backoff. `failed`:
 * an error that would happen again (an event the projection cannot apply) stopped it, until a
 * rebuild, a restart, or its stored checkpoint moved past the failure by another process (a
 * rebuild there, `tradecore projections rebuild`).
 */
export type ProjectorState = 'stopped' | 'starting' | 'running' | 'retrying' | 'rebuilding' | 'failed';

/**
 * What `status()` reports: a projector's state, or `stalled` for one `running` whose checkpoint
 * has not moved for `stallAfterMs` while its event store's head is past it (a batch that never
 * finishes, a store that has slowed to a crawl). It is still following; nothing else changes.
 */
export type ProjectorStatusState = ProjectorState | 'stalled';

export interface ProjectorStatus {
  projection: string;
  store: string;
  state: ProjectorStatusState;
  checkpoint: number;
  head: number;
  lagPositions: number;
  /** While `stalled`: seconds since the checkpoint last moved. */
  stalledSeconds?: number;
  rebuild?: RebuildProgress;
  /** The error that failed it, or that it is retrying after. */
  error?: string;
  /** Transient failures since the last batch applied (while `retrying`). */
  retries?: number;
}

export interface ProjectorOptions {
  projection: ProjectionDefinition;
  source: EventStore;
  store: ReadModelStore;
  batchSize?: number;
  /**
   * Live: after a batch, wait this long before the next, so a busy store's events are applied
   * in fewer transactions (each costs the store a commit and a checkpoint write). Default 0.
   */
  pacingMs?: number;
  /** Changes a rebuild folds in memory before writing them in one transaction (at least one page's). */
  rebuildWindow?: number;
  /**
   * After a transient error, the first pause before following again from the checkpoint, doubled
   * at each failure up to `maxRetryDelayMs`, each pause drawn between half and all of it
   * (defaults 500 and 30,000).
   */
  retryDelayMs?: number;
  maxRetryDelayMs?: number;
  /** How often the lag gauges are refreshed from the event store's head, applying or not (default 5,000). */
  lagRefreshMs?: number;
  /** How long a running projector behind its head may go without its checkpoint moving before `status()` says `stalled` (default 60,000). */
  stallAfterMs?: number;
  /** Told about failures and rebuilds; a pino logger fits. */
  logger?: {
    info: (object: object, message: string) => void;
    warn: (object: object, message: string) => void;
    error: (object: object, message: string) => void;
  };
}

/**
 * A running projector behind its head whose checkpoint has not moved for this long is reported
 * `stalled`: far above a batch's pacing and a healthy batch's write, far below what an operator
 * would wait before looking.
 */
const STALL_AFTER_MS = 60_000;

/** How long a status waits for a store to give a stopped or failed projector's checkpoint. */
const STATUS_READ_MS = 2_000;

/** A projection with nothing to write still saves its checkpoint this often, so a restart replays little. */
const IDLE_CHECKPOINT_EVERY_MS = 1_000;

/**
 * A rebuild's window: large enough that rows changed again and again (candles, book levels)
 * collapse and each statement carries thousands of rows, small enough to stay a few megabytes.
 */
const REBUILD_WINDOW_CHANGES = 20_000;

/** Events read and projected by a rebuild, written in one transaction. */
interface RebuildWindow {
  /** The store's open batch, or else the changes themselves. */
  batch: OpenBatch | undefined;
  changes: Change[];
  /** How many changes the window holds. */
  size: number;
  events: number;
  /** The position of the window's last event. */
  to: number;
}

/** Thrown by a rebuild whose projector stopped meanwhile: the live read model is as it was. */
export class RebuildStopped extends Error {
  constructor(projection: string) {
    super(
      `projection ${projection}: the rebuild stopped with its projector; the live read model is unchanged`,
    );
    this.name = 'RebuildStopped';
  }
}

/**
 * Runs one projection: follows its event store from the checkpoint and applies a batch per
 * transaction, the checkpoint moving in the same transaction (compare-and-set, so two instances
 * never both apply a batch). Rebuilds into fresh tables while the live ones keep serving.
 */
export class Projector {
  private subscription?: Subscription;
  /** The position applied, in memory; `persisted` is the one in the store (they differ after skipped batches). */
  private checkpoint = 0;
  private persisted = 0;
  private savedAt = 0;
  private saveTimer: NodeJS.Timeout | undefined;
  private writing: Promise<unknown> = Promise.resolve();
  private state: ProjectorState = 'stopped';
  private lastError?: string;
  private progress?: RebuildProgress;
  /** When the checkpoint last moved, following (re)started, or `status()` found it caught up: what `stalled` is measured from. */
  private movedAt = Date.now();
  /** `status()` has said `stalled` and logged it; logged again once the checkpoint moves. */
  private stallLogged = false;
  /** Live events are wanted: following, or retrying to (false once stopped, or never started). */
  private live = false;
  /** A rebuild under way, which `stop` abandons (`stopRebuild`) and waits for. */
  private rebuilding?: Promise<number>;
  private stopRebuild?: AbortController;
  private retries = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private lagTimer: NodeJS.Timeout | undefined;
  /** The stored checkpoint when it failed, and the look at whether it has moved since (see `followAgainIfMovedOn`). */
  private failedAt = 0;
  private lookingPastFailure: Promise<void> | undefined;
  private readonly batchSize: number;
  private readonly rebuildWindow: number;
  /** Callers of `whenApplied`, waiting for the checkpoint to reach their position. */
  private waiters: Array<{ position: number; resolve: () => void }> = [];

  constructor(private readonly options: ProjectorOptions) {
    this.batchSize = options.batchSize ?? 1000;
    this.rebuildWindow = options.rebuildWindow ?? REBUILD_WINDOW_CHANGES;
  }

  get name(): string {
    return this.options.projection.name;
  }

  /**
   * Resolves once the live read model includes every event of its store up to `position`;
   * undefined when there is nothing to wait for: it does already, or it is not following live
   * events (stopped, rebuilding, failed) and nothing here would bring it there. The WebSocket
   * stream sends an update only when a read of it would show it.
   */
  whenApplied(position: number): Promise<void> | undefined {
    if (this.checkpoint >= position || this.state !== 'running') return undefined;
    return new Promise((resolve) => this.waiters.push({ position, resolve }));
  }

  private wakeWaiters(): void {
    if (this.waiters.length === 0) return;
    const waiting: typeof this.waiters = [];
    for (const waiter of this.waiters)
      if (this.checkpoint >= waiter.position || this.state !== 'running') waiter.resolve();
      else waiting.push(waiter);
    this.waiters = waiting;
  }

  /** Prepares the tables (rebuilding them first when the projection's version changed) and follows live events. */
  async start(): Promise<void> {
    const { projection, store } = this.options;
    this.state = 'starting';
    this.refreshLagEvery();
    const built = await store.builtVersion(projection.name);
    if (built !== undefined && built !== projection.version) {
      this.options.logger?.info(
        { projection: projection.name, built, version: projection.version },
        'projection changed: rebuilding',
      );
      await this.rebuild();
      this.state = 'starting';
    } else await store.prepare(projection, 'live');
    this.live = true;
    await this.follow();
  }

  private async follow(): Promise<void> {
    const { projection, store, source } = this.options;
    this.checkpoint = await store.checkpoint(projection.name, 'live');
    this.persisted = this.checkpoint;
    this.savedAt = Date.now();
    this.movedAt = Date.now();
    projectionCheckpoint.set({ projection: projection.name }, this.checkpoint);
    // Stopped, or a rebuild took over, while the checkpoint was being read.
    if (!this.live || this.state === 'rebuilding') return;
    this.state = 'running';
    this.subscription = source.subscribeToAll({
      after: this.checkpoint,
      batchSize: this.batchSize,
      pacingMs: this.options.pacingMs,
      onBatch: async (events) => {
        const changes = this.changesOf(events);
        if (changes.length === 0 && Date.now() - this.savedAt < IDLE_CHECKPOINT_EVERY_MS) {
          // Nothing for this read model (a quote, for the trades tape): no transaction, only the
          // position moves on in memory, and reaches the store with the next batch that writes.
          this.checkpoint = events.at(-1)!.position;
          this.movedAt = Date.now();
          projectionCheckpoint.set({ projection: projection.name }, this.checkpoint);
          this.wakeWaiters();
          this.scheduleCheckpointSave();
          return;
        }
        const applied = await this.serially(() => this.apply('live', events, this.persisted, changes));
        if (applied) {
          this.retries = 0;
          this.persisted = events.at(-1)!.position;
          this.savedAt = Date.now();
          this.checkpoint = events.at(-1)!.position;
          this.movedAt = Date.now();
          projectionCheckpoint.set({ projection: projection.name }, this.checkpoint);
          this.wakeWaiters();
        } else {
          // Another instance applied this batch: start again from where it left the checkpoint.
          throw new CheckpointMoved();
        }
      },
      onError: (error) => {
        this.subscription = undefined;
        if (error instanceof CheckpointMoved && this.state === 'running') {
          void this.follow().catch((failure) => this.failOrRetry(failure));
          return;
        }
        this.failOrRetry(error);
      },
    });
  }

  /**
   * After the live follower stopped on `error`: a transient one is retried from the stored
   * checkpoint (what the failed batch wrote rolled back with it, or its rows are guarded by their
   * positions on Mongo; one that committed moved the checkpoint too), anything else fails it.
   */
  private failOrRetry(error: unknown): void {
    if (!this.live || this.state === 'rebuilding' || this.state === 'stopped') return;
    if (!isTransientError(error)) {
      this.fail(error);
      return;
    }
    const base = this.options.retryDelayMs ?? 500;
    const cap = this.options.maxRetryDelayMs ?? 30_000;
    const ceiling = Math.min(cap, base * 2 ** Math.min(this.retries, 20));
    // Jittered, so that projectors (and processes) cut off by one outage do not all come back at once.
    const delay = Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
    this.retries += 1;
    this.state = 'retrying';
    this.lastError = error instanceof Error ? error.message : String(error);
    this.wakeWaiters();
    this.options.logger?.[retryLogLevel(error, this.retries)](
      {
        projection: this.name,
        err: error,
        checkpoint: this.persisted,
        retries: this.retries,
        retryInMs: delay,
      },
      'projection interrupted: following again from the checkpoint',
    );
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this.state !== 'retrying') return;
      this.follow().then(
        () => {
          if (this.state === 'running') {
            this.options.logger?.info(
              { projection: this.name, checkpoint: this.checkpoint, retries: this.retries },
              'projection following again',
            );
            this.lastError = undefined;
          }
        },
        (failure) => this.failOrRetry(failure),
      );
    }, delay);
  }

  private fail(error: unknown): void {
    this.state = 'failed';
    this.failedAt = this.persisted;
    this.wakeWaiters();
    this.lastError = error instanceof Error ? error.message : String(error);
    this.options.logger?.error({ projection: this.name, err: error }, 'projection stopped');
  }

  /**
   * The changes of `events`, appended to `into`. Stamped with their event's position only for a
   * store that reads it (Mongo): a copy of every change costs the SQL stores' rebuilds dearly.
   */
  private changesOf(events: RecordedEvent[], into: Change[] = []): Change[] {
    const { projection, store } = this.options;
    for (const event of events) {
      const changes = projection.project(event);
      if (store.readsPositions)
        for (const change of changes) into.push({ ...change, position: event.position });
      else for (const change of changes) into.push(change);
    }
    return into;
  }

  private async apply(
    target: Target,
    events: RecordedEvent[],
    from: number,
    changes = this.changesOf(events),
  ): Promise<boolean> {
    const { projection, store } = this.options;
    const applied = await store.applyBatch(projection, target, changes, from, events.at(-1)!.position);
    if (applied) projectedEvents.inc({ projection: projection.name, target }, events.length);
    return applied;
  }

  /**
   * Projects the whole history into fresh tables while the live ones keep serving, then swaps
   * them in atomically and follows live events from there. Projections are pure rows: a rebuild
   * emits nothing else.
   *
   * Unlike the live path, a rebuild folds a window of several pages (`rebuildWindow` changes) into
   * one transaction: a row changed many times in the window (a candle, a price level) is written
   * once. Each window is written while the next one is read and projected, in order, each moving
   * the rebuild's checkpoint from where the previous one left it.
   *
   * `signal` abandons it (the CLI on Ctrl-C), as `stop` does: between pages, once the window being
   * written is done, and before the swap, so the live tables stay as they were; it rejects with the
   * signal's reason (`RebuildStopped` for `stop`).
   */
  async rebuild(onProgress?: (progress: RebuildProgress) => void, signal?: AbortSignal): Promise<void> {
    const { projection } = this.options;
    const wasFollowing = this.live;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.state = 'rebuilding';
    this.lastError = undefined;
    this.retries = 0;
    this.wakeWaiters();
    let events: number;
    const stop = new AbortController();
    this.stopRebuild = stop;
    try {
      this.rebuilding = this.rebuildTables(
        onProgress,
        signal ? AbortSignal.any([signal, stop.signal]) : stop.signal,
      );
      events = await this.rebuilding;
    } catch (error) {
      if (stop.signal.aborted) {
        this.progress = undefined;
        this.state = 'stopped';
        this.options.logger?.info({ projection: projection.name }, (error as Error).message);
      } else await this.carryOnAfterFailedRebuild(error, wasFollowing);
      throw error;
    } finally {
      this.rebuilding = undefined;
      this.stopRebuild = undefined;
    }
    this.options.logger?.info({ projection: projection.name, events }, 'projection rebuilt');
    if (wasFollowing && this.live) {
      this.state = 'starting';
      await this.follow();
    } else this.state = 'stopped';
  }

  /**
   * A rebuild that failed (its store, the event store, an event it cannot project) wrote only its
   * fresh tables: the live ones are as they were, so the projector goes back to following them —
   * still following if it had not caught up, or from their checkpoint — and says what failed.
   */
  private async carryOnAfterFailedRebuild(error: unknown, wasFollowing: boolean): Promise<void> {
    const message = `rebuild failed: ${error instanceof Error ? error.message : String(error)}`;
    this.progress = undefined;
    this.options.logger?.error(
      { projection: this.name, err: error },
      'projection rebuild failed: the live read model carries on',
    );
    if (!wasFollowing || !this.live) this.state = 'stopped';
    else if (this.subscription) this.state = 'running';
    else {
      this.state = 'starting';
      await this.follow().catch((failure) => this.failOrRetry(failure));
    }
    this.lastError ??= message;
    this.wakeWaiters();
  }

  /** Projects the whole history into the rebuild tables and swaps them in, under the store's claim; the events projected. */
  private async rebuildTables(
    onProgress?: (progress: RebuildProgress) => void,
    signal?: AbortSignal,
  ): Promise<number> {
    const { projection, store } = this.options;
    signal?.throwIfAborted();
    const release = await store.claimRebuild?.(projection);
    try {
      return await this.rebuildClaimed(onProgress, signal);
    } finally {
      await release?.().catch(() => {});
    }
  }

  /** `rebuildTables` once the store's claim is held. */
  private async rebuildClaimed(
    onProgress?: (progress: RebuildProgress) => void,
    signal?: AbortSignal,
  ): Promise<number> {
    const { projection, store, source } = this.options;
    await store.prepare(projection, 'rebuild');
    const started = performance.now();
    let position = 0;
    let events = 0;
    let head = await source.headPosition();
    const report = () => {
      const seconds = (performance.now() - started) / 1000;
      const rate = seconds > 0 ? position / seconds : 0;
      this.progress = {
        projection: projection.name,
        position,
        head,
        events,
        eventsPerSecond: seconds > 0 ? events / seconds : 0,
        etaSeconds: rate > 0 ? Math.max(0, (head - position) / rate) : undefined,
      };
      onProgress?.(this.progress);
    };
    report();
    // Progress is what has been read and projected, page by page: a window is written as one, and
    // reporting only then left a small history at 0% until its end.
    const projected = (to: number, pageEvents: number) => {
      position = to;
      events += pageEvents;
      head = Math.max(head, to);
      report();
    };
    let read = 0;
    let writing: Promise<void> | undefined;
    try {
      for (;;) {
        let window = await this.readRebuildWindow(read, projected, signal);
        if (window.events === 0) {
          await writing;
          // Caught up: stop the live follower so nothing moves while the tables swap.
          if (this.subscription) {
            await this.subscription.stop();
            this.subscription = undefined;
          }
          window = await this.readRebuildWindow(read, projected, signal);
          if (window.events === 0) break;
        }
        const from = read;
        read = window.to;
        await writing;
        writing = this.applyRebuildWindow(window, from);
        // Awaited before the next window is written; this only keeps a failure meanwhile from
        // counting as unhandled.
        writing.catch(() => {});
      }
    } catch (error) {
      // Not before the window being written is done: whoever stops next closes the store.
      await writing?.catch(() => {});
      throw error;
    }
    signal?.throwIfAborted();
    await store.promoteRebuild(projection);
    report();
    this.progress = undefined;
    return events;
  }

  /**
   * Reads and projects pages after `after` until they give `rebuildWindow` changes or the history
   * ends. A store that guards each document by position instead of a transaction (`readsPositions`,
   * Mongo) merges nothing across a window and shares no commit within one, so its windows are one
   * page each (a Mongo window of 20,000 changes, written as one, held a rebuild for minutes). Each
   * page read and projected is reported to `onPage`.
   */
  private async readRebuildWindow(
    after: number,
    onPage: (to: number, events: number) => void,
    signal?: AbortSignal,
  ): Promise<RebuildWindow> {
    const { projection, store, source } = this.options;
    // A store that plans batches takes each page's changes as they come (see `OpenBatch`).
    const batch = store.openBatch?.(projection, 'rebuild');
    const window: RebuildWindow = { batch, changes: [], size: 0, events: 0, to: after };
    const pages = store.readsPositions ? 1 : Number.POSITIVE_INFINITY;
    for (let read = 0; read < pages && window.size < this.rebuildWindow; read++) {
      const page = await source.readAll({ after: window.to, limit: this.batchSize });
      if (page.length === 0) break;
      if (batch) {
        const changes = this.changesOf(page);
        batch.add(changes);
        window.size += changes.length;
      } else window.size = this.changesOf(page, window.changes).length;
      window.events += page.length;
      window.to = page.at(-1)!.position;
      onPage(window.to, page.length);
      signal?.throwIfAborted();
      // Between pages, the statements the store queued for the previous window go out.
      await new Promise((resolve) => setImmediate(resolve));
    }
    return window;
  }

  private async applyRebuildWindow(window: RebuildWindow, from: number): Promise<void> {
    const { projection, store } = this.options;
    const applied = window.batch
      ? await window.batch.apply(from, window.to)
      : await store.applyBatch(projection, 'rebuild', window.changes, from, window.to);
    if (!applied) throw new Error(`projection ${this.name}: another rebuild is running`);
    projectedEvents.inc({ projection: projection.name, target: 'rebuild' }, window.events);
  }

  /** Stops following; a rebuild under way is abandoned (its fresh tables are never promoted) and waited for. */
  async stop(): Promise<void> {
    this.live = false;
    this.stopRebuild?.abort(new RebuildStopped(this.name));
    await this.rebuilding?.catch(() => undefined);
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    clearInterval(this.lagTimer);
    this.lagTimer = undefined;
    const subscription = this.subscription;
    this.subscription = undefined;
    await subscription?.stop();
    clearTimeout(this.saveTimer);
    this.saveTimer = undefined;
    await this.saveCheckpoint();
    this.state = 'stopped';
    this.wakeWaiters();
  }

  /** Store writes one at a time: a batch and a checkpoint save must not race on the compare-and-set. */
  private serially<T>(work: () => Promise<T>): Promise<T> {
    const run = this.writing.then(work);
    this.writing = run.catch(() => undefined);
    return run;
  }

  private scheduleCheckpointSave(): void {
    this.saveTimer ??= setTimeout(() => {
      this.saveTimer = undefined;
      void this.saveCheckpoint();
    }, IDLE_CHECKPOINT_EVERY_MS);
  }

  /** Brings the stored checkpoint up to the position applied in memory, past batches that wrote nothing. */
  private saveCheckpoint(): Promise<void> {
    return this.serially(async () => {
      const to = this.checkpoint;
      if (this.state !== 'running' || this.persisted >= to) return;
      const { projection, store } = this.options;
      try {
        if (await store.applyBatch(projection, 'live', [], this.persisted, to)) {
          this.persisted = to;
          this.savedAt = Date.now();
        }
        // Otherwise another instance moved it: the next batch finds out and follows from there.
      } catch (error) {
        this.options.logger?.error({ projection: this.name, err: error }, 'projection checkpoint not saved');
      }
    });
  }

  async status(): Promise<ProjectorStatus> {
    const head = await this.options.source.headPosition();
    // While retrying the store may be the very thing that is down: the position reached is in memory.
    // Otherwise the stored one, unless the store does not answer in time: a status must not hang
    // with one store (nor fail, leaving the other read models unreported).
    let unanswered: string | undefined;
    const checkpoint =
      this.state === 'running' || this.state === 'retrying'
        ? this.checkpoint
        : await withTimeout(this.options.store.checkpoint(this.name, 'live'), STATUS_READ_MS).catch(
            (error: unknown) => {
              unanswered = `its store did not answer for its checkpoint: ${error instanceof Error ? error.message : String(error)}`;
              return this.checkpoint;
            },
          );
    const lag = Math.max(0, head - checkpoint);
    projectionLagEvents.set({ projection: this.name }, lag);
    projectionLagSeconds.set({ projection: this.name }, lag > 0 ? await this.waitedSeconds(checkpoint) : 0);
    // Caught up counts as progress: the clock starts when it is seen behind (within `lagRefreshMs`).
    if (lag === 0) this.movedAt = Date.now();
    const stillFor = Date.now() - this.movedAt;
    const stalled =
      this.state === 'running' && lag > 0 && stillFor >= (this.options.stallAfterMs ?? STALL_AFTER_MS);
    if (stalled !== this.stallLogged) {
      this.stallLogged = stalled;
      if (stalled)
        this.options.logger?.error(
          { projection: this.name, checkpoint, head, stalledSeconds: Math.floor(stillFor / 1000) },
          'projection stalled: its checkpoint has not moved while events wait',
        );
      else this.options.logger?.info({ projection: this.name, checkpoint, head }, 'projection moving again');
    }
    return {
      projection: this.name,
      store: this.options.store.kind,
      state: stalled ? 'stalled' : this.state,
      checkpoint,
      head,
      lagPositions: lag,
      ...(stalled ? { stalledSeconds: Math.floor(stillFor / 1000) } : {}),
      rebuild: this.progress,
      error: this.lastError ?? unanswered,
      ...(this.state === 'retrying' ? { retries: this.retries } : {}),
    };
  }

  /**
   * How long the oldest event not yet applied (the first after `checkpoint`) has waited: the lag in
   * time. Not the age of the last one applied, which after a quiet hour reads as an hour behind.
   */
  private async waitedSeconds(checkpoint: number): Promise<number> {
    const read = this.options.source.readAll({ after: checkpoint, limit: 1 });
    const [oldest] = await withTimeout(read, STATUS_READ_MS).catch(() => []);
    return oldest ? Math.max(0, Date.now() - oldest.recordedAt.getTime()) / 1000 : 0;
  }

  /**
   * A failed projector looks at its stored checkpoint on the lag timer: once another process has
   * moved it past where this one failed — a rebuild there (`tradecore projections rebuild`) swapped
   * in tables built past the event, or another instance applied it — the failure is behind it, and
   * it follows again from there. Not onto tables another version of the projection built (a newer
   * CLI's rebuild): that takes a restart with that version. A store it cannot read leaves it failed.
   */
  private followAgainIfMovedOn(): void {
    if (this.lookingPastFailure) return;
    const { projection, store } = this.options;
    this.lookingPastFailure = (async () => {
      const [stored, built] = await Promise.all([
        store.checkpoint(projection.name, 'live'),
        store.builtVersion(projection.name),
      ]);
      if (this.state !== 'failed' || !this.live || stored <= this.failedAt || built !== projection.version)
        return;
      this.options.logger?.info(
        { projection: projection.name, failedAt: this.failedAt, checkpoint: stored },
        'projection moved past its failure by another process: following again',
      );
      this.state = 'starting';
      this.lastError = undefined;
      await this.follow().catch((failure) => this.failOrRetry(failure));
    })()
      .catch(() => {})
      .finally(() => {
        this.lookingPastFailure = undefined;
      });
  }

  /**
   * Keeps the lag gauges true while nothing is applied — a stalled or retrying projector is the
   * one whose lag matters — by reading the event store's head on a timer of its own.
   */
  private refreshLagEvery(): void {
    if (this.lagTimer) return;
    this.lagTimer = setInterval(() => {
      if (this.state === 'stopped') return;
      if (this.state === 'failed') this.followAgainIfMovedOn();
      void this.status().catch(() => {});
    }, this.options.lagRefreshMs ?? 5_000);
    this.lagTimer.unref();
  }
}

class CheckpointMoved extends Error {
  override readonly name = 'CheckpointMoved';
}
