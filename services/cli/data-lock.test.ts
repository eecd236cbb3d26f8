/**
 * The data folder's lock as a user meets it: `tradecore start` running in one process, the CLI in
 * others, on the same folder (`node services/cli/bin.js …` in child processes, as cli.test.ts).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCK_FILE, lockDataFolder } from '../shared/data-lock.ts';

const bin = fileURLToPath(new URL('./bin.js', import.meta.url));
let dataDir: string;
let lockPath: string;
const servers: ChildProcess[] = [];

function env(extra: Record<string, string> = {}) {
  // Embedded mode only: no server URL from the test environment leaks into the child.
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    TRADECORE_DATA_DIR: dataDir,
    TRADECORE_ADMIN_PASSWORD: 'lock-test-admin',
    PORT: '0',
    LOG_LEVEL: 'silent',
    QUOTE_SOURCE: 'off',
    ...extra,
  };
}

function tradecore(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { env: env(), timeout: 60_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * The CLI with `extra` in its environment; `asNobody` runs it as an unprivileged user when the
 * tests run as root, whom no file mode stops.
 */
function tradecoreWith(
  extra: Record<string, string>,
  options: { asNobody?: boolean },
  ...args: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  const nobody = options.asNobody && process.getuid?.() === 0 ? { uid: 65_534, gid: 65_534 } : {};
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [bin, ...args],
      { env: env(extra), timeout: 60_000, ...nobody },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** `tradecore start` in its own process, once it listens. */
async function startServer(): Promise<{ child: ChildProcess; url: string; exited: Promise<number | null> }> {
  const child = spawn(process.execPath, [bin, 'start'], { env: env() });
  servers.push(child);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
      const listening = /tradecore is listening on (\S+)/.exec(stdout);
      if (listening) resolve(listening[1]!);
    });
    child.on('exit', (code) => reject(new Error(`tradecore start exited (${code}): ${stderr}`)));
  });
  return { child, url, exited };
}

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'tradecore-cli-lock-'));
  lockPath = join(dataDir, LOCK_FILE);
});
afterAll(async () => {
  for (const server of servers) server.kill('SIGKILL');
  await rm(dataDir, { recursive: true, force: true });
});

describe('the data folder, between tradecore start and the CLI', () => {
  it('refuses replay, projections, audit and a second start while start runs; lets them in once it stops', async () => {
    const server = await startServer();
    const pid = server.child.pid!;

    for (const args of [['replay'], ['projections', 'status'], ['audit', 'stream', 'instrument-PETR4']]) {
      const refused = await tradecore(...args);
      expect(refused.code, args.join(' ')).toBe(1);
      // One line, no PGlite stack trace: the folder, the holder, and what to do instead.
      expect(refused.stderr.trim().split('\n')).toEqual([
        `tradecore: data folder ${dataDir} is in use by pid ${pid} (tradecore start, since ${(JSON.parse(await readFile(lockPath, 'utf8')) as { since: string }).since}), and only one process may open it at a time: stop that process first, or while it runs use its HTTP API at ${server.url} instead: GET /v1/admin/projections, POST /v1/admin/projections/{name}/rebuild, GET /v1/audit/streams/{streamId}, GET /v1/audit/trace/{correlationId}`,
      ]);
      expect(refused.stdout).toBe('');
    }

    const second = await tradecore('start');
    expect(second.code).toBe(1);
    expect(second.stderr).toContain(`data folder ${dataDir} is in use by pid ${pid} (tradecore start`);
    expect(second.stdout).not.toContain('listening');

    // The first one was not disturbed, and still holds the folder.
    const ready = await fetch(`${server.url}/health/ready`);
    expect(ready.status).toBe(200);
    expect(JSON.parse(await readFile(lockPath, 'utf8')).pid).toBe(pid);

    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    expect(existsSync(lockPath)).toBe(false);

    const status = await tradecore('projections', 'status', '--json');
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout).projections.map((s: { projection: string }) => s.projection)).toContain(
      'orders',
    );
    // Released after the command, too.
    expect(existsSync(lockPath)).toBe(false);
  }, 120_000);

  it('stops cleanly on a SIGTERM that arrives while it is still starting, and leaves no lock behind', async () => {
    const fresh = await mkdtemp(join(tmpdir(), 'tradecore-cli-lock-start-'));
    try {
      const child = spawn(process.execPath, [bin, 'start'], { env: { ...env(), TRADECORE_DATA_DIR: fresh } });
      servers.push(child);
      let stdout = '';
      child.stdout.on('data', (chunk) => {
        stdout += chunk;
      });
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      // The lock is the first thing a start takes; preparing a fresh folder's databases comes after.
      const freshLock = join(fresh, LOCK_FILE);
      while (!existsSync(freshLock)) await new Promise((resolve) => setTimeout(resolve, 10));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(stdout).toContain('tradecore: stopped');
      expect(existsSync(freshLock)).toBe(false);
    } finally {
      await rm(fresh, { recursive: true, force: true });
    }
  }, 120_000);

  it('names a bad argument (exit 2) before it looks at the lock, while another process holds the folder', async () => {
    // This test process holds the folder, as a running `tradecore start` would.
    const lock = await lockDataFolder(dataDir, { command: 'tradecore start' });
    try {
      const cases: Array<[string[], string]> = [
        [['projections', 'rebuild', 'nope'], 'unknown projection "nope" (known: orders, wallets,'],
        [
          ['audit', 'state', 'trade-x'],
          'state is rebuilt for account-, wallet-, order-, instrument-, book- streams',
        ],
        [['audit', 'stream', 'nope-1'], 'stream "nope-1" has no known prefix'],
        [
          ['audit', 'trace', 'req-1', '--cursor', 'forged'],
          '--cursor is not one that audit trace req-1 gave out',
        ],
        [['serve', 'nope'], 'unknown service "nope"'],
      ];
      for (const [args, message] of cases) {
        const refused = await tradecore(...args);
        expect(refused.code, `${args.join(' ')}: ${refused.stderr}`).toBe(2);
        // One line: what was wrong, and where the usage is.
        expect(refused.stderr.trimEnd().split('\n')).toEqual([expect.stringContaining(message)]);
        expect(refused.stderr).toContain('(tradecore help shows the usage)');
        expect(refused.stderr).not.toContain('in use by pid');
      }
      // A good argument still meets the lock.
      const held = await tradecore('projections', 'rebuild', 'wallets');
      expect(held.code).toBe(1);
      expect(held.stderr).toContain(`in use by pid ${process.pid}`);
    } finally {
      await lock.release();
    }
  }, 120_000);

  it('keeps serving when the reader of its stdout goes away (npm start | grep -m1 listening)', async () => {
    // Its log lines on stdout too: pino's stream meets the closed pipe as well.
    const child = spawn(process.execPath, [bin, 'start'], { env: env({ LOG_LEVEL: 'info' }) });
    servers.push(child);
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    let exitCode: number | null | undefined;
    const exited = new Promise<number | null>((resolve) =>
      child.on('exit', (code) => {
        exitCode = code;
        resolve(code);
      }),
    );
    // Where it listens, from the lock it advertises that in (its banner goes nowhere).
    let url: string | undefined;
    while (url === undefined && exitCode === undefined) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      url = existsSync(lockPath)
        ? (JSON.parse(await readFile(lockPath, 'utf8').catch(() => '{}')) as { url?: string }).url
        : undefined;
    }
    expect(exitCode, stderr).toBeUndefined();
    for (let request = 0; request < 5; request++)
      expect((await fetch(`${url}/v1/instruments`)).status).toBe(401);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect((await fetch(`${url}/health/ready`)).status).toBe(200);
    expect(exitCode, stderr).toBeUndefined();
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(stderr).toBe('');
    expect(existsSync(lockPath)).toBe(false);
  }, 120_000);

  it('takes over the lock of a start killed with -9, saying so, and replays', async () => {
    const server = await startServer();
    const pid = server.child.pid!;
    server.child.kill('SIGKILL');
    await server.exited;
    expect(JSON.parse(await readFile(lockPath, 'utf8')).pid).toBe(pid);

    const replay = await tradecore('replay');
    expect(replay.code, replay.stderr).toBe(0);
    expect(replay.stderr).toContain(
      `tradecore: took over the lock on ${dataDir} left by pid ${pid} (tradecore start), which is no longer running`,
    );
    expect(replay.stdout).toMatch(/rebuilt orders: \d+ events/);
    expect(existsSync(lockPath)).toBe(false);
  }, 120_000);
});

describe('a data folder tradecore cannot use, or that holds no tradecore data', () => {
  let scratch: string;
  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'tradecore-cli-folder-'));
  });
  afterAll(() => rm(scratch, { recursive: true, force: true }));

  it('names TRADECORE_DATA_DIR and the problem in one line, exit 1, when it is a file or under one', async () => {
    const file = join(scratch, 'afile');
    await writeFile(file, '');
    for (const [folder, problem] of [
      [file, 'is a file, not a folder'],
      [join(file, 'sub'), 'cannot be a folder: part of its path is a file (ENOTDIR)'],
    ] as const)
      for (const args of [['projections', 'status'], ['start'], ['audit', 'stream', 'wallet-x']]) {
        const refused = await tradecoreWith({ TRADECORE_DATA_DIR: folder }, {}, ...args);
        expect(refused.code, args.join(' ')).toBe(1);
        expect(refused.stderr, args.join(' ')).toBe(`tradecore: TRADECORE_DATA_DIR=${folder} ${problem}\n`);
        expect(refused.stdout).not.toContain('listening');
      }
  }, 120_000);

  it('says a data folder it may not write is not writable', async () => {
    // A folder of root's that nobody may write in (or, not as root, one made read-only).
    const readOnly = join(scratch, 'read-only');
    await mkdir(join(readOnly, 'broker-events'), { recursive: true });
    await chmod(scratch, 0o755);
    await chmod(readOnly, process.getuid?.() === 0 ? 0o755 : 0o555);
    try {
      for (const args of [['projections', 'status'], ['start']]) {
        const refused = await tradecoreWith({ TRADECORE_DATA_DIR: readOnly }, { asNobody: true }, ...args);
        expect(refused.code, args.join(' ')).toBe(1);
        expect(refused.stderr).toBe(`tradecore: TRADECORE_DATA_DIR=${readOnly} is not writable (EACCES)\n`);
      }
    } finally {
      await chmod(readOnly, 0o755);
    }
  }, 120_000);

  it('refuses, rather than makes, a data folder that is not there or holds no tradecore data (only start makes one)', async () => {
    const typo = join(scratch, 'tradecroe');
    const empty = join(scratch, 'empty');
    await mkdir(empty);
    for (const folder of [typo, empty])
      for (const args of [
        ['projections', 'status'],
        ['projections', 'rebuild', 'wallets'],
        ['replay'],
        ['audit', 'stream', 'wallet-x'],
        ['audit', 'state', 'wallet-x'],
        ['audit', 'trace', 'req-1'],
      ]) {
        const refused = await tradecoreWith({ TRADECORE_DATA_DIR: folder }, {}, ...args);
        expect(refused.code, `${folder}: ${args.join(' ')}`).toBe(1);
        expect(refused.stderr).toBe(
          `tradecore: no tradecore data folder at ${folder} (TRADECORE_DATA_DIR): start tradecore there first\n`,
        );
      }
    // Nothing was made in its place.
    expect(existsSync(typo)).toBe(false);
    expect(await readdir(empty)).toEqual([]);
  }, 180_000);
});
