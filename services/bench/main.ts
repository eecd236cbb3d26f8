/**
 * `npm run bench -- NAME [--json]`: runs the benchmark `services/bench/NAME.ts`, whose default export
 * takes the parsed options and returns its rows.
 */
import { readdir } from 'node:fs/promises';
import { type BenchRow, printReport } from './report.ts';

export interface BenchOptions {
  json: boolean;
  /** Scales workloads down for a quick look (`--quick`). */
  quick: boolean;
}

type Benchmark = { title: string; run: (options: BenchOptions) => Promise<BenchRow[]> };

const args = process.argv.slice(2);
const names = args.filter((arg) => !arg.startsWith('--'));
const options: BenchOptions = { json: args.includes('--json'), quick: args.includes('--quick') };
const available = (await readdir(new URL('.', import.meta.url)))
  .filter((file) => file.endsWith('.bench.ts'))
  .map((file) => file.replace('.bench.ts', ''));

if (names.length !== 1 || !available.includes(names[0]!)) {
  console.error(`usage: npm run bench -- <${available.join('|')}> [--json] [--quick]`);
  process.exit(2);
}

const benchmark = (await import(`./${names[0]}.bench.ts`)).default as Benchmark;
const rows = await benchmark.run(options);
printReport(benchmark.title, rows, options);
process.exit(0);
