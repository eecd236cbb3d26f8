import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redactUrl } from './redact.ts';
import { startTestApi, type TestApi } from './testing.ts';

/** Log lines as the process would print them, parsed. */
const lines: Array<Record<string, unknown>> = [];
const sink = new Writable({
  write(chunk, _encoding, done) {
    for (const line of String(chunk).split('\n')) if (line.trim() !== '') lines.push(JSON.parse(line));
    done();
  },
});

let api: TestApi;
let alice: { accountId: string; token: string };

beforeAll(async () => {
  api = await startTestApi({ readModels: false, logger: pino({ level: 'info' }, sink) });
  alice = await api.trader('edge-alice');
}, 180_000);
afterAll(async () => api?.close());

describe('a token in the query (?access_token=, for browser WebSockets)', () => {
  it('is never written to the logs, on the stream route or any other', async () => {
    lines.length = 0;
    for (const url of [
      `/v1/stream?symbols=PETR4&access_token=${alice.token}`,
      `/v1/orders?access_token=${alice.token}`,
      `/v1/orders?access%5Ftoken=${alice.token}&limit=5`,
    ])
      await api.app.inject({ method: 'GET', url });
    const incoming = lines.filter((line) => line.msg === 'incoming request');
    expect(incoming.map((line) => (line.req as { url: string }).url)).toEqual([
      '/v1/stream?symbols=PETR4&access_token=[redacted]',
      '/v1/orders?access_token=[redacted]',
      '/v1/orders?access%5Ftoken=[redacted]&limit=5',
    ]);
    const logged = lines.map((line) => JSON.stringify(line)).join('\n');
    // A JWT's signature: the part that makes it a credential.
    expect(logged).not.toContain(alice.token.split('.')[2]);
  });

  it('is not echoed in a problem either', async () => {
    const refused = await api.app.inject({ method: 'GET', url: '/v1/orders?access_token=forged-token' });
    expect(refused.statusCode).toBe(401);
    expect(refused.json().instance).toBe('/v1/orders?access_token=[redacted]');
  });

  it('leaves other query parameters and URLs without a query as they are', () => {
    expect(redactUrl('/v1/orders')).toBe('/v1/orders');
    expect(redactUrl('/v1/orders?limit=5&status=NEW')).toBe('/v1/orders?limit=5&status=NEW');
    expect(redactUrl('/v1/stream?ACCESS_TOKEN=x&symbols=PETR4')).toBe(
      '/v1/stream?ACCESS_TOKEN=[redacted]&symbols=PETR4',
    );
  });
});
