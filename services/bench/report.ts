/**
 * The one output format of every benchmark: a table for people, and with `--json` one last line
 * `{"rows":[{name,value,unit,peer?,peerValue?,ratio?}]}` for trackers.
 */
export interface BenchRow {
  name: string;
  value: number;
  unit: string;
  peer?: string;
  peerValue?: number;
  /** value ÷ peerValue for rates (higher is better); peerValue ÷ value for latencies (lower is better). */
  ratio?: number;
}

/** Builds a row comparing to a peer; `higherIsBetter` decides which way the ratio reads. */
export function compared(
  name: string,
  value: number,
  unit: string,
  peer: string,
  peerValue: number,
  higherIsBetter = true,
): BenchRow {
  const ratio = higherIsBetter ? value / peerValue : peerValue / value;
  return { name, value, unit, peer, peerValue, ratio: Number.isFinite(ratio) ? round(ratio) : undefined };
}

export function printReport(title: string, rows: BenchRow[], options: { json: boolean }): void {
  const header = ['benchmark', 'value', 'unit', 'peer', 'peer value', 'ratio'];
  const lines = rows.map((row) => [
    row.name,
    format(row.value),
    row.unit,
    row.peer ?? '',
    row.peerValue === undefined ? '' : format(row.peerValue),
    row.ratio === undefined ? '' : `${row.ratio.toFixed(2)}×`,
  ]);
  const widths = header.map((cell, column) =>
    Math.max(cell.length, ...lines.map((line) => line[column]!.length)),
  );
  const render = (cells: string[]) => cells.map((cell, column) => cell.padEnd(widths[column]!)).join('  ');
  console.log(`\n${title}\n`);
  console.log(render(header));
  console.log(render(widths.map((width) => '-'.repeat(width))));
  for (const line of lines) console.log(render(line));
  if (options.json) {
    const cleaned = rows.map((row) => ({
      ...row,
      value: round(row.value),
      peerValue: row.peerValue && round(row.peerValue),
    }));
    console.log(JSON.stringify({ rows: cleaned }));
  }
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}

function format(value: number): string {
  return value >= 1000 ? Math.round(value).toLocaleString('en-US') : String(round(value));
}
