import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../shared/config.ts';
import { startTradecore } from './main.ts';

let dataDir: string;
beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'tradecore-admin-password-'));
});
afterAll(async () => rm(dataDir, { recursive: true, force: true }));

async function login(url: string, password: string): Promise<number> {
  const response = await fetch(`${url}/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'admin', password }),
  });
  return response.status;
}

describe('the admin password, from generated to TRADECORE_ADMIN_PASSWORD', () => {
  it('removes the generated one, which no longer works, and logs that it did', async () => {
    const config = (extra: Record<string, string>) =>
      loadConfig({
        TRADECORE_DATA_DIR: dataDir,
        PORT: '0',
        LOG_LEVEL: 'info',
        QUOTE_SOURCE: 'off',
        ...extra,
      });
    const passwordFile = join(dataDir, 'admin-password');

    const first = await startTradecore(config({}), pino({ level: 'silent' }));
    const generated = (await readFile(passwordFile, 'utf8')).trim();
    expect(await login(first.url, generated)).toBe(200);
    await first.stop();

    const lines: Array<Record<string, unknown>> = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n')) if (line.trim() !== '') lines.push(JSON.parse(line));
        done();
      },
    });
    const second = await startTradecore(
      config({ TRADECORE_ADMIN_PASSWORD: 'from-the-environment' }),
      pino({ level: 'info' }, sink),
    );
    try {
      expect(await login(second.url, 'from-the-environment')).toBe(200);
      expect(await login(second.url, generated)).toBe(401);
      expect(existsSync(passwordFile)).toBe(false);
      expect(lines).toContainEqual(
        expect.objectContaining({
          level: 40,
          file: passwordFile,
          msg: 'removed the admin password an earlier start generated: TRADECORE_ADMIN_PASSWORD is the admin password now',
        }),
      );
      expect(second.banner.join('\n')).toContain('the value of TRADECORE_ADMIN_PASSWORD');
      expect(lines).toContainEqual(
        expect.objectContaining({
          level: 40,
          from: 'TRADECORE_ADMIN_PASSWORD',
          msg: "changed the admin's password to the configured one: tokens issued before no longer work",
        }),
      );
    } finally {
      await second.stop();
    }

    // Without the variable again, and no file: nothing replaces the password the admin has.
    lines.length = 0;
    const third = await startTradecore(config({}), pino({ level: 'info' }, sink));
    try {
      expect(await login(third.url, 'from-the-environment')).toBe(200);
      expect(existsSync(passwordFile)).toBe(false);
      expect(third.banner.join('\n')).toContain(
        'the one set before (TRADECORE_ADMIN_PASSWORD sets a new one)',
      );
      expect(lines).toContainEqual(
        expect.objectContaining({
          level: 40,
          msg: 'the admin account has a password set before, which this start keeps: TRADECORE_ADMIN_PASSWORD sets a new one',
        }),
      );
    } finally {
      await third.stop();
    }

    // A file edited to a password the login would refuse stops the start, naming the file.
    await writeFile(passwordFile, 'abc\n');
    await expect(startTradecore(config({}), pino({ level: 'silent' }))).rejects.toThrow(
      `${passwordFile}: the admin password in it must be 8 to 200 characters (it has 3)`,
    );
  }, 120_000);
});
