/**
 * The CLI as a user runs it: `node services/cli/bin.js …` in a child process, against an embedded
 * data folder in a temp dir seeded with a trading workload of real domain events.
 */
import { execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, rmdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendWorkload, tradingWorkload } from '../../projections/read-models/workload.ts';
import { loadConfig } from '../shared/config.ts';
import { LOCK_FILE } from '../shared/data-lock.ts';
import { connectEventStores } from '../shared/event-stores.ts';

const bin = fileURLToPath(new URL('./bin.js', import.meta.url));
let dataDir: string;

function tradecore(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return tradecoreIn(dataDir, {}, ...args);
}

/** The CLI in `cwd` (where it looks for a `.env`), with `extra` in its environment. */
function tradecoreIn(
  cwd: string,
  extra: Record<string, string>,
  ...args: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  // Embedded mode only: no server URL from the test environment (or a `.env`) leaks into the child.
  const env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    TRADECORE_DATA_DIR: dataDir,
    LOG_LEVEL: 'silent',
    ...extra,
  };
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { env, cwd, timeout: 60_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** An account's password hash: the CLI's audit commands never print it. */
const SECRET_HASH = 'scrypt$not-for-your-eyes';
/** An Idempotency-Key's request fingerprint: never printed either. */
const SECRET_FINGERPRINT = 'hmac-of-a-register-body';

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'tradecore-cli-'));
  const stores = await connectEventStores(loadConfig({ TRADECORE_DATA_DIR: dataDir }));
  try {
    await appendWorkload(
      stores,
      tradingWorkload({ seed: 3, requests: 60, accounts: 4, symbols: ['PETR4', 'VALE3'] }),
    );
    await stores.broker.append('account-cli-auditee', [
      {
        id: randomUUID(),
        type: 'AccountRegistered',
        data: {
          accountId: 'cli-auditee',
          username: 'auditee',
          passwordHash: SECRET_HASH,
          roles: ['trader'],
          registeredAt: new Date().toISOString(),
        },
        metadata: {
          correlationId: randomUUID(),
          causationId: randomUUID(),
          actor: 'test',
          occurredAt: new Date().toISOString(),
        },
      },
    ]);
    await stores.broker.append('idempotency-cli-auditee-key-1', [
      {
        id: randomUUID(),
        type: 'IdempotencyKeyClaimed',
        data: { key: 'key-1', fingerprint: SECRET_FINGERPRINT, derivedIds: true },
        metadata: {
          correlationId: randomUUID(),
          causationId: randomUUID(),
          actor: 'cli-auditee',
          occurredAt: new Date().toISOString(),
        },
      },
    ]);
  } finally {
    await stores.close();
  }
}, 120_000);
afterAll(() => rm(dataDir, { recursive: true, force: true }));

/**
 * The CLI with its stdout's reader gone from the start (as `| head -1` once it has its line):
 * every write to stdout fails with EPIPE.
 */
function tradecoreUnread(...args: string[]): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [bin, ...args], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, TRADECORE_DATA_DIR: dataDir, LOG_LEVEL: 'silent' },
  });
  child.stdout.destroy();
  let stderr = '';
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stderr })));
}

/** The CLI, signalled once `ready` is true of what it wrote on stderr so far. */
async function tradecoreSignalled(
  signal: NodeJS.Signals,
  ready: (stderr: string) => boolean,
  ...args: string[]
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [bin, ...args], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, TRADECORE_DATA_DIR: dataDir, LOG_LEVEL: 'silent' },
  });
  let stdout = '';
  let stderr = '';
  let sent = false;
  child.stdout.on('data', (chunk) => {
    stdout += chunk;
  });
  const check = () => {
    if (!sent && ready(stderr)) {
      sent = true;
      child.kill(signal);
    }
  };
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
    check();
  });
  const poll = setInterval(check, 5);
  try {
    return await new Promise((resolve) =>
      child.on('close', (code, killed) => resolve({ code, signal: killed, stdout, stderr })),
    );
  } finally {
    clearInterval(poll);
  }
}

describe('tradecore CLI', () => {
  it('stops quietly, exit 0, when the reader of its output goes away (| head -1)', async () => {
    for (const args of [
      ['audit', 'stream', 'order-ord-3-1'],
      ['audit', 'state', 'order-ord-3-1'],
      ['projections', 'status'],
      ['projections', 'status', '--json'],
    ]) {
      const cut = await tradecoreUnread(...args);
      // Not node's "Error: write EPIPE … Unhandled 'error' event", exit 1.
      expect(cut, args.join(' ')).toEqual({ code: 0, stderr: '' });
      expect(existsSync(join(dataDir, LOCK_FILE))).toBe(false);
    }
  }, 120_000);

  it('names a .env it cannot read, and why, in one line', async () => {
    const folder = await mkdtemp(join(tmpdir(), 'tradecore-cli-env-'));
    try {
      await mkdir(join(folder, '.env'));
      const directory = await tradecoreIn(folder, {}, 'projections', 'status');
      expect(directory.code).toBe(1);
      expect(directory.stderr).toBe(
        `tradecore: cannot read ${join(folder, '.env')}: it is a folder, not a file (EISDIR)\n`,
      );
      await rmdir(join(folder, '.env'));
      await writeFile(join(folder, '.env'), 'PORT=8081\n');
      await chmod(join(folder, '.env'), 0o000);
      await chmod(folder, 0o755);
      // Root reads any file: the CLI then runs as nobody, for whom the file is really unreadable.
      const asRoot = process.getuid?.() === 0;
      const unreadable = await new Promise<{ code: number; stderr: string }>((resolve) =>
        execFile(
          process.execPath,
          [bin, 'projections', 'status'],
          {
            cwd: folder,
            env: { PATH: process.env.PATH, TRADECORE_DATA_DIR: dataDir, LOG_LEVEL: 'silent' },
            ...(asRoot ? { uid: 65_534, gid: 65_534 } : {}),
            timeout: 60_000,
          },
          (error, _stdout, stderr) =>
            resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stderr }),
        ),
      );
      expect(unreadable.code).toBe(1);
      // Not node's own "ENOENT: no such file or directory" and a stack.
      expect(unreadable.stderr).toBe(
        `tradecore: cannot read ${join(folder, '.env')}: permission denied (EACCES)\n`,
      );
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  }, 120_000);

  it('never prints a password hash: audit stream and audit state redact it, as the HTTP audit does', async () => {
    const stream = await tradecore('audit', 'stream', 'account-cli-auditee');
    const streamJson = await tradecore('audit', 'stream', 'account-cli-auditee', '--json');
    const state = await tradecore('audit', 'state', 'account-cli-auditee');
    const stateJson = await tradecore('audit', 'state', 'account-cli-auditee', '--json');
    // The API's own streams are read too (the CLI refused their prefixes), fingerprints redacted.
    const key = await tradecore('audit', 'stream', 'idempotency-cli-auditee-key-1');
    for (const result of [stream, streamJson, state, stateJson, key]) {
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toContain('[redacted]');
      expect(result.stdout).not.toContain(SECRET_HASH);
      expect(result.stdout).not.toContain(SECRET_FINGERPRINT);
    }
    // Two CLI runs, each opening the data folder's PGlite databases: seconds each on a busy machine.
  }, 120_000);

  it('says a stream read past its end has nothing there, rather than print nothing', async () => {
    const past = await tradecore('audit', 'stream', 'account-cli-auditee', '--from', '5');
    expect(past.code, past.stderr).toBe(0);
    expect(past.stdout).toBe('');
    expect(past.stderr.trim()).toBe(
      'tradecore: account-cli-auditee has versions 0 to 0: none from version 5',
    );
  }, 120_000);

  it('replays every read model, with progress on stderr, and reports them caught up', async () => {
    const before = await tradecore('projections', 'status', '--json');
    expect(before.code).toBe(0);
    const lagging = JSON.parse(before.stdout).projections as Array<{
      projection: string;
      lagPositions: number;
    }>;
    expect(lagging.map((s) => s.projection)).toContain('orders');
    expect(lagging.every((s) => s.lagPositions > 0)).toBe(true);

    const replay = await tradecore('replay');
    expect(replay.code, replay.stderr).toBe(0);
    expect(replay.stdout).toMatch(/rebuilt orders: \d+ events/);
    expect(replay.stdout).toMatch(/rebuilt audit_b3: \d+ events/);
    // Not a terminal: plain progress lines with the rate and ETA, no cursor movements.
    expect(replay.stderr).toMatch(/orders .*100% .*events\/s · ETA/);
    expect(replay.stderr).not.toContain('\u001b[');

    const after = await tradecore('projections', 'status', '--json');
    expect(
      (JSON.parse(after.stdout).projections as Array<{ lagPositions: number }>).every(
        (s) => s.lagPositions === 0,
      ),
    ).toBe(true);
  }, 90_000);

  it('rebuilds one read model by name, and names an unknown one', async () => {
    const one = await tradecore('projections', 'rebuild', 'wallets', '--json');
    expect(one.code, one.stderr).toBe(0);
    expect(JSON.parse(one.stdout).rebuilt.map((r: { projection: string }) => r.projection)).toEqual([
      'wallets',
    ]);
    const unknown = await tradecore('projections', 'rebuild', 'walets');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown projection "walets"');
  }, 120_000);

  it('shows a stream with its metadata, from a version, and refuses a bad --limit', async () => {
    const stream = await tradecore(
      'audit',
      'stream',
      'order-ord-3-1',
      '--from',
      '1',
      '--limit',
      '1',
      '--json',
    );
    expect(stream.code, stream.stderr).toBe(0);
    const [event] = JSON.parse(stream.stdout).events;
    expect(event).toMatchObject({ streamId: 'order-ord-3-1', version: 1, type: 'OrderAccepted' });
    expect(event.metadata).toMatchObject({ correlationId: 'req-3-1', actor: 'broker' });
    const bad = await tradecore('audit', 'stream', 'order-ord-3-1', '--limit', 'ten');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--limit must be an integer');
    // The HTTP API's maximum (GET /v1/audit/streams/{id}?limit=1001 is a 400), not a larger one.
    const most = await tradecore('audit', 'stream', 'order-ord-3-1', '--limit', '1000');
    expect(most.code, most.stderr).toBe(0);
    const over = await tradecore('audit', 'stream', 'order-ord-3-1', '--limit', '1001');
    expect(over.code).toBe(2);
    expect(over.stderr).toBe(
      'tradecore: --limit must be an integer from 1 to 1000, got "1001" (tradecore help shows the usage)\n',
    );
    const missing = await tradecore('audit', 'stream', 'order-nobody');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('order-nobody has no events');
  }, 120_000);

  it('says where the next page starts when a stream goes on past the events shown', async () => {
    const whole = await tradecore('audit', 'stream', 'order-ord-3-1', '--json');
    expect(whole.code, whole.stderr).toBe(0);
    const all = JSON.parse(whole.stdout) as { events: unknown[]; nextFrom?: number };
    expect(all.events.length).toBeGreaterThan(2);
    expect(all).not.toHaveProperty('nextFrom');
    // As GET /v1/audit/streams/{id} gives it: the version to read from next.
    const page = await tradecore('audit', 'stream', 'order-ord-3-1', '--from', '1', '--limit', '1', '--json');
    expect(JSON.parse(page.stdout)).toMatchObject({ nextFrom: 2 });
    const text = await tradecore('audit', 'stream', 'order-ord-3-1', '--limit', '2');
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout.trimEnd().split('\n')).toHaveLength(2);
    expect(text.stderr).toBe('more: --from 2\n');
    const rest = await tradecore('audit', 'stream', 'order-ord-3-1', '--from', String(all.events.length - 1));
    expect(rest.stdout.trimEnd().split('\n')).toHaveLength(1);
    expect(rest.stderr).toBe('');
  }, 120_000);

  it('rebuilds an aggregate’s state as it is now when given neither a version nor a time', async () => {
    const current = await tradecore('audit', 'state', 'order-ord-3-1', '--json');
    expect(current.code, current.stderr).toBe(0);
    const answer = JSON.parse(current.stdout);
    expect(answer.currentVersion).toBeGreaterThan(0);
    expect(answer.version).toBe(answer.currentVersion);
    const last = await tradecore(
      'audit',
      'state',
      'order-ord-3-1',
      '--version',
      String(answer.currentVersion),
      '--json',
    );
    expect(answer.state).toEqual(JSON.parse(last.stdout).state);
  }, 120_000);

  it('rebuilds an aggregate’s state at a version, or at a point in time', async () => {
    const placed = await tradecore('audit', 'state', 'order-ord-3-1', '--version', '0', '--json');
    expect(placed.code, placed.stderr).toBe(0);
    expect(JSON.parse(placed.stdout)).toMatchObject({
      version: 0,
      state: { status: 'PENDING_NEW', orderId: 'ord-3-1' },
    });
    const accepted = await tradecore('audit', 'state', 'order-ord-3-1', '--version', '1', '--json');
    expect(JSON.parse(accepted.stdout).state.status).toBe('NEW');
    // Now, as São Paulo's clock reads it.
    const at = new Date();
    const inSaoPaulo = new Date(at.getTime() - 3 * 3_600_000).toISOString().replace('Z', '-03:00');
    const now = await tradecore('audit', 'state', 'book-PETR4', '--at', inSaoPaulo, '--json');
    expect(now.code, now.stderr).toBe(0);
    expect(JSON.parse(now.stdout).state).toMatchObject({ symbol: 'PETR4', status: 'OPEN' });
    // As GET /v1/audit/streams/{streamId}/state?at= answers: the instant asked about, in UTC.
    expect(JSON.parse(now.stdout).at).toBe(at.toISOString());

    const both = await tradecore(
      'audit',
      'state',
      'order-ord-3-1',
      '--version',
      '0',
      '--at',
      '2026-01-05T13:00:00Z',
    );
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('one of --version N or --at ISO-8601-instant, not both');
    const badAt = await tradecore('audit', 'state', 'order-ord-3-1', '--at', 'yesterday');
    expect(badAt.code).toBe(2);
    expect(badAt.stderr).toContain('--at must be an ISO 8601 date and time with seconds and a time zone');
    // Without its zone a time would be read in this machine's own: refused, as the API refuses it.
    const zoneless = await tradecore('audit', 'state', 'order-ord-3-1', '--at', '2026-11-27T23:40:30');
    expect(zoneless.code).toBe(2);
    expect(zoneless.stderr).toContain('--at must be an ISO 8601 date and time with seconds and a time zone');
    const beyond = await tradecore('audit', 'state', 'order-ord-3-1', '--version', '999');
    expect(beyond.code).toBe(1);
    expect(beyond.stderr).toContain('--version 999 is beyond stream order-ord-3-1');
    const trade = await tradecore('audit', 'state', 'trade-x', '--version', '0');
    expect(trade.code).toBe(2);
    // The HTTP API's refusal, word for word (services/api/audit-state.test.ts).
    expect(trade.stderr).toContain(
      'tradecore: state is rebuilt for account-, wallet-, order-, instrument-, book- streams, not "trade-x"',
    );

    // Without --json, text: a heading, then one `path value` line per field of the state.
    const text = await tradecore('audit', 'state', 'order-ord-3-1', '--version', '1');
    expect(text.code, text.stderr).toBe(0);
    const [heading, ...fields] = text.stdout.trimEnd().split('\n');
    expect(heading).toMatch(/^order-ord-3-1 at version 1 of \d+$/);
    expect(fields).toContainEqual(expect.stringMatching(/^ {2}status +NEW$/));
    expect(fields).toContainEqual(expect.stringMatching(/^ {2}orderId +ord-3-1$/));
    expect(text.stdout).not.toContain('{"');
  }, 120_000);

  it('traces one request across streams and both stores', async () => {
    const trace = await tradecore('audit', 'trace', 'req-3-1', '--json');
    expect(trace.code, trace.stderr).toBe(0);
    const events = JSON.parse(trace.stdout).events as Array<{
      store: string;
      streamId: string;
      type: string;
    }>;
    expect(events[0]).toMatchObject({ streamId: 'order-ord-3-1', type: 'OrderPlaced' });
    expect(new Set(events.map((e) => e.store))).toEqual(new Set(['broker', 'b3']));
    // Each event as `GET /v1/audit/trace/{correlationId}` gives it (routes-audit.ts traceEvent).
    for (const event of events)
      expect(Object.keys(event).sort()).toEqual([
        'data',
        'id',
        'metadata',
        'position',
        'recordedAt',
        'store',
        'streamId',
        'type',
        'version',
      ]);

    // One page at a time: the pages put together are the whole trace.
    const first = await tradecore('audit', 'trace', 'req-3-1', '--json', '--limit', '2');
    expect(first.code, first.stderr).toBe(0);
    const page = JSON.parse(first.stdout) as { events: unknown[]; nextCursor?: string };
    expect(page.events).toEqual(JSON.parse(trace.stdout).events.slice(0, 2));
    expect(page.nextCursor).toBeDefined();
    const rest = await tradecore(
      'audit',
      'trace',
      'req-3-1',
      '--json',
      '--limit',
      '500',
      '--cursor',
      page.nextCursor!,
    );
    expect(rest.code, rest.stderr).toBe(0);
    expect([...page.events, ...JSON.parse(rest.stdout).events]).toEqual(JSON.parse(trace.stdout).events);
    expect((await tradecore('audit', 'trace', 'req-3-2', '--cursor', page.nextCursor!)).code).toBe(2);

    const none = await tradecore('audit', 'trace', 'req-nobody');
    expect(none.code).toBe(1);
  }, 120_000);

  it('runs the demo in a fresh folder of its own, leaving the data folder alone', async () => {
    const temp = await mkdtemp(join(tmpdir(), 'tradecore-cli-demo-'));
    try {
      const before = await tradecore('projections', 'status', '--json');
      const demo = await tradecoreIn(dataDir, { TMPDIR: temp }, 'demo');
      expect(demo.code, demo.stderr).toBe(0);
      const folder = /demo: in a fresh data folder of its own, (\S+)/.exec(demo.stdout)?.[1];
      expect(folder?.startsWith(join(temp, 'tradecore-demo-'))).toBe(true);
      expect(demo.stdout).toContain('an event that fails its schema is refused: invalid CashDeposited event');
      // Nothing reached the data folder it was run on: no demo stream, the heads unchanged.
      expect((await tradecore('audit', 'stream', 'wallet-demo')).code).toBe(1);
      const after = await tradecore('projections', 'status', '--json');
      const heads = (stdout: string) =>
        (JSON.parse(stdout).projections as Array<{ projection: string; head: number }>).map((s) => [
          s.projection,
          s.head,
        ]);
      expect(heads(after.stdout)).toEqual(heads(before.stdout));
      // What it wrote in its own folder is what the services write: the read models take it.
      const replay = await tradecoreIn(dataDir, { TRADECORE_DATA_DIR: folder! }, 'replay');
      expect(replay.code, replay.stderr).toBe(0);
      const book = await tradecoreIn(
        dataDir,
        { TRADECORE_DATA_DIR: folder! },
        'audit',
        'state',
        'book-PETR4',
        '--json',
      );
      expect(JSON.parse(book.stdout).state).toMatchObject({ symbol: 'PETR4', status: 'OPEN' });
    } finally {
      await rm(temp, { recursive: true, force: true });
    }
  }, 120_000);

  it('refuses an option the command does not take, naming both, instead of ignoring it', async () => {
    const cases: Array<[string[], string]> = [
      [
        ['audit', 'stream', 'order-ord-3-1', '--version', '3'],
        '--version is not an option of audit stream (it takes --from, --limit, --json)',
      ],
      [
        ['audit', 'stream', 'order-ord-3-1', '--at', '2026-01-05T13:00:00Z'],
        '--at is not an option of audit stream (it takes --from, --limit, --json)',
      ],
      [
        ['audit', 'stream', 'order-ord-3-1', '--cursor', 'abc'],
        '--cursor is not an option of audit stream (it takes --from, --limit, --json)',
      ],
      [
        ['audit', 'trace', 'req-3-1', '--from', '3'],
        '--from is not an option of audit trace (it takes --limit, --cursor, --json)',
      ],
      [
        ['audit', 'trace', 'req-3-1', '--version', '3'],
        '--version is not an option of audit trace (it takes --limit, --cursor, --json)',
      ],
      [
        ['audit', 'state', 'order-ord-3-1', '--limit', '5'],
        '--limit is not an option of audit state (it takes --version, --at, --json)',
      ],
      [
        ['projections', 'status', '--limit', '5'],
        '--limit is not an option of projections status (it takes --json)',
      ],
      [['replay', '--from=2'], '--from is not an option of replay (it takes --json)'],
      // The first one the command does not take is named, wherever it stands.
      [
        ['audit', 'stream', '--cursor', 'abc', 'order-ord-3-1', '--json', '--at', 'x'],
        '--cursor is not an option of audit stream (it takes --from, --limit, --json)',
      ],
      [['demo', '--json'], '--json is not an option of demo (it takes none)'],
      [['serve', 'projector', '--json'], '--json is not an option of serve (it takes none)'],
      [['help', '--limit', '5'], '--limit is not an option of help (it takes none)'],
      // One the command takes, given twice: which was meant is not guessed.
      [
        ['audit', 'stream', 'order-ord-3-1', '--from', '1', '--from=2'],
        '--from is given 2 times: give it once',
      ],
    ];
    for (const [args, message] of cases) {
      const refused = await tradecore(...args);
      expect(refused.code, args.join(' ')).toBe(2);
      expect(refused.stdout).toBe('');
      expect(refused.stderr).toBe(`tradecore: ${message} (tradecore help shows the usage)\n`);
    }
    // --help goes with every command, and shows the usage.
    const help = await tradecore('audit', 'stream', 'order-ord-3-1', '--help');
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('audit stream <stream>');
  }, 120_000);

  it('keeps help, and refuses unknown commands and options', async () => {
    const help = await tradecore('help');
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('projections rebuild <name|all>');
    // No command at all is a usage error: the help on stderr, nothing on stdout, exit 2.
    for (const args of [[], ['--json']]) {
      const none = await tradecore(...args);
      expect(none.code, args.join(' ')).toBe(2);
      expect(none.stdout).toBe('');
      expect(none.stderr).toContain('projections rebuild <name|all>');
    }
    const unknown = await tradecore('replya');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown command "replya"');
    const option = await tradecore('projections', 'status', '--verbose');
    expect(option.code).toBe(2);
    expect(option.stderr).toBe('tradecore: unknown option --verbose (tradecore help shows the usage)\n');
    // node's own parse messages span lines; ours is one, naming the option.
    const dashed = await tradecore('audit', 'state', 'wallet-x', '--version', '-1');
    expect(dashed.code).toBe(2);
    expect(dashed.stderr).toBe(
      'tradecore: --version needs a value; one that starts with "-" is written --version=-… (tradecore help shows the usage)\n',
    );
    const missing = await tradecore('audit', 'state', 'wallet-x', '--version');
    expect(missing.stderr).toBe('tradecore: --version needs a value (tradecore help shows the usage)\n');
    const flag = await tradecore('projections', 'status', '--json=yes');
    expect(flag.stderr).toBe('tradecore: --json takes no value (tradecore help shows the usage)\n');
    // A `.env` in the working folder fills what the environment leaves unset.
    const folder = await mkdtemp(join(tmpdir(), 'tradecore-cli-env-'));
    await writeFile(join(folder, '.env'), 'PRICE_BAND_PERCENT=250\nLOG_LEVEL=nonsense\n');
    const fromFile = await tradecoreIn(folder, {}, 'projections', 'status');
    expect(fromFile.code).toBe(1);
    expect(fromFile.stderr).toContain('PRICE_BAND_PERCENT');
    const environmentWins = await tradecoreIn(folder, { PRICE_BAND_PERCENT: '10' }, 'projections', 'status');
    expect(environmentWins.code, environmentWins.stderr).toBe(0);
    // A line that is no NAME=value is named, not folded into the next name (which it would drop).
    await writeFile(join(folder, '.env'), 'Welcome to my env\nQUOTE_INTERVAL_MS=abc\n');
    const stray = await tradecoreIn(folder, {}, 'projections', 'status');
    expect(stray.code).toBe(1);
    expect(stray.stderr).toBe(
      `tradecore: ${join(folder, '.env')}: line 1 is not NAME=value: "Welcome to my env"\n`,
    );
    await rm(folder, { recursive: true, force: true });
    // `help` takes no argument, as no other command takes one it does not name.
    const helpExtra = await tradecore('help', 'extra');
    expect(helpExtra.code).toBe(2);
    expect(helpExtra.stdout).toBe('');
    expect(helpExtra.stderr).toBe(
      'tradecore: unexpected argument "extra" (tradecore help shows the usage)\n',
    );
    const service = await tradecore('serve', 'nope');
    expect(service.code).toBe(2);
    expect(service.stderr).toContain('unknown service "nope"');
  }, 120_000);

  // Last: it rebuilds read models that the tests above find behind.
  it('on SIGTERM or Ctrl-C, stops its work, says what that left, releases the data folder, exit 143 or 130', async () => {
    const lock = join(dataDir, LOCK_FILE);
    // While it opens the databases: nothing read or written yet.
    const opening = await tradecoreSignalled(
      'SIGTERM',
      () => existsSync(lock),
      'projections',
      'rebuild',
      'all',
    );
    expect(opening.signal).toBeNull();
    expect(opening.code).toBe(143);
    expect(opening.stderr.trimEnd().split('\n').at(-1)).toBe(
      'tradecore: interrupted: the live read models are unchanged',
    );
    expect(existsSync(lock)).toBe(false);
    const status = await tradecoreSignalled('SIGTERM', () => existsSync(lock), 'projections', 'status');
    expect(status.code).toBe(143);
    expect(status.stderr.trimEnd().split('\n').at(-1)).toBe('tradecore: interrupted');

    // Mid-replay: the read model being rebuilt is abandoned before its swap; those swapped in
    // before it were each said on stdout as they were.
    const replay = await tradecoreSignalled('SIGINT', (stderr) => stderr.includes('orders'), 'replay');
    expect(replay.code).toBe(130);
    const left =
      /^tradecore: interrupted: (the live read models are unchanged|([a-z_, ]+) rebuilt and swapped in; the other live read models are unchanged)$/.exec(
        replay.stderr.trimEnd().split('\n').at(-1) ?? '',
      );
    expect(left).not.toBeNull();
    const saidRebuilt = replay.stdout
      .split('\n')
      .flatMap((line) => /^rebuilt ([a-z_]+): /.exec(line)?.[1] ?? []);
    expect(saidRebuilt.join(', ')).toBe(left?.[2] ?? '');
    expect(existsSync(lock)).toBe(false);
    // In JSON, stopped after the first read model is done: one document, saying so.
    const json = await tradecoreSignalled(
      'SIGTERM',
      (stderr) => stderr.includes(' · done in '),
      'replay',
      '--json',
    );
    expect(json.code).toBe(143);
    const document = JSON.parse(json.stdout) as {
      rebuilt: Array<{ projection: string }>;
      interrupted: boolean;
    };
    expect(document.interrupted).toBe(true);
    expect(document.rebuilt.length).toBeGreaterThan(0);
    expect(json.stderr.trimEnd().split('\n').at(-1)).toBe(
      `tradecore: interrupted: ${document.rebuilt.map((result) => result.projection).join(', ')} rebuilt and swapped in; the other live read models are unchanged`,
    );
    expect(existsSync(lock)).toBe(false);
    // The next command finds the folder free (no lock of a dead pid to take over), and whole.
    const after = await tradecore('projections', 'status', '--json');
    expect(after.code, after.stderr).toBe(0);
    expect(after.stderr).toBe('');
    const again = await tradecore('projections', 'rebuild', 'orders');
    expect(again.code, again.stderr).toBe(0);
  }, 180_000);
});
