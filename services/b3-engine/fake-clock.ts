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
