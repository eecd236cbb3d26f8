import type { Clock, Timers } from './session-clock.ts';

/**
 * A clock for tests: time stands still until `advanceTo`, which fires the timers due on the way,
 * in order, letting each one's work settle before the next. No test waits for a real close.
 */
export class FakeClock implements Clock, Timers {
  private time: number;
  private nextId = 0;
  private readonly pending = new Map<number, { at: number; callback: () => void }>();
  readonly timers: Timers = this;

  constructor(start: number) {
    this.time = start;
  }

  now = (): number => this.time;

  setTimeout(callback: () => void, delayMs: number): unknown {
    const id = ++this.nextId;
    this.pending.set(id, { at: this.time + Math.max(delayMs, 0), callback });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.pending.delete(handle as number);
  }

  /** How many timers are armed. */
  get armed(): number {
    return this.pending.size;
  }

  async advanceTo(instant: number): Promise<void> {
    for (;;) {
      await settle();
      const due = [...this.pending.entries()]
        .filter(([, timer]) => timer.at <= instant)
        .sort(([a, x], [b, y]) => x.at - y.at || a - b)[0];
      if (!due) break;
      const [id, timer] = due;
      this.pending.delete(id);
      this.time = Math.max(this.time, timer.at);
      timer.callback();
    }
    this.time = Math.max(this.time, instant);
    await settle();
  }

  advanceBy(ms: number): Promise<void> {
    return this.advanceTo(this.time + ms);
  }
}

/** Lets promise chains (in-memory stores, lanes) run to completion. */
async function settle(): Promise<void> {
  for (let turn = 0; turn < 20; turn++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/**
 * Real time, except that a test can jump it forward: the timers armed on it fire when the jumped
 * clock reaches them. For a whole running stack, where time must flow but a session close should
 * not be hours away.
 */
export class JumpingClock implements Clock {
  private offset = 0;
  private nextId = 0;
  private readonly pending = new Map<
    number,
    { dueAt: number; callback: () => void; handle: NodeJS.Timeout }
  >();

  now = (): number => Date.now() + this.offset;

  readonly timers: Timers = {
    setTimeout: (callback, delayMs) => {
      const id = ++this.nextId;
      this.arm(id, this.now() + Math.max(delayMs, 0), callback);
      return id;
    },
    clearTimeout: (handle) => {
      const timer = this.pending.get(handle as number);
      if (timer) clearTimeout(timer.handle);
      this.pending.delete(handle as number);
    },
  };

  /** Moves the clock forward to `instant`; timers due by then fire at once. */
  jumpTo(instant: number): void {
    this.offset += Math.max(instant - this.now(), 0);
    for (const [id, timer] of this.pending) {
      clearTimeout(timer.handle);
      this.arm(id, timer.dueAt, timer.callback);
    }
  }

  private arm(id: number, dueAt: number, callback: () => void): void {
    const handle = setTimeout(
      () => {
        this.pending.delete(id);
        callback();
      },
      Math.min(Math.max(dueAt - this.now(), 0), 2 ** 31 - 1),
    );
    handle.unref();
    this.pending.set(id, { dueAt, callback, handle });
  }
}
