import type { EventStore } from '../../domain/shared/event-store.ts';
import type { RelayCheckpoints } from '../../projections/relay.ts';

const CHECKPOINT_SCHEMA_VERSION = 1;

/**
 * Checkpoints kept in the event store itself, as snapshots of a pseudo-stream
 * `checkpoint-{name}` (no events): works on every event store adapter, embedded included, with
 * no table of its own. The snapshot's version is the position, and loading takes the highest, so
 * a checkpoint never moves backwards.
 */
export class SnapshotCheckpoints implements RelayCheckpoints {
  constructor(private readonly store: EventStore) {}

  async load(name: string): Promise<number> {
    const snapshot = await this.store.loadSnapshot(streamOf(name), {
      schemaVersion: CHECKPOINT_SCHEMA_VERSION,
    });
    return snapshot?.version ?? 0;
  }

  async save(name: string, position: number): Promise<void> {
    if (!Number.isSafeInteger(position) || position < 0)
      throw new RangeError(`checkpoint ${name}: must be a non-negative integer, got ${position}`);
    if (position <= (await this.load(name))) return;
    await this.store.saveSnapshot({
      streamId: streamOf(name),
      version: position,
      state: { position },
      schemaVersion: CHECKPOINT_SCHEMA_VERSION,
    });
  }
}

const streamOf = (name: string): string => `checkpoint-${name}`;
