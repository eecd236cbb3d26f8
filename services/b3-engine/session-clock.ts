/**
 * The session clock: what makes time pass for the order books. It runs `EndOfDay` on every book at
 * the session close (DAY orders expire), and `ExpireOrders` on a book when its earliest GTD expiry
 * comes (one timer per book, re-armed as orders come and go), so nothing waits for another order on
 * the symbol. A timer that has nothing to expire appends nothing.
 *
 * Time comes in through `now` and `Timers`, so tests run a session close without waiting for it.
 * The clock decides nothing itself: the engine's books do, and the engine's dedupe and expected
 * versions make a repeat (a second engine instance's clock, a retry) harmless. See
 * docs/order-flow.md, "The session clock".
 */
import { defaultCatalogue } from '../../domain/broker/instrument/catalogue.ts';
import type { Config } from '../shared/config.ts';
import type { ServiceLogger } from '../shared/service-logger.ts';

/** B3's time zone: sessions open and close by the clock in São Paulo. */
export const B3_TIME_ZONE = 'America/Sao_Paulo';

export interface SessionSchedule {
  /** The close, wall-clock time in `timeZone`. */
  close: { hour: number; minute: number };
  timeZone: string;
}

/** The timers the clock arms: the runtime's by default, a fake one in tests. */
export interface Timers {
  setTimeout(callback: () => void, delayMs: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemTimers: Timers = {
  setTimeout: (callback, delayMs) => {
    const timer = setTimeout(callback, delayMs);
    // A pending session close is no reason to keep a process alive that everything else has left.
    timer.unref();
    return timer;
  },
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** What the clock drives: the engine's books. */
export interface SessionBooks {
  /** Every book that may hold orders, loaded or not. */
  symbols(): Promise<string[]>;
  /** Ends the session that closed at `closedAt` on one book: false when it had nothing to end. */
  endSession(symbol: string, closedAt: number): Promise<boolean>;
  /** Expires a book's GTD orders due at or before now; `dueAt` is the expiry that armed the timer. */
  expireOrders(symbol: string, dueAt: number): Promise<void>;
}

export interface SessionClockOptions {
  books: SessionBooks;
  schedule: SessionSchedule;
  /** Epoch milliseconds: the engine's own `now`, so the close and the books agree on the time. */
  now: () => number;
  timers?: Timers;
  /** Wait before trying a failed session command again (default 1 s). */
  retryMs?: number;
  logger: ServiceLogger;
}

/** A test's clock: the time and the timers the engine and its session clock use instead of the runtime's. */
export interface Clock {
  now: () => number;
  timers: Timers;
}

/**
 * The engine's `sessionClock` option as the config sets it: the close (B3_SESSION_CLOSE) in São
 * Paulo time; the default catalogue (and its fractional twins) probed for books on a first start.
 */
export function sessionClockSettings(config: Pick<Config, 'sessionClose'>, clock?: Clock) {
  return {
    schedule: { close: config.sessionClose, timeZone: B3_TIME_ZONE },
    timers: clock?.timers,
    seedSymbols: defaultCatalogue.flatMap((spec) =>
      spec.fractional ? [spec.symbol, `${spec.symbol}F`] : [spec.symbol],
    ),
  };
}

/** setTimeout's longest delay is about 24.8 days; a farther expiry re-arms when this one fires. */
const MAX_DELAY_MS = 2 ** 31 - 1;
/** Attempts at ending one book's session before giving up until the engine restarts. */
const CLOSE_ATTEMPTS = 5;

export class SessionClock {
  private readonly timers: Timers;
  private readonly retryMs: number;
  /** Per symbol, the GTD expiry its timer is armed for. */
  private readonly expiries = new Map<string, { dueAt: number; handle: unknown }>();
  private closeTimer: { closesAt: number; handle: unknown } | undefined;
  /** Session commands in flight, awaited on stop. */
  private readonly running = new Set<Promise<void>>();
  /** Pauses before a retry: stop cuts them short. */
  private readonly pauses = new Map<unknown, () => void>();
  private stopped = true;

  constructor(private readonly options: SessionClockOptions) {
    this.timers = options.timers ?? systemTimers;
    this.retryMs = options.retryMs ?? 1_000;
  }

  /**
   * Ends the last session on every book that has not (the engine was down at the close, or this is
   * its first start), then arms the next close. Books that load arm their own GTD timers (`watch`).
   */
  async start(): Promise<void> {
    if (!this.stopped) return;
    this.stopped = false;
    const lastClose = closeAtOrBefore(this.options.now(), this.options.schedule);
    await this.track(this.endSessionEverywhere(lastClose, 'caught up with the last session close'));
    this.armClose();
  }

  /** Clears every timer and waits for the session commands already running. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.closeTimer) this.timers.clearTimeout(this.closeTimer.handle);
    this.closeTimer = undefined;
    for (const { handle } of this.expiries.values()) this.timers.clearTimeout(handle);
    this.expiries.clear();
    for (const [handle, wake] of this.pauses) {
      this.timers.clearTimeout(handle);
      wake();
    }
    this.pauses.clear();
    await Promise.allSettled([...this.running]);
  }

  /** The next close the clock is armed for (diagnostics and tests). */
  get nextClose(): number | undefined {
    return this.closeTimer?.closesAt;
  }

  /** The GTD expiry a book's timer is armed for (diagnostics and tests). */
  armedExpiry(symbol: string): number | undefined {
    return this.expiries.get(symbol)?.dueAt;
  }

  /**
   * A book's earliest pending GTD expiry, as it stands after a command or a recovery: arms (or
   * moves, or clears) the book's timer. The same expiry again keeps the timer it has.
   */
  watch(symbol: string, dueAt: number | undefined): void {
    if (this.stopped) return;
    const armed = this.expiries.get(symbol);
    if (armed?.dueAt === dueAt) return;
    if (armed) this.timers.clearTimeout(armed.handle);
    this.expiries.delete(symbol);
    if (dueAt !== undefined) this.armExpiry(symbol, dueAt, dueAt - this.options.now());
  }

  private armExpiry(symbol: string, dueAt: number, delayMs: number): void {
    const handle = this.after(delayMs, () => this.track(this.expire(symbol, dueAt)));
    this.expiries.set(symbol, { dueAt, handle });
  }

  private async expire(symbol: string, dueAt: number): Promise<void> {
    this.expiries.delete(symbol);
    if (this.stopped) return;
    const early = dueAt - this.options.now();
    // A clamped delay, or a timer a millisecond early: the book would expire nothing yet.
    if (early > 0) return this.armExpiry(symbol, dueAt, early);
    try {
      // On success the engine reports the book's next expiry through `watch`.
      await this.options.books.expireOrders(symbol, dueAt);
    } catch (error) {
      this.options.logger.warn({ err: error, symbol }, 'expiring GTD orders failed, trying again');
      if (!this.stopped && !this.expiries.has(symbol)) this.armExpiry(symbol, dueAt, this.retryMs);
    }
  }

  private armClose(): void {
    if (this.stopped) return;
    const now = this.options.now();
    const closesAt = closeAfter(now, this.options.schedule);
    this.armCloseAt(closesAt, closesAt - now);
  }

  private armCloseAt(closesAt: number, delayMs: number): void {
    const handle = this.after(delayMs, () => this.track(this.close(closesAt)));
    this.closeTimer = { closesAt, handle };
    this.options.logger.info({ closesAt: new Date(closesAt).toISOString() }, 'next session close armed');
  }

  private async close(closesAt: number): Promise<void> {
    this.closeTimer = undefined;
    if (this.stopped) return;
    const early = closesAt - this.options.now();
    if (early > 0) return this.armCloseAt(closesAt, early);
    await this.endSessionEverywhere(closesAt, 'session close');
    this.armClose();
  }

  /** `EndOfDay` for the close at `closedAt` on every book, side by side; each book retries on its own. */
  private async endSessionEverywhere(closedAt: number, why: string): Promise<void> {
    let symbols: string[];
    try {
      symbols = await this.options.books.symbols();
    } catch (error) {
      this.options.logger.error({ err: error }, 'cannot list the books to end the session on');
      return;
    }
    const results = await Promise.all(symbols.map((symbol) => this.endSession(symbol, closedAt)));
    const ended = results.filter((result) => result === 'ended').length;
    const failed = results.filter((result) => result === 'failed').length;
    // At start, the close has usually been taken already: say so rather than "ended" on every book.
    const message =
      ended === 0 && failed === 0 && why !== 'session close'
        ? 'the last session close had been taken on every book already'
        : why;
    this.options.logger.info(
      { closedAt: new Date(closedAt).toISOString(), books: symbols.length, ended, failed },
      message,
    );
  }

  private async endSession(symbol: string, closedAt: number): Promise<'ended' | 'nothing' | 'failed'> {
    for (let attempt = 1; ; attempt++) {
      try {
        return (await this.options.books.endSession(symbol, closedAt)) ? 'ended' : 'nothing';
      } catch (error) {
        if (this.stopped || attempt >= CLOSE_ATTEMPTS) {
          this.options.logger.error({ err: error, symbol, attempt }, 'ending the session failed');
          return 'failed';
        }
        this.options.logger.warn({ err: error, symbol, attempt }, 'ending the session failed, trying again');
        await this.pause();
      }
    }
  }

  private pause(): Promise<void> {
    return new Promise((resolve) => {
      const handle = this.timers.setTimeout(() => {
        this.pauses.delete(handle);
        resolve();
      }, this.retryMs);
      this.pauses.set(handle, resolve);
    });
  }

  private after(delayMs: number, callback: () => void): unknown {
    return this.timers.setTimeout(callback, Math.min(Math.max(delayMs, 0), MAX_DELAY_MS));
  }

  private track(work: Promise<void>): Promise<void> {
    this.running.add(work);
    void work.finally(() => this.running.delete(work));
    return work;
  }
}

/** The latest session close at or before `now`. */
export function closeAtOrBefore(now: number, schedule: SessionSchedule): number {
  const today = zonedDate(now, schedule.timeZone);
  const close = closeOn(today, schedule);
  return close <= now ? close : closeOn({ ...today, day: today.day - 1 }, schedule);
}

/** The first session close after `now`. */
export function closeAfter(now: number, schedule: SessionSchedule): number {
  const today = zonedDate(now, schedule.timeZone);
  const close = closeOn(today, schedule);
  return close > now ? close : closeOn({ ...today, day: today.day + 1 }, schedule);
}

interface CalendarDate {
  year: number;
  month: number;
  day: number;
}

/** The instant of the close on a calendar day (the day may overflow: Date.UTC carries it). */
function closeOn(date: CalendarDate, { close, timeZone }: SessionSchedule): number {
  const wallClock = Date.UTC(date.year, date.month - 1, date.day, close.hour, close.minute);
  // The zone's offset at the wall-clock time read as UTC is near the answer; a second pass settles
  // a daylight-saving change between the two (São Paulo had them until 2019).
  const guess = wallClock - offsetAt(wallClock, timeZone);
  return wallClock - offsetAt(guess, timeZone);
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function zonedParts(instant: number, timeZone: string): Record<string, number> {
  let format = formatters.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(timeZone, format);
  }
  const parts: Record<string, number> = {};
  for (const part of format.formatToParts(instant))
    if (part.type !== 'literal') parts[part.type] = Number(part.value);
  return parts;
}

function zonedDate(instant: number, timeZone: string): CalendarDate {
  const { year, month, day } = zonedParts(instant, timeZone);
  return { year: year!, month: month!, day: day! };
}

/** How far the zone's wall clock is ahead of UTC at an instant, in milliseconds. */
function offsetAt(instant: number, timeZone: string): number {
  const { year, month, day, hour, minute, second } = zonedParts(instant, timeZone);
  const wallClock = Date.UTC(year!, month! - 1, day!, hour!, minute!, second!);
  // The wall clock is read to the second: compare it with the instant cut to the second too.
  return wallClock - Math.floor(instant / 1000) * 1000;
}
