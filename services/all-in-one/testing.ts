import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** What the tests of `tradecore start` share: a JSON client for its HTTP API, and waiting on it. */

/** Calls `url` as a user's HTTP client would: JSON in and out, an optional bearer token. */
export function client(url: string) {
  return async (
    method: string,
    path: string,
    options: { token?: string; body?: unknown; headers?: Record<string, string> } = {},
  ) => {
    const response = await fetch(`${url}${path}`, {
      method,
      headers: {
        ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
        ...options.headers,
      },
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
    });
    const text = await response.text();
    return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : undefined };
  };
}

/** Reads until `ok` holds or `timeoutMs` passed; the last value read either way, for the test to check. */
export async function until<T>(
  read: () => Promise<T>,
  ok: (value: T) => boolean,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (ok(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A fresh data folder and a loopback port another server holds: a start that cannot listen. */
export async function occupiedPort(
  folderPrefix: string,
): Promise<{ dataDir: string; port: number; release(): Promise<void> }> {
  const dataDir = await mkdtemp(join(tmpdir(), folderPrefix));
  const occupied = createServer();
  await new Promise<void>((resolve) => occupied.listen(0, '127.0.0.1', resolve));
  return {
    dataDir,
    port: (occupied.address() as { port: number }).port,
    async release() {
      await new Promise((resolve) => occupied.close(resolve));
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
