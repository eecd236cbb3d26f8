/**
 * The embedded data folder's lock. PGlite is one process's database: a second process opening the
 * same folder reads it half-written and can corrupt it. So whatever opens PGlite in the folder
 * (`tradecore start`, the replay, projections and audit commands) first places
 * `tradecore.lock` in it, naming its pid and command, and a second opener is refused with a
 * message saying who holds it and what to do instead.
 *
 * A lock left by a process that died without releasing it (kill -9, a crash, a container that
 * restarted) is recognised by its pid no longer running (or, on Linux, running a process that
 * started later: a reused pid) and taken over, with a line saying so. Not `proper-lockfile`: it
 * judges staleness by an mtime the holder must keep touching, so a long replay that keeps the
 * event loop busy could lose its lock, and it records no pid or command to name in the refusal.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync, unlinkSync } from 'node:fs';
import { link, mkdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import {
  type Config,
  ConfigError,
  EMBEDDED_DATABASES,
  embeddedEventStores,
  embeddedReadModelStores,
} from './config.ts';

export const LOCK_FILE = 'tradecore.lock';

/** TRADECORE_DATA_DIR names something tradecore cannot keep its data in: a file, a folder it may not write. */
export class DataFolderUnusable extends ConfigError {}

/**
 * A command that reads the data folder (replay, projections, audit) was pointed at one with no
 * tradecore data: a typo in TRADECORE_DATA_DIR, or the wrong working folder for the default. Only
 * `start` (and `serve`) make one.
 */
export class NoDataFolder extends ConfigError {
  constructor(readonly dataDir: string) {
    super(
      `no tradecore data folder at ${resolve(dataDir)} (TRADECORE_DATA_DIR): start tradecore there first`,
    );
  }
}

/** What the lock file says about its holder. */
export interface LockHolder {
  pid: number;
  hostname: string;
  command: string;
  since: string;
  /** True for a process serving the HTTP API (`tradecore start`): a refusal points at the API. */
  serves: boolean;
  /** Where that API listens, once it does. */
  url?: string;
  /** Linux: the process's start time in clock ticks after boot, which tells a reused pid apart. */
  processStart?: string;
  /** This holding, so that a release or takeover never removes another process's lock. */
  nonce: string;
}

export class DataFolderLocked extends Error {
  override readonly name = 'DataFolderLocked';
  constructor(
    readonly dataDir: string,
    readonly holder: LockHolder,
  ) {
    super(refusal(dataDir, holder));
  }
}

export interface DataFolderLock {
  readonly path: string;
  /** Tells later openers where this process's HTTP API listens. */
  advertise(url: string): Promise<void>;
  release(): Promise<void>;
}

export interface LockOptions {
  /**
   * `false`: the folder must already hold tradecore's databases (NoDataFolder otherwise), for the
   * commands that read it; `start` makes it (the default).
   */
  create?: boolean;
  /** What to name this process by in a refusal; the command line by default. */
  command?: string;
  serves?: boolean;
  /** Where to say that a stale lock was taken over. */
  log?: (line: string) => void;
}

/** Locks held by this process: lock path → nonce, released on exit if nobody did before. */
const held = new Map<string, string>();
let exitHookInstalled = false;

/**
 * The lock on the data folder, when the config opens anything in it: event stores without
 * DATABASE_URL or ESDB_URL, read models without all of their URLs. Undefined when connected.
 */
export async function lockEmbeddedDataFolder(
  config: Config,
  opens: { eventStores?: boolean; readModels?: boolean },
  options: LockOptions = {},
): Promise<DataFolderLock | undefined> {
  const embedded =
    (opens.eventStores === true && embeddedEventStores(config)) ||
    (opens.readModels === true && embeddedReadModelStores(config));
  return embedded ? lockDataFolder(config.dataDir, options) : undefined;
}

/** Places the lock in `dataDir`, taking over a stale one; throws DataFolderLocked if it is held. */
export async function lockDataFolder(dataDir: string, options: LockOptions = {}): Promise<DataFolderLock> {
  await (options.create === false ? existingDataFolder(dataDir) : ensureDataFolder(dataDir));
  const path = join(dataDir, LOCK_FILE);
  let record: LockHolder = {
    pid: process.pid,
    hostname: hostname(),
    command: options.command ?? currentCommand(),
    since: new Date().toISOString(),
    serves: options.serves === true,
    processStart: processStart(process.pid),
    nonce: randomUUID(),
  };
  // Each pass either places the lock, refuses, or clears a stale one for the next pass.
  for (let attempt = 0; attempt < 5; attempt++) {
    if (await place(path, record)) {
      held.set(path, record.nonce);
      installExitHook();
      return {
        path,
        async advertise(url) {
          if (held.get(path) !== record.nonce) return;
          record = { ...record, url };
          const temporary = `${path}.${record.nonce}.tmp`;
          await writeFile(temporary, JSON.stringify(record));
          await rename(temporary, path);
        },
        async release() {
          if (held.get(path) !== record.nonce) return;
          held.delete(path);
          if ((await readHolder(path))?.nonce === record.nonce) await unlink(path).catch(ignoreMissing);
        },
      };
    }
    const holder = await readHolder(path);
    if (holder === undefined) continue; // released in between: try again
    if (held.get(path) !== holder.nonce) {
      const state = holder.pid === 0 ? 'dead' : liveness(holder);
      if (state === 'dead') {
        if (await takeOver(path, holder))
          options.log?.(
            holder.pid === 0
              ? `took over the unreadable lock ${path}`
              : `took over the lock on ${dataDir} left by pid ${holder.pid} (${holder.command}), which is no longer running`,
          );
        continue;
      }
    }
    throw new DataFolderLocked(dataDir, holder);
  }
  throw new Error(`could not lock ${dataDir}: ${path} keeps changing hands`);
}

/**
 * Makes the data folder if it is not there. A path tradecore cannot use is a DataFolderUnusable
 * naming TRADECORE_DATA_DIR and the problem, in one line, instead of node's EEXIST and a stack.
 */
export async function ensureDataFolder(dataDir: string): Promise<void> {
  if ((await folderState(dataDir)) !== 'missing') return;
  try {
    await mkdir(dataDir, { recursive: true });
  } catch (error) {
    throw unusable(dataDir, error);
  }
}

/** Refuses a data folder that is not there, or holds none of tradecore's databases (NoDataFolder). */
async function existingDataFolder(dataDir: string): Promise<void> {
  if ((await folderState(dataDir)) === 'missing') throw new NoDataFolder(dataDir);
  // A lock counts: a `start` that has just taken a fresh folder is yet to make its databases.
  const present = await Promise.all(
    [...Object.values(EMBEDDED_DATABASES), LOCK_FILE].map((name) =>
      stat(join(dataDir, name)).then(
        () => true,
        () => false,
      ),
    ),
  );
  if (!present.includes(true)) throw new NoDataFolder(dataDir);
}

async function folderState(dataDir: string): Promise<'folder' | 'missing'> {
  try {
    if ((await stat(dataDir)).isDirectory()) return 'folder';
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    throw unusable(dataDir, error);
  }
  throw new DataFolderUnusable(`TRADECORE_DATA_DIR=${dataDir} is a file, not a folder`);
}

/** The DataFolderUnusable an error of the file system means, or the error itself when it means none. */
function unusable(dataDir: string, error: unknown): unknown {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOTDIR' || code === 'EEXIST')
    return new DataFolderUnusable(
      `TRADECORE_DATA_DIR=${dataDir} cannot be a folder: part of its path is a file (${code})`,
    );
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS')
    return new DataFolderUnusable(`TRADECORE_DATA_DIR=${dataDir} is not writable (${code})`);
  return error;
}

/** The holder named in the folder's lock file, if there is one. */
export async function readHolder(path: string): Promise<LockHolder | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  try {
    const parsed = JSON.parse(text) as LockHolder;
    if (Number.isSafeInteger(parsed.pid) && parsed.pid > 0 && typeof parsed.nonce === 'string') return parsed;
  } catch {}
  // Not ours to read (edited, truncated by a full disk): nobody can be holding it.
  return { pid: 0, hostname: hostname(), command: '?', since: '?', serves: false, nonce: text };
}

/** The whole record appears at once (a hard link to a written file), or not at all. */
async function place(path: string, record: LockHolder): Promise<boolean> {
  const temporary = `${path}.${record.nonce}.tmp`;
  try {
    await writeFile(temporary, JSON.stringify(record));
  } catch (error) {
    throw unusable(dirname(path), error);
  }
  try {
    await link(temporary, path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  } finally {
    await unlink(temporary).catch(ignoreMissing);
  }
}

/**
 * Moves the stale lock aside, atomically, so that of two processes taking it over at once only one
 * removes it. If what was moved is not the stale lock (another process took over and placed its
 * own in between), it is linked back.
 */
async function takeOver(path: string, stale: LockHolder): Promise<boolean> {
  const aside = `${path}.stale-${process.pid}-${randomUUID()}`;
  try {
    await rename(path, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
  const moved = await readHolder(aside);
  const wasStale = moved?.nonce === stale.nonce;
  if (!wasStale) await link(aside, path).catch(() => {});
  await unlink(aside).catch(ignoreMissing);
  return wasStale;
}

/** 'unknown' when the holder ran on another host (or container), whose pids mean nothing here. */
function liveness(holder: LockHolder): 'alive' | 'dead' | 'unknown' {
  if (holder.hostname !== hostname()) return 'unknown';
  // Our own pid, yet not held by us: a previous life of this process's pid (a container restart).
  if (holder.pid === process.pid) return 'dead';
  try {
    process.kill(holder.pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return 'dead';
  }
  const started = processStart(holder.pid);
  if (holder.processStart && started && started !== holder.processStart) return 'dead';
  return 'alive';
}

/** Field 22 of /proc/<pid>/stat; undefined where there is no /proc. */
function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: count from after it.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function refusal(dataDir: string, holder: LockHolder): string {
  const who = `pid ${holder.pid} (${holder.command}, since ${holder.since})`;
  if (holder.hostname !== hostname())
    return `data folder ${dataDir} is locked by ${who} on host ${holder.hostname}, which cannot be checked from here: stop it there, or if it no longer runs, delete ${join(dataDir, LOCK_FILE)}`;
  const instead = holder.serves
    ? `or while it runs use its HTTP API${holder.url ? ` at ${holder.url}` : ''} instead: GET /v1/admin/projections, POST /v1/admin/projections/{name}/rebuild, GET /v1/audit/streams/{streamId}, GET /v1/audit/trace/{correlationId}`
    : 'or wait for it to finish';
  return `data folder ${dataDir} is in use by ${who}, and only one process may open it at a time: stop that process first, ${instead}`;
}

/** `tradecore replay` for the CLI, else the command line as started. */
function currentCommand(): string {
  const [runtime = 'node', script = '', ...args] = process.argv;
  if (/(services[\\/]cli[\\/](bin\.js|main\.ts)|[\\/]tradecore)$/.test(script))
    return ['tradecore', ...args].join(' ');
  return [basename(runtime), script, ...args].join(' ').trim();
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // process.exit (the CLI's end, a forced stop) skips the finally blocks that release.
  process.on('exit', () => {
    for (const [path, nonce] of held)
      try {
        if (JSON.parse(readFileSync(path, 'utf8')).nonce === nonce) unlinkSync(path);
      } catch {}
  });
}

function ignoreMissing(error: unknown): void {
  if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
}
