import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from './config.ts';
import {
  DataFolderLocked,
  LOCK_FILE,
  type LockHolder,
  lockDataFolder,
  lockEmbeddedDataFolder,
  readHolder,
} from './data-lock.ts';

/**
 * The data folder's lock between real processes: holders are child processes, so "alive" and
 * "dead" are what the operating system says, not a mock.
 */
let dataDir: string;
let lockPath: string;
const children: ChildProcess[] = [];
beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'tradecore-lock-'));
  lockPath = join(dataDir, LOCK_FILE);
});
afterEach(async () => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
  await rm(dataDir, { recursive: true, force: true });
});

/** A process that stays alive until the test ends. */
function liveProcess(): number {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  children.push(child);
  return child.pid!;
}

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  await new Promise((resolve) => child.on('exit', resolve));
  return child.pid!;
}

function lockFileOf(pid: number, extra: Partial<LockHolder> = {}): string {
  return JSON.stringify({
    pid,
    hostname: hostname(),
    command: 'tradecore start',
    since: '2026-01-05T13:00:00.000Z',
    serves: true,
    nonce: `holder-${pid}`,
    ...extra,
  });
}

describe('the data folder lock', () => {
  it('names this process in the lock file, and removes it on release so the next one gets in', async () => {
    const lock = await lockDataFolder(dataDir, { command: 'tradecore replay' });
    expect(await readHolder(lockPath)).toMatchObject({
      pid: process.pid,
      command: 'tradecore replay',
      serves: false,
    });
    await lock.release();
    expect(existsSync(lockPath)).toBe(false);
    const next = await lockDataFolder(dataDir);
    expect((await readHolder(lockPath))?.pid).toBe(process.pid);
    await next.release();
  });

  it('refuses while another live process holds it, naming the folder, the holder and the API to use', async () => {
    const pid = liveProcess();
    await writeFile(lockPath, lockFileOf(pid, { url: 'http://127.0.0.1:8080' }));
    const refused = await lockDataFolder(dataDir).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(DataFolderLocked);
    const message = (refused as Error).message;
    expect(message).toContain(`data folder ${dataDir} is in use by pid ${pid} (tradecore start`);
    expect(message).toContain('stop that process first');
    expect(message).toContain('HTTP API at http://127.0.0.1:8080');
    expect(message).toContain('POST /v1/admin/projections/{name}/rebuild');
    expect(message).not.toContain('\n');
    // The holder's lock is left as it was.
    expect((await readHolder(lockPath))?.nonce).toBe(`holder-${pid}`);
  });

  it('tells a command held up by another command to wait, not to use an API it does not serve', async () => {
    const pid = liveProcess();
    await writeFile(lockPath, lockFileOf(pid, { command: 'tradecore replay', serves: false }));
    const refused = (await lockDataFolder(dataDir).catch((error: unknown) => error)) as Error;
    expect(refused.message).toContain(`pid ${pid} (tradecore replay`);
    expect(refused.message).toContain('or wait for it to finish');
    expect(refused.message).not.toContain('/v1/admin');
  });

  it('refuses a second holder in the same process too', async () => {
    const lock = await lockDataFolder(dataDir);
    await expect(lockDataFolder(dataDir)).rejects.toThrow(`is in use by pid ${process.pid}`);
    await lock.release();
  });

  it('takes over a lock left by a process that died, and says so', async () => {
    const pid = await deadPid();
    await writeFile(lockPath, lockFileOf(pid));
    const said: string[] = [];
    const lock = await lockDataFolder(dataDir, { log: (line) => said.push(line) });
    expect((await readHolder(lockPath))?.pid).toBe(process.pid);
    expect(said).toEqual([
      `took over the lock on ${dataDir} left by pid ${pid} (tradecore start), which is no longer running`,
    ]);
    await lock.release();
  });

  it('takes over a lock in its own pid that it does not hold: a restarted container’s earlier life', async () => {
    await writeFile(lockPath, lockFileOf(process.pid));
    const lock = await lockDataFolder(dataDir);
    expect((await readHolder(lockPath))?.nonce).not.toBe(`holder-${process.pid}`);
    await lock.release();
  });

  it('takes over an unreadable lock file', async () => {
    await writeFile(lockPath, '{"pid": 12');
    const said: string[] = [];
    const lock = await lockDataFolder(dataDir, { log: (line) => said.push(line) });
    expect((await readHolder(lockPath))?.pid).toBe(process.pid);
    expect(said[0]).toContain('took over the unreadable lock');
    await lock.release();
  });

  it('refuses a lock from another host, whose pid it cannot check, and names the file to delete', async () => {
    await writeFile(lockPath, lockFileOf(await deadPid(), { hostname: 'elsewhere' }));
    await expect(lockDataFolder(dataDir)).rejects.toThrow(
      `on host elsewhere, which cannot be checked from here: stop it there, or if it no longer runs, delete ${lockPath}`,
    );
  });

  it('never releases a lock that is no longer its own', async () => {
    const lock = await lockDataFolder(dataDir);
    const other = lockFileOf(liveProcess());
    await writeFile(lockPath, other);
    await lock.release();
    expect(await readFile(lockPath, 'utf8')).toBe(other);
  });

  it('lets exactly one of several processes racing for a stale lock have it', async () => {
    await writeFile(lockPath, lockFileOf(await deadPid()));
    const module = fileURLToPath(new URL('./data-lock.ts', import.meta.url));
    // Each contender tries once, reports, and holds what it got until every one has reported.
    const contender = `
      const { lockDataFolder } = await import(${JSON.stringify(module)});
      try { await lockDataFolder(${JSON.stringify(dataDir)}); console.log('locked'); }
      catch (error) { console.log(error.name); }
      process.stdin.resume();`;
    const racing = Array.from({ length: 6 }, () => {
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', contender]);
      children.push(child);
      let output = '';
      child.stdout.on('data', (chunk) => {
        output += chunk;
      });
      const reported = new Promise<string>((resolve, reject) => {
        child.stdout.on('data', () => output.includes('\n') && resolve(output.trim()));
        child.on('exit', (code) => reject(new Error(`contender exited (${code}) before reporting`)));
      });
      const exited = new Promise((resolve) => child.on('exit', resolve));
      return { child, reported, exited };
    });
    const outcomes = await Promise.all(racing.map((contender) => contender.reported));
    for (const { child } of racing) child.stdin.end();
    await Promise.all(racing.map((contender) => contender.exited));
    expect(outcomes.filter((outcome) => outcome === 'locked')).toHaveLength(1);
    expect(outcomes.filter((outcome) => outcome === 'DataFolderLocked')).toHaveLength(5);
    // The winner released it on exit.
    expect(existsSync(lockPath)).toBe(false);
  }, 40_000);
});

describe('which configurations lock the data folder', () => {
  const connected = {
    DATABASE_URL: 'postgres://localhost/tradecore',
    MYSQL_URL: 'mysql://localhost/tradecore',
    MONGO_URL: 'mongodb://localhost/tradecore',
  };

  it('embedded: locks it', async () => {
    const lock = await lockEmbeddedDataFolder(
      loadConfig({ TRADECORE_DATA_DIR: dataDir }),
      { eventStores: true, readModels: true },
      { serves: true },
    );
    expect(lock?.path).toBe(lockPath);
    expect((await readHolder(lockPath))?.serves).toBe(true);
    await lock?.release();
  });

  it('connected, every store by URL: takes no lock and leaves the folder alone', async () => {
    const config = loadConfig({ TRADECORE_DATA_DIR: dataDir, ...connected });
    expect(await lockEmbeddedDataFolder(config, { eventStores: true, readModels: true })).toBeUndefined();
    expect(existsSync(lockPath)).toBe(false);
  });

  it('locks when only what the command opens is embedded', async () => {
    // ESDB for events, no DATABASE_URL: the Postgres read models fall back to PGlite in the folder.
    const esdb = loadConfig({
      TRADECORE_DATA_DIR: dataDir,
      ESDB_URL: 'esdb://localhost:2113',
      MYSQL_URL: connected.MYSQL_URL,
      MONGO_URL: connected.MONGO_URL,
    });
    expect(await lockEmbeddedDataFolder(esdb, { eventStores: true })).toBeUndefined();
    const lock = await lockEmbeddedDataFolder(esdb, { readModels: true });
    expect(lock).toBeDefined();
    await lock?.release();
    // Event stores by URL, read models embedded: `audit stream` opens only the event stores.
    const eventsOnly = loadConfig({ TRADECORE_DATA_DIR: dataDir, DATABASE_URL: connected.DATABASE_URL });
    expect(await lockEmbeddedDataFolder(eventsOnly, { eventStores: true })).toBeUndefined();
  });
});
