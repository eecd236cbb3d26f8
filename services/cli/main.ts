/**
 * The `tradecore` command line. Composition root: config from the environment, then one command.
 */
import { readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { RebuildRunning } from '../../projections/store.ts';
import type { Config } from '../shared/config.ts';
import { ConfigError, loadConfig, ServerUnreachable } from '../shared/config.ts';
import { DataFolderLocked } from '../shared/data-lock.ts';
import { parseDotEnv } from '../shared/dot-env.ts';
import { ListenError } from '../shared/listen.ts';
import {
  auditState,
  auditStream,
  auditTrace,
  CommandFailed,
  type CommandIo,
  Interrupted,
  rebuild,
  status,
  UsageError,
} from './commands.ts';
import { runDemo } from './demo.ts';

const usage = `usage: tradecore <command> [options]

commands:
  start                                  run every service in one process and serve the HTTP API (embedded unless URLs are set)
  serve <service>                        one service per process, adapters chosen by URL (docs/operations.md):
                                         broker-api (API + order process), b3-engine, market-data, projector, query-api
  demo                                   a short demo of the event stores, in a fresh folder of its own
  replay                                 rebuild every read model from history (same as: projections rebuild all)
  projections rebuild <name|all>         rebuild read models into fresh tables, swapped in when caught up
  projections status                     checkpoint, head and lag of every read model, read from its store
  audit stream <stream> [--from N] [--limit N]
                                         a stream's events with their metadata (order-…, wallet-…, book-…, …)
  audit state <stream> [--version N | --at ISO]
                                         an aggregate's state at a version or a point in time (neither: now)
  audit trace <correlationId> [--limit N] [--cursor C]
                                         every event of one request, across streams, in order (or one page)
  help                                   show this help

options:
  --json                                 machine-readable output on stdout (replay, projections, audit)
  -h, --help                             show this help
  a command takes only the options shown with it (and --json where it applies): another is refused

read models: orders, wallets, instruments, trades, book_depth, candles, quotes, audit_broker, audit_b3
environment: see .env.example (TRADECORE_DATA_DIR, DATABASE_URL, B3_DATABASE_URL, MYSQL_URL, MONGO_URL, ESDB_URL, …)`;

/**
 * stdout, written to while something reads it. A reader that goes away (`| head -1`, a readiness
 * wait such as `| grep -m1 'listening on'`) makes writes fail with EPIPE: from then on output is
 * dropped instead of thrown as an unhandled 'error' that ends the process — a command finishes
 * quietly, `start` keeps serving. Its log lines go through pino's own stream, which drops them on
 * EPIPE by itself (pino's `filterBrokenPipe`).
 */
let stdoutGone = false;
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE') throw error;
  stdoutGone = true;
});
// The same for stderr (`2>&1 | head`): progress and messages then go nowhere.
process.stderr.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE') throw error;
});

/** One line on stdout, while it has a reader. */
function say(line: string): void {
  if (!stdoutGone && !process.stdout.destroyed) process.stdout.write(`${line}\n`);
}

/** The exit code of a process ended by `signal`, as the shell reports it: 130 for SIGINT, 143 for SIGTERM. */
const exitCodeOf = (signal: NodeJS.Signals): number => 128 + constants.signals[signal];

/**
 * Calls `stop` on the first SIGINT or SIGTERM, and `force` on a later one. Ctrl-C under npm
 * arrives twice (from the terminal and forwarded by npm): a repeat soon after the first is that
 * echo; a later one is someone insisting.
 */
function onStopSignal(stop: (signal: NodeJS.Signals) => void, force: (signal: NodeJS.Signals) => void): void {
  let first = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    if (first === 0) {
      first = Date.now();
      stop(signal);
    } else if (Date.now() - first > FORCE_AFTER_MS) force(signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

/**
 * The signal a command (replay, projections, audit) stops its work by, at its next step, on the
 * first SIGINT or SIGTERM: it then closes what it opened, releases the data folder and exits
 * 130 or 143 (`Interrupted`). A second signal ends it at once.
 */
function interruption(): AbortSignal {
  const controller = new AbortController();
  onStopSignal(
    (signal) => controller.abort(new Interrupted(signal)),
    (signal) => {
      console.error('tradecore: stopped at once, before the end of its work');
      process.exit(exitCodeOf(signal));
    },
  );
  return controller.signal;
}

/** Runs until SIGINT or SIGTERM, then shuts down cleanly: stop taking requests, drain, close. */
async function start(config: Config): Promise<number> {
  return runUntilSignal(async () => {
    // Loaded on demand: the other commands need neither fastify nor the trading services.
    const { startTradecore } = await import('../all-in-one/main.ts');
    return startTradecore(config);
  });
}

async function serve(service: string | undefined, config: () => Config): Promise<number> {
  const { isServiceName, SERVICES, startService } = await import('./serve.ts');
  if (!isServiceName(service))
    throw new UsageError(
      service === undefined
        ? `serve needs a service: ${SERVICES.join(', ')}`
        : `unknown service "${service}": serve one of ${SERVICES.join(', ')}`,
    );
  return runUntilSignal(() => startService(service, config()));
}

/** A signal this long after the first forces the process out of a shutdown that hangs. */
const FORCE_AFTER_MS = 2_000;
/** How long a start still running when a signal came is waited for, before the process gives up on it. */
const START_GIVES_WAY_MS = 30_000;

/**
 * Starts, then runs until SIGINT or SIGTERM. The signals are taken from before the start, so that
 * one arriving while it starts (a first start prepares its databases for a while) stops it as
 * cleanly as later, once started: the data folder's lock released, nothing left half-open.
 */
async function runUntilSignal(
  startRunning: () => Promise<{ banner: string[]; stop(): Promise<void> }>,
): Promise<number> {
  let stopping = false;
  const signalled = new Promise<void>((resolve) =>
    onStopSignal(
      () => {
        stopping = true;
        say('tradecore: stopping… (a second Ctrl-C or signal forces it)');
        resolve();
      },
      (signal) => {
        console.error('tradecore: stopped before the end of its shutdown');
        process.exit(exitCodeOf(signal));
      },
    ),
  );
  // A start that hangs gives way to a signal after a while (a second signal forces it at once).
  const running = await Promise.race([
    startRunning(),
    signalled.then(() => delay(START_GIVES_WAY_MS)).then(() => undefined),
  ]);
  if (!running) {
    console.error(`tradecore: stopped while still starting, ${START_GIVES_WAY_MS / 1000} s after the signal`);
    return 1;
  }
  if (!stopping) for (const line of running.banner) say(line);
  await signalled;
  await running.stop();
  say('tradecore: stopped');
  return 0;
}

type Token = NonNullable<ReturnType<typeof parseArgs>['tokens']>[number];

/** Every option of every command, as parseArgs takes it (`--help` aside, which goes with any). */
const OPTIONS = {
  json: { type: 'boolean' },
  from: { type: 'string' },
  limit: { type: 'string' },
  version: { type: 'string' },
  at: { type: 'string' },
  cursor: { type: 'string' },
} as const;
type OptionName = keyof typeof OPTIONS;

/**
 * The options each command takes. Another one, even if some other command takes it, is refused
 * rather than ignored: `audit stream … --version 3` would otherwise print from version 0 to a user
 * who expects a filter.
 */
const COMMAND_OPTIONS: Record<string, readonly OptionName[]> = {
  start: [],
  serve: [],
  demo: [],
  replay: ['json'],
  'projections rebuild': ['json'],
  'projections status': ['json'],
  'audit stream': ['from', 'limit', 'json'],
  'audit state': ['version', 'at', 'json'],
  'audit trace': ['limit', 'cursor', 'json'],
  help: [],
};

/**
 * Refuses the first option, in the order given, that `command` does not take, naming both. An
 * unknown command passes: the command's own check names it.
 */
function refuseOptionsNotOf(command: string, subcommand: string | undefined, tokens: Token[]): void {
  const name = [`${command} ${subcommand}`, command].find((candidate) =>
    Object.hasOwn(COMMAND_OPTIONS, candidate),
  );
  if (name === undefined) return;
  const takes = COMMAND_OPTIONS[name]!;
  const foreign = tokens.find(
    (token) => token.kind === 'option' && token.name !== 'help' && !takes.includes(token.name as OptionName),
  );
  if (foreign?.kind === 'option')
    throw new UsageError(
      `--${foreign.name} is not an option of ${name} (it takes ${takes.length > 0 ? takes.map((option) => `--${option}`).join(', ') : 'none'})`,
    );
}

/** An option given twice (`--from 1 --from 2`) is refused, as the API refuses a repeated query parameter. */
function refuseRepeatedOptions(tokens: Token[]): void {
  const given = new Map<string, number>();
  for (const token of tokens)
    if (token.kind === 'option') given.set(token.name, (given.get(token.name) ?? 0) + 1);
  for (const [name, times] of given)
    if (times > 1) throw new UsageError(`--${name} is given ${times} times: give it once`);
}

async function main(argv: string[]): Promise<number> {
  const { positionals, values, tokens } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    tokens: true,
    options: { ...OPTIONS, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) return help();
  const [command, subcommand, argument, ...rest] = positionals;
  if (command === undefined) {
    // No command is a usage error, not a request for help: scripts see exit 2, and stdout stays empty.
    console.error(usage);
    return 2;
  }
  refuseOptionsNotOf(command, subcommand, tokens);
  refuseRepeatedOptions(tokens);
  // Made for the commands that take it: it takes SIGINT and SIGTERM over from node's default.
  const io = (): CommandIo => ({
    out: say,
    err: process.stderr,
    json: values.json === true,
    signal: interruption(),
  });
  const config = () => {
    // A `.env` in the working folder fills what the environment leaves unset (the environment wins).
    const dotEnv = readDotEnv();
    if (dotEnv !== undefined) {
      const parsed = parseDotEnv(dotEnv);
      if ('problem' in parsed) throw new ConfigError(`${resolve('.env')}: ${parsed.problem}`);
      for (const [name, value] of Object.entries(parsed.variables)) process.env[name] ??= value;
    }
    return loadConfig(process.env);
  };
  const noMore = (extra: string | undefined) => {
    if (extra !== undefined) throw new UsageError(`unexpected argument "${extra}"`);
  };
  switch (command) {
    case 'start':
      noMore(subcommand);
      return start(config());
    case 'serve':
      noMore(argument);
      // The service is named before the configuration is read: a typo is a usage error either way.
      return serve(subcommand, config);
    case 'demo':
      noMore(subcommand);
      // Its own fresh folder: no configuration read, no data folder or server of yours opened.
      await runDemo(say);
      return 0;
    case 'replay':
      noMore(subcommand);
      await rebuild(config(), 'all', io());
      return 0;
    case 'projections':
      switch (subcommand) {
        case 'rebuild':
          noMore(rest[0]);
          await rebuild(config(), argument, io());
          return 0;
        case 'status':
          noMore(argument);
          await status(config(), io());
          return 0;
        default:
          throw new UsageError(
            subcommand
              ? `unknown projections command "${subcommand}" (rebuild, status)`
              : 'projections needs a command: rebuild or status',
          );
      }
    case 'audit':
      noMore(rest[0]);
      switch (subcommand) {
        case 'stream':
          await auditStream(config(), argument, { from: values.from, limit: values.limit }, io());
          return 0;
        case 'state':
          await auditState(config(), argument, { version: values.version, at: values.at }, io());
          return 0;
        case 'trace':
          await auditTrace(config(), argument, { limit: values.limit, cursor: values.cursor }, io());
          return 0;
        default:
          throw new UsageError(
            subcommand
              ? `unknown audit command "${subcommand}" (stream, state, trace)`
              : 'audit needs a command: stream, state or trace',
          );
      }
    case 'help':
      noMore(subcommand);
      return help();
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

/**
 * The text of `.env` in the working folder, undefined when there is none. Read here rather than by
 * process.loadEnvFile, which reports any file it cannot read (unreadable, a folder) as ENOENT.
 */
function readDotEnv(): string | undefined {
  try {
    return readFileSync('.env', 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    // "EACCES: permission denied, open '.env'" → "permission denied (EACCES)".
    const reason =
      code === 'EISDIR'
        ? 'it is a folder, not a file'
        : (/^[A-Z]+: ([^,]+)/.exec((error as Error).message)?.[1] ?? (error as Error).message);
    throw new ConfigError(`cannot read ${resolve('.env')}: ${reason}${code ? ` (${code})` : ''}`);
  }
}

function help(): number {
  say(usage);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    const usageProblem = error instanceof UsageError ? error.message : parseArgsProblem(error);
    if (error instanceof Interrupted) {
      // What the command left as it was, once it has closed everything and released the folder.
      console.error(`tradecore: ${error.message}`);
      process.exit(exitCodeOf(error.signal));
    }
    if (usageProblem !== undefined) {
      // One line naming what was wrong; the whole usage is one `tradecore help` away.
      console.error(`tradecore: ${usageProblem} (tradecore help shows the usage)`);
      process.exit(2);
    }
    if (
      error instanceof ConfigError ||
      error instanceof CommandFailed ||
      error instanceof DataFolderLocked ||
      error instanceof ListenError ||
      error instanceof ServerUnreachable ||
      error instanceof RebuildRunning
    )
      console.error(`tradecore: ${error.message}`);
    // Unexpected: a line that says what failed, then the details for a bug report.
    else
      console.error(`tradecore: failed: ${error instanceof Error ? error.message : String(error)}\n`, error);
    process.exit(1);
  },
);

/**
 * node's parseArgs explains itself over several lines, in its own quoting: one line of ours
 * instead, naming the option. Undefined when the error is not parseArgs'.
 */
function parseArgsProblem(error: unknown): string | undefined {
  const code = String((error as { code?: unknown }).code ?? '');
  if (!(error instanceof TypeError) || !code.startsWith('ERR_PARSE_ARGS')) return undefined;
  const option = /'(-{1,2}[^' ]+)/.exec(error.message)?.[1];
  if (option === undefined) return error.message.split('\n')[0];
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return `unknown option ${option}`;
  if (error.message.includes('does not take an argument')) return `${option} takes no value`;
  if (error.message.includes('ambiguous'))
    return `${option} needs a value; one that starts with "-" is written ${option}=-…`;
  if (error.message.includes('argument missing')) return `${option} needs a value`;
  return error.message.split('\n')[0];
}
