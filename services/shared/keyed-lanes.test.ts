import { describe, expect, it } from 'vitest';
import { KeyedLanes } from './keyed-lanes.ts';

const tick = () => new Promise((resolve) => setTimeout(resolve, 1));

describe('KeyedLanes', () => {
  it("runs one key's jobs in order and different keys' side by side", async () => {
    const lanes = new KeyedLanes();
    const log: string[] = [];
    const job = (name: string, ticks: number) => async () => {
      log.push(`${name} start`);
      for (let index = 0; index < ticks; index++) await tick();
      log.push(`${name} end`);
    };
    await Promise.all([
      lanes.run('a', job('a1', 5)),
      lanes.run('a', job('a2', 1)),
      lanes.run('b', job('b1', 1)),
    ]);
    expect(log.indexOf('a2 start')).toBeGreaterThan(log.indexOf('a1 end'));
    expect(log.indexOf('b1 end')).toBeLessThan(log.indexOf('a1 end'));
  });

  it('keeps a lane going after a failed job, which fails only its own promise', async () => {
    const lanes = new KeyedLanes();
    const failed = lanes.run('a', async () => {
      throw new Error('boom');
    });
    const next = lanes.run('a', async () => 'next');
    await expect(failed).rejects.toThrow('boom');
    await expect(next).resolves.toBe('next');
    await lanes.drain();
  });
});
