import { describe, expect, it } from 'vitest';
import { describe as describeProgress, formatDuration, progressRenderer } from './progress.ts';

const progress = (position: number) => ({
  projection: 'orders',
  position,
  head: 1_000,
  events: position,
  eventsPerSecond: 2_500,
  etaSeconds: (1_000 - position) / 2_500,
});

describe('rebuild progress', () => {
  it('redraws one line in place on a terminal, with a bar, events/s and ETA', () => {
    const written: string[] = [];
    let clock = 0;
    const renderer = progressRenderer(
      { write: (text) => written.push(text), isTTY: true, columns: 100 },
      { now: () => clock },
    );
    renderer.update(progress(0));
    clock = 50;
    renderer.update(progress(100)); // within the redraw interval: skipped
    clock = 200;
    renderer.update(progress(500));
    renderer.done(progress(1_000), 0.4);
    expect(written).toHaveLength(3);
    expect(written[1]?.startsWith('\r\u001b[2K')).toBe(true);
    expect(written[1]).toMatch(
      /orders +\[█+░+\] {2}50% · position 500\/1,000 · 500 events · 2,500 events\/s · ETA 1s$/,
    );
    expect(written[2]).toMatch(/100% .* done in 0.4 s\n$/);
  });

  it('prints plain lines, now and then, when stderr is not a terminal', () => {
    const written: string[] = [];
    let clock = 0;
    const renderer = progressRenderer({ write: (text) => written.push(text) }, { now: () => clock });
    renderer.update(progress(0));
    clock = 1_000;
    renderer.update(progress(300));
    clock = 6_000;
    renderer.update(progress(600));
    expect(written).toHaveLength(2);
    expect(written.join('')).not.toContain('\u001b');
    expect(written[1]).toBe(`${describeProgress(progress(600), 0)}\n`);
  });

  it('writes durations the way people read them', () => {
    expect(formatDuration(4.2)).toBe('5s');
    expect(formatDuration(125)).toBe('2m05s');
    expect(formatDuration(7_500)).toBe('2h05m');
  });
});
