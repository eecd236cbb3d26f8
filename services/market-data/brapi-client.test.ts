import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BrapiClient, CircuitOpen } from './brapi-client.ts';

/** A local stand-in for Brapi: answers from a script of responses, one per request. */
describe('Brapi client', () => {
  let server: Server;
  let baseUrl: string;
  const script: Array<{ status: number; body?: unknown; delayMs?: number }> = [];
  const seen: Array<{ url: string; authorization?: string }> = [];

  beforeAll(async () => {
    server = createServer((request, response) => {
      seen.push({ url: request.url ?? '', authorization: request.headers.authorization });
      const next = script.shift() ?? { status: 500 };
      setTimeout(() => {
        response.writeHead(next.status, { 'content-type': 'application/json' });
        response.end(JSON.stringify(next.body ?? {}));
      }, next.delayMs ?? 0);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const ok = {
    status: 200,
    body: {
      results: [{ symbol: 'PETR4', regularMarketPrice: 32.51, regularMarketTime: '2025-03-14T13:00:00Z' }],
    },
  };

  it('reads quotes, with the token as a bearer token', async () => {
    script.push(ok);
    const client = new BrapiClient({ baseUrl, token: 'secret' });
    expect(await client.quotes(['PETR4'])).toEqual([
      { symbol: 'PETR4', price: 32_51, at: Date.parse('2025-03-14T13:00:00Z'), source: 'brapi' },
    ]);
    expect(seen.at(-1)).toEqual({ url: '/api/quote/PETR4', authorization: 'Bearer secret' });
  });

  it('retries a failure and a timeout, then succeeds', async () => {
    script.push({ status: 502 }, { ...ok, delayMs: 500 }, ok);
    const client = new BrapiClient({ baseUrl, timeoutMs: 100, retryDelayMs: 10, attempts: 3 });
    expect(await client.quotes(['PETR4'])).toHaveLength(1);
  });

  it('opens the circuit after consecutive failed fetches, and closes it after the cool-down', async () => {
    let now = 0;
    const client = new BrapiClient({
      baseUrl,
      attempts: 1,
      failureThreshold: 2,
      openForMs: 1_000,
      now: () => now,
    });
    script.push({ status: 500 }, { status: 500 });
    await expect(client.quotes(['PETR4'])).rejects.toThrow(/500/);
    await expect(client.quotes(['PETR4'])).rejects.toThrow(/500/);
    const requests = seen.length;
    await expect(client.quotes(['PETR4'])).rejects.toThrow(CircuitOpen);
    expect(seen.length).toBe(requests);
    now = 1_001;
    script.push(ok);
    expect(client.circuit).toBe('closed');
    expect(await client.quotes(['PETR4'])).toHaveLength(1);
  });
});
