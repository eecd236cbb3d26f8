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
  timing: { idlePollMs?: number; heldBackPollMs?: number } = {},
): Subscription {
  const controller = new AbortController();
  const batchSize = options.batchSize ?? 500;
  const idlePollMs = timing.idlePollMs ?? 1000;
  const heldBackPollMs = timing.heldBackPollMs ?? 5;

  const run = async () => {
    let after = options.after;
    let caughtUp = false;
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
      await wakeSource.wait(generation, batch.heldBack ? heldBackPollMs : idlePollMs, controller.signal);
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
