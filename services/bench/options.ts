/** Options of a benchmark's own, from `npm run bench -- NAME --name=value`. */

/** The values of a `--name=a,b` argument, undefined when absent. */
export function listOption(name: string): string[] | undefined {
  const prefix = `--${name}=`;
  return process.argv
    .find((arg) => arg.startsWith(prefix))
    ?.slice(prefix.length)
    .split(',');
}

/** A `--name=N` argument, a whole number of at least 1; `fallback` when absent. Exits on a bad one. */
export function countOption(name: string, fallback: number): number {
  const [text] = listOption(name) ?? [];
  if (text === undefined) return fallback;
  const count = Number(text);
  if (!Number.isInteger(count) || count < 1) {
    console.error(`--${name} must be a whole number of at least 1, got "${text}"`);
    process.exit(2);
  }
  return count;
}
