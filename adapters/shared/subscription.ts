import { setTimeout as delay } from 'node:timers/promises';
import type { RecordedEvent, SubscribeOptions, Subscription } from '../../domain/shared/event-store.ts';

/** Something that says "new events may be there" (LISTEN/NOTIFY, an in-memory append). */
export interface WakeSource {
  /** Bumped on every wake-up; a reader compares it before and after a read so no wake-up is missed. */
  readonly generation: number;
  /** Resolves at the next wake-up after `generation`, or after `timeoutMs`. */
  wait(generation: number, timeoutMs: number, signal: AbortSignal): Promise<void>;
}

export class Waker implements WakeSource {
  generation = 0;
  private waiters = new Set<() => void>();

  wake(): void {
    this.generation += 1;
    const waiters = this.waiters;
    this.waiters = new Set();
    for (const resolve of waiters) resolve();
  }

  wait(generation: number, timeoutMs: number, signal: AbortSignal): Promise<void> {
    if (generation !== this.generation || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      signal.addEventListener('abort', done, { once: true });
      this.waiters.add(done);
    });
  }
}

export interface BatchRead {
  events: RecordedEvent[];
  /** True when a still-open older transaction kept the reader from going further. */
  heldBack: boolean;
}

/**
 * Catch up by reading batches, then follow live appends: woken by the store's notifications,
 * with a slow poll as a safety net and a fast one while an open transaction holds readers back.
 */
export function followAll(
  readBatch: (after: number, limit: number) => Promise<BatchRead>,
  wakeSource: WakeSource,
  options: SubscribeOptions,
  timing: { idlePollMs?: number; heldBackPollMs?: number; heldBackMaxPollMs?: number } = {},
): Subscription {
  const controller = new AbortController();
  const batchSize = options.batchSize ?? 500;
  const idlePollMs = timing.idlePollMs ?? 1000;
  const heldBackPollMs = timing.heldBackPollMs ?? 5;
  const heldBackMaxPollMs = timing.heldBackMaxPollMs ?? 40;

  const run = async () => {
    let after = options.after;
    let caughtUp = false;
    // Held back with nothing new: poll less and less often. A commit of this process, or a
    // NOTIFY from another, wakes the reader at once whatever the interval; the poll is for
    // transactions that tell no one (a read model's, a long one elsewhere on the server).
    let heldBackWaitMs = heldBackPollMs;
    while (!controller.signal.aborted) {
      const generation = wakeSource.generation;
      const batch = await readBatch(after, batchSize);
      if (options.onBatch) {
        if (batch.events.length > 0) await options.onBatch(batch.events);
        after = batch.events.at(-1)?.position ?? after;
      } else {
        for (const event of batch.events) {
          if (controller.signal.aborted) return;
          await options.onEvent?.(event);
          after = event.position;
        }
      }
      if (batch.events.length === batchSize) continue;
      if (!caughtUp && !batch.heldBack) {
        caughtUp = true;
        options.onCaughtUp?.();
      }
      // Let the next events gather: one larger batch later instead of several small ones now.
      if (options.pacingMs && batch.events.length > 0)
        await delay(options.pacingMs, undefined, { signal: controller.signal }).catch(() => {});
      heldBackWaitMs =
        batch.heldBack && batch.events.length === 0
          ? Math.min(heldBackWaitMs * 2, heldBackMaxPollMs)
          : heldBackPollMs;
      await wakeSource.wait(generation, batch.heldBack ? heldBackWaitMs : idlePollMs, controller.signal);
    }
  };

  const done = run().catch((error) => {
    controller.abort();
    options.onError?.(error);
  });
  return {
    done,
    async stop() {
      controller.abort();
      await done;
    },
  };
}

/**
 * One reader of a store's newest events for all its live subscribers. Without it every subscriber
 * reads the store after every append (the order process, each projector, each relay): one query
 * per subscriber per append, which in the embedded mode is most of the CPU an order costs. The
 * tail reads each new event once, by the same rule as any reader (only settled events, in position
 * order), keeps the latest `capacity` of them, and wakes the subscribers, which take what they
 * need from memory. A subscriber outside the window — catching up from an old checkpoint, or for a
 * moment ahead of the tail — reads the store itself, as before.
 */
export class LiveTail {
  /** Wakes subscribers when the tail has read further. */
  readonly advanced = new Waker();
  /** Settled events in (from, head], in position order. */
  private events: RecordedEvent[] = [];
  private from = Number.POSITIVE_INFINITY;
  private head = Number.NEGATIVE_INFINITY;
  private heldBack = false;
  private subscription: Subscription | undefined;
  /** Fed by the writer: events offered before the head was known, kept once it is if above it. */
  private early: RecordedEvent[] | undefined;

  constructor(
    private readonly readBatch: (after: number, limit: number) => Promise<BatchRead>,
    private readonly headPosition: () => Promise<number>,
    private readonly wakeSource: WakeSource,
    private readonly options: {
      capacity?: number;
      onError?: (error: unknown) => void;
      /**
       * The store's only writer hands the tail every event it commits (`offer`), in position
       * order: the tail then never reads the store, beyond its head when it starts.
       */
      fedByWriter?: boolean;
    } = {},
  ) {}

  /** Starts reading after the store's current head; idempotent. */
  start(): void {
    if (this.subscription) return;
    if (this.options.fedByWriter) {
      this.startFed();
      return;
    }
    const controller = new AbortController();
    const { signal } = controller;
    const run = async () => {
      while (!signal.aborted) {
        let failure: unknown;
        try {
          const start = await this.headPosition();
          if (signal.aborted) return;
          this.events = [];
          this.from = start;
          this.head = start;
          // The same reading loop as any subscriber's, with the batches kept for the others.
          const following = followAll(
            async (after, limit) => {
              const batch = await this.readBatch(after, limit);
              this.heldBack = batch.heldBack;
              return batch;
            },
            this.wakeSource,
            {
              after: start,
              batchSize: 1_000,
              onBatch: (events) => this.keep(events),
              onError: (error) => {
                failure = error;
              },
            },
          );
          signal.addEventListener('abort', () => void following.stop(), { once: true });
          await following.done;
          if (failure === undefined) return;
        } catch (error) {
          failure = error;
        }
        // Until the tail reads again, every subscriber reads the store itself (and meets the error too).
        this.from = Number.POSITIVE_INFINITY;
        this.events = [];
        this.advanced.wake();
        this.options.onError?.(failure);
        await delay(500, undefined, { signal }).catch(() => {});
      }
    };
    const done = run();
    this.subscription = {
      done,
      stop: async () => {
        controller.abort();
        await done;
      },
    };
  }

  private startFed(): void {
    this.early = [];
    const done = this.headPosition().then(
      (start) => {
        const early = (this.early ?? []).filter((event) => event.position > start);
        this.early = undefined;
        this.events = [];
        this.from = start;
        this.head = start;
        if (early.length > 0) this.keep(early);
        else this.advanced.wake();
      },
      (error: unknown) => {
        this.early = undefined;
        this.options.onError?.(error);
      },
    );
    this.subscription = { done, stop: () => done };
  }

  /** Events the store's only writer has just committed, in position order (`fedByWriter`). */
  offer(events: RecordedEvent[]): void {
    if (!this.options.fedByWriter || events.length === 0) return;
    if (this.early) {
      this.early.push(...events);
      return;
    }
    if (this.from === Number.POSITIVE_INFINITY) return; // not started: subscribers read the store
    const fresh = events.filter((event) => event.position > this.head);
    if (fresh.length > 0) this.keep(fresh);
  }

  private keep(events: RecordedEvent[]): void {
    const capacity = this.options.capacity ?? 10_000;
    this.events.push(...events);
    this.head = events.at(-1)!.position;
    if (this.events.length > capacity) {
      const dropped = this.events.splice(0, this.events.length - capacity);
      this.from = dropped.at(-1)!.position;
    }
    this.advanced.wake();
  }

  /**
   * The events after `after` from memory, or undefined when `after` is outside the window the tail
   * holds (the caller reads the store).
   */
  read(after: number, limit: number): BatchRead | undefined {
    if (after < this.from || after > this.head) return undefined;
    const events = this.events;
    let low = 0;
    let high = events.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (events[middle]!.position <= after) low = middle + 1;
      else high = middle;
    }
    const slice = events.slice(low, low + limit);
    return { events: slice, heldBack: slice.length < limit && this.heldBack };
  }

  async stop(): Promise<void> {
    await this.subscription?.stop();
    this.subscription = undefined;
  }
}
