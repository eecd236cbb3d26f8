/**
 * `tradecore start` where it cannot listen, as a user runs it: one line saying why, exit code 1,
 * at once (before the stores open), and nothing left behind in the data folder.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { occupiedPort } from '../all-in-one/testing.ts';
import { LOCK_FILE } from '../shared/data-lock.ts';

const bin = fileURLToPath(new URL('./bin.js', import.meta.url));
let dataDir: string;
let fixture: Awaited<ReturnType<typeof occupiedPort>> | undefined;
let port: number;

function tradecore(extra: Record<string, string>, ...args: string[]) {
  const env = { PATH: process.env.PATH, HOME: process.env.HOME, TRADECORE_DATA_DIR: dataDir, ...extra };
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      [bin, ...args],
      { env, cwd: dataDir, timeout: 60_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

beforeAll(async () => {
  fixture = await occupiedPort('tradecore-listen-');
  ({ dataDir, port } = fixture);
});
afterAll(() => fixture?.release());

describe('tradecore start where it cannot listen', () => {
  it('says in one line that the port is in use, at once, and leaves the data folder as it was', async () => {
    const result = await tradecore({ PORT: String(port), LOG_LEVEL: 'silent' }, 'start');
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split('\n')).toEqual([
      `tradecore: cannot listen on 127.0.0.1:${port}: the port is in use (stop what uses it, or set PORT to another port)`,
    ]);
    expect(result.stdout).toBe('');
    // Before the stores open (the slow part): no lock taken, no admin password generated and lost.
    expect(existsSync(join(dataDir, LOCK_FILE))).toBe(false);
    expect(existsSync(join(dataDir, 'admin-password'))).toBe(false);
  }, 60_000);

  it('says in one line that a HOST does not resolve', async () => {
    const result = await tradecore({ HOST: 'not-a-host.invalid', PORT: '0', LOG_LEVEL: 'silent' }, 'start');
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split('\n')).toEqual([
      'tradecore: cannot listen on not-a-host.invalid:0: the host "not-a-host.invalid" does not resolve (set HOST to an address, e.g. 127.0.0.1)',
    ]);
  }, 60_000);
});
