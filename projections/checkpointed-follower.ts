import type { EventStore, RecordedEvent, Subscription } from '../domain/shared/event-store.ts';
import type { RelayCheckpoints } from './relay.ts';
import { retryLogLevel } from './transient.ts';

/**
 * Follows an event store from a durable checkpoint: loads it, subscribes to every event after
 * it and hands each batch to its owner, which asks for the checkpoint once the batch is done
 * with. A failed batch, or a subscription that dies, sends it back to the saved checkpoint after
 * a delay that doubles at each failure up to a cap and starts over once a batch goes through:
 * what the failed batch did is done again, so handlers are idempotent (at least once, never lost).
 *
 * The relay and the market data's reference prices follow their stores this way. One follower
 * per checkpoint name: two would both handle every event.
 */

export type FollowerState = 'stopped' | 'running' | 'retrying';

/** Where a follower is: what a status page or a readiness check shows. */
export interface FollowerProgress {
  state: FollowerState;
  /** The position of the last event handled; ahead of `checkpoint` while a batch leaves its checkpoint for later. */
  position: number;
  /** The position last saved, or loaded when following (again). */
  checkpoint: number;
  /** Failures since the follower was made. */
  failures: number;
  /** The last failure's message. */
  error?: string;
}

export interface CheckpointedFollowerOptions {
  /** Names the checkpoint. */
  name: string;
  source: EventStore;
  checkpoints: RelayCheckpoints;
  /**
   * Handles one batch (in order, at most `batchSize` events). Calling `checkpoint` says the batch
   * is handled and saves the position past it; a handler that does not leaves the batch to a later
   * checkpoint (a crash reads it again). Rejecting sends the follower back to its checkpoint.
   */
  handle: (events: RecordedEvent[], checkpoint: () => Promise<void>) => Promise<void>;
  /** Events per batch (default 500). */
  batchSize?: number;
  /** First delay before following again after a failure, doubled up to `maxRetryDelayMs` (defaults 500 and 30,000). */
  retryDelayMs?: number;
  maxRetryDelayMs?: number;
  /** Called with the checkpoint each time it is loaded or saved (a gauge). */
  onCheckpoint?: (position: number) => void;
  /** Called at each failure, before the retry is logged (a counter). */
  onFailure?: (error: unknown) => void;
  logger?: {
    warn: (details: object, message: string) => void;
    error: (details: object, message: string) => void;
  };
  /** What the log says at each failure. */
  retryMessage: string;
  /** Added to the failure's log details (the relay's name, say). */
  logDetails?: object;
}

export class CheckpointedFollower {
  private subscription?: Subscription;
  private state: FollowerState = 'stopped';
  private position = 0;
  private checkpoint = 0;
  private failures = 0;
  private lastError?: string;
  private retryTimer?: NodeJS.Timeout;
  private nextRetryDelayMs: number;
  private readonly retryDelayMs: number;
  private readonly maxRetryDelayMs: number;

  constructor(private readonly options: CheckpointedFollowerOptions) {
    this.retryDelayMs = options.retryDelayMs ?? 500;
    this.maxRetryDelayMs = options.maxRetryDelayMs ?? 30_000;
    this.nextRetryDelayMs = this.retryDelayMs;
  }

  progress(): FollowerProgress {
    return {
      state: this.state,
      position: this.position,
      checkpoint: this.checkpoint,
      failures: this.failures,
      error: this.lastError,
    };
  }

  /** Loads the checkpoint and follows the store from there; resolves once following. */
  async start(): Promise<void> {
    if (this.state !== 'stopped') return;
    this.state = 'running';
    await this.follow();
  }

  private async follow(): Promise<void> {
    const { name, source, checkpoints } = this.options;
    this.checkpoint = await checkpoints.load(name);
    this.position = this.checkpoint;
    this.options.onCheckpoint?.(this.checkpoint);
    if (this.state === 'stopped') return;
    this.subscription = source.subscribeToAll({
      after: this.checkpoint,
      batchSize: this.options.batchSize ?? 500,
      onBatch: (events) => this.handle(events),
      onError: (error) => this.retryAfter(error),
    });
  }

  private async handle(events: RecordedEvent[]): Promise<void> {
    const position = events.at(-1)!.position;
    await this.options.handle(events, async () => {
      this.position = position;
      await this.save(position);
      this.wentThrough();
    });
    this.position = position;
    this.wentThrough();
  }

  private async save(position: number): Promise<void> {
    await this.options.checkpoints.save(this.options.name, position);
    this.checkpoint = position;
    this.options.onCheckpoint?.(position);
  }

  /** A batch went through: the next failure waits the first delay again. */
  private wentThrough(): void {
    this.nextRetryDelayMs = this.retryDelayMs;
    if (this.state === 'retrying') this.state = 'running';
  }

  private retryAfter(error: unknown): void {
    if (this.state === 'stopped') return;
    this.subscription = undefined;
    this.failures += 1;
    this.lastError = error instanceof Error ? error.message : String(error);
    this.options.onFailure?.(error);
    const delay = this.nextRetryDelayMs;
    this.nextRetryDelayMs = Math.min(delay * 2, this.maxRetryDelayMs);
    this.state = 'retrying';
    this.options.logger?.[retryLogLevel(error, this.failures)](
      {
        ...this.options.logDetails,
        err: error,
        checkpoint: this.checkpoint,
        retryInMs: delay,
        failures: this.failures,
      },
      this.options.retryMessage,
    );
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this.state === 'stopped') return;
      this.follow().catch((failure: unknown) => this.retryAfter(failure));
    }, delay);
  }

  /** Stops following; a batch in flight finishes (and checkpoints, if it asks to) first. */
  async stop(): Promise<void> {
    this.state = 'stopped';
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const subscription = this.subscription;
    this.subscription = undefined;
    await subscription?.stop();
  }

  /** Saves the position reached when handled batches left it ahead of the checkpoint (after a stop, say). */
  async saveCheckpoint(): Promise<void> {
    if (this.position > this.checkpoint) await this.save(this.position);
  }
}
