import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryEventStore } from '../adapters/memory/event-store.ts';
import type { NewEvent, RecordedEvent } from '../domain/shared/event-store.ts';
import { CheckpointedFollower, type CheckpointedFollowerOptions } from './checkpointed-follower.ts';
import { MemoryRelayCheckpoints } from './relay.ts';

const noted = (): NewEvent => ({
  id: randomUUID(),
  type: 'Noted',
  data: {},
  metadata: {
    correlationId: 'c',
    causationId: 'c',
    actor: 'test',
    occurredAt: '2025-03-03T13:00:00.000Z',
    schemaVersion: 1,
  },
});

async function until(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const followers: CheckpointedFollower[] = [];
afterEach(async () => {
  for (const follower of followers.splice(0)) await follower.stop();
});

function follower(
  options: Partial<CheckpointedFollowerOptions> & Pick<CheckpointedFollowerOptions, 'handle'>,
) {
  const created = new CheckpointedFollower({
    name: 'notes',
    source: new MemoryEventStore(),
    checkpoints: new MemoryRelayCheckpoints(),
    retryMessage: 'notes failed',
    ...options,
  });
  followers.push(created);
  return created;
}

describe('CheckpointedFollower', () => {
  it('saves a batch’s checkpoint only when its handler asks, and the position reached when told', async () => {
    const source = new MemoryEventStore();
    await source.append('note-1', [noted(), noted()]);
    await source.append('note-2', [noted()]);
    const checkpoints = new MemoryRelayCheckpoints();
    const notes = follower({
      source,
      checkpoints,
      batchSize: 2,
      // The first batch asks for its checkpoint, the second leaves it for later.
      handle: async (events, checkpoint) => {
        if (events[0]!.position === 1) await checkpoint();
      },
    });
    await notes.start();
    await until(() => notes.progress().position === 3);
    expect(notes.progress()).toMatchObject({ state: 'running', position: 3, checkpoint: 2 });
    expect(await checkpoints.load('notes')).toBe(2);

    await notes.stop();
    await notes.saveCheckpoint();
    expect(await checkpoints.load('notes')).toBe(3);
  });

  it('follows again from the checkpoint, waiting twice as long after each failure up to the cap', async () => {
    const source = new MemoryEventStore();
    await source.append('note-1', [noted(), noted()]);
    const retries: object[] = [];
    const handled: number[] = [];
    let failuresLeft = 4;
    const notes = follower({
      source,
      batchSize: 1,
      retryDelayMs: 5,
      maxRetryDelayMs: 20,
      logger: { warn: (details) => retries.push(details), error: (details) => retries.push(details) },
      logDetails: { notes: 'all' },
      handle: async (events: RecordedEvent[], checkpoint) => {
        handled.push(events[0]!.position);
        if (events[0]!.position > 1 && failuresLeft > 0) {
          failuresLeft -= 1;
          throw new Error('store unavailable');
        }
        await checkpoint();
      },
    });
    await notes.start();
    await until(() => notes.progress().checkpoint === 2);

    expect(handled).toEqual([1, 2, 2, 2, 2, 2]);
    expect(retries.map((details) => (details as { retryInMs: number }).retryInMs)).toEqual([5, 10, 20, 20]);
    expect(retries[0]).toMatchObject({ notes: 'all', checkpoint: 1 });
    expect(notes.progress()).toMatchObject({ state: 'running', failures: 4, error: 'store unavailable' });

    // A batch went through: the next failure waits the first delay again.
    failuresLeft = 1;
    await source.append('note-2', [noted()]);
    await until(() => retries.length === 5);
    expect(retries[4]).toMatchObject({ checkpoint: 2, retryInMs: 5 });
  });

  it('logs an outage as warnings while it is retried, errors once it keeps failing, and any other failure as an error', async () => {
    const source = new MemoryEventStore();
    await source.append('note-1', [noted()]);
    const levels: string[] = [];
    const outage = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    const failures = [outage, outage, outage, outage, outage, outage, new Error('cannot apply Poison')];
    const notes = follower({
      source,
      batchSize: 1,
      retryDelayMs: 1,
      maxRetryDelayMs: 2,
      logger: { warn: () => void levels.push('warn'), error: () => void levels.push('error') },
      handle: async (_events, checkpoint) => {
        const failure = failures.shift();
        if (failure) throw failure;
        await checkpoint();
      },
    });
    await notes.start();
    await until(() => notes.progress().checkpoint === 1);
    expect(levels).toEqual(['warn', 'warn', 'warn', 'warn', 'error', 'error', 'error']);
  });
});
