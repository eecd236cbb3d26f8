import type { RebuildProgress } from '../../projections/projector.ts';

/**
 * The rebuild progress bar, on stderr so stdout stays for results. On a terminal: one line per
 * projection, redrawn in place at most ten times a second, with a bar, events/s and ETA. Anywhere
 * else (CI logs, pipes): a plain line every few seconds and one when each projection finishes.
 * Twenty lines of our own instead of a dependency: the projector already computes rate and ETA.
 */
export interface ProgressOutput {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export function progressRenderer(
  output: ProgressOutput,
  options: { intervalMs?: number; now?: () => number } = {},
) {
  const now = options.now ?? (() => performance.now());
  const interval = options.intervalMs ?? (output.isTTY ? 100 : 5_000);
  let current: string | undefined;
  let last = Number.NEGATIVE_INFINITY;

  const finishLine = () => {
    if (output.isTTY && current !== undefined) output.write('\n');
  };

  return {
    update(progress: RebuildProgress): void {
      const projectionChanged = current !== progress.projection;
      if (projectionChanged) {
        finishLine();
        current = progress.projection;
        last = Number.NEGATIVE_INFINITY;
      }
      const at = now();
      if (at - last < interval) return;
      last = at;
      const line = describe(
        progress,
        output.isTTY ? Math.max(10, Math.min(30, (output.columns ?? 80) - 70)) : 0,
      );
      output.write(output.isTTY ? `\r\u001b[2K${line}` : `${line}\n`);
    },
    /** Draws the final state of the current projection and ends its line. */
    done(progress: RebuildProgress, seconds: number): void {
      const line = `${describe({ ...progress, position: progress.head, etaSeconds: 0 }, output.isTTY ? Math.max(10, Math.min(30, (output.columns ?? 80) - 70)) : 0)} · done in ${seconds.toFixed(1)} s`;
      output.write(output.isTTY ? `\r\u001b[2K${line}\n` : `${line}\n`);
      current = undefined;
    },
  };
}

export function describe(progress: RebuildProgress, barWidth: number): string {
  const fraction = progress.head > 0 ? Math.min(1, progress.position / progress.head) : 1;
  const percent = `${Math.floor(fraction * 100)}%`.padStart(4);
  const filled = Math.round(fraction * barWidth);
  const bar = barWidth > 0 ? ` [${'█'.repeat(filled)}${'░'.repeat(barWidth - filled)}]` : '';
  const rate = `${Math.round(progress.eventsPerSecond).toLocaleString('en-US')} events/s`;
  const eta = progress.etaSeconds === undefined ? 'ETA –' : `ETA ${formatDuration(progress.etaSeconds)}`;
  return `${progress.projection.padEnd(12)}${bar} ${percent} · position ${progress.position.toLocaleString('en-US')}/${progress.head.toLocaleString('en-US')} · ${progress.events.toLocaleString('en-US')} events · ${rate} · ${eta}`;
}

export function formatDuration(seconds: number): string {
  if (seconds < 60) return `${Math.ceil(seconds)}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m${String(Math.ceil(seconds % 60)).padStart(2, '0')}s`;
  return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, '0')}m`;
}
