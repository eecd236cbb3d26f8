import { parseEnv } from 'node:util';

/** `NAME=value` (`export NAME=value` too), as dotenv and Node read them; `#` starts a comment. */
const ASSIGNMENT = /^\s*(?:export\s+)?[\w.-]+\s*=(.*)$/;

/**
 * The variables of a `.env` file's `text`, or why it is not one: the line that is neither a
 * `NAME=value`, a comment nor blank, by its number. Node's `parseEnv` alone folds such a line into
 * the name on the next one, so a stray word above `DATABASE_URL` would drop that setting without a
 * word, and tradecore would run embedded.
 */
export function parseDotEnv(file: string): { variables: Record<string, string> } | { problem: string } {
  // An editor's byte-order mark would otherwise hide the first name (`\uFEFFPORT`).
  const text = file.replace(/^\uFEFF/, '');
  const lines = text.split(/\r?\n/);
  // The quote of a value still open from an earlier line (a multi-line value), if any.
  let open: string | undefined;
  for (const [index, line] of lines.entries()) {
    if (open !== undefined) {
      if (line.includes(open)) open = undefined;
      continue;
    }
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const assignment = ASSIGNMENT.exec(line);
    if (!assignment) {
      const shown = trimmed.length > 60 ? `${trimmed.slice(0, 60)}…` : trimmed;
      return { problem: `line ${index + 1} is not NAME=value: ${JSON.stringify(shown)}` };
    }
    const value = assignment[1]!.trim();
    const quote = value[0];
    if ((quote === '"' || quote === "'" || quote === '`') && !value.slice(1).includes(quote)) open = quote;
  }
  return { variables: parseEnv(text) as Record<string, string> };
}
