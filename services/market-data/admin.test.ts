import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenIssuer } from '../api/auth.ts';
import type { Problem } from '../api/problem.ts';
import { brokerWithAccount } from '../api/testing.ts';
import { startOpsServer } from '../shared/ops-server.ts';
import { marketDataAdminRoutes } from './admin.ts';

const tokens = new TokenIssuer('a-test-secret-of-enough-length-0123456789', 3_600);
const switched: boolean[] = [];
let ops: { url: string; close(): Promise<void> };
let accounts: Awaited<ReturnType<typeof brokerWithAccount>>;
beforeAll(async () => {
  accounts = await brokerWithAccount('acc-1', ['admin']);
  // The market-data service's own port as `serve market-data` starts it, on a free port.
  ops = await startOpsServer({
    port: 0,
    host: '127.0.0.1',
    logger: pino({ level: 'silent' }),
    readiness: {},
    routes: (app) =>
      marketDataAdminRoutes(app, {
        feed: { setQuotesEnabled: (on) => void switched.push(on) },
        auth: { tokens, broker: accounts.broker },
      }),
  });
});
afterAll(async () => {
  await ops.close();
  await accounts.close();
});

const switchQuotes = async (body: string, headers: Record<string, string> = {}) => {
  const { token } = await tokens.issue({ accountId: 'acc-1', username: 'someone', roles: ['admin'] });
  const response = await fetch(`${ops.url}/v1/admin/market/quotes`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...headers },
    body,
  });
  return { status: response.status, headers: response.headers, body: (await response.json()) as Problem };
};

describe("the market-data service's quote switch", () => {
  it('switches the quotes for an admin', async () => {
    const answer = await switchQuotes('{"enabled":false}');
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({ enabled: false });
    expect(switched).toEqual([false]);
  });

  it('refuses a body that is not JSON as the API does: INVALID_JSON, with its correlation id', async () => {
    const answer = await switchQuotes('{bad', { 'x-correlation-id': 'corr-md-1' });
    expect(answer.status).toBe(400);
    expect(answer.headers.get('content-type')).toContain('application/problem+json');
    expect(answer.headers.get('x-correlation-id')).toBe('corr-md-1');
    expect(answer.body).toMatchObject({
      status: 400,
      reason: 'INVALID_JSON',
      instance: '/v1/admin/market/quotes',
      correlationId: 'corr-md-1',
    });
  });

  it('takes a strict body, and no more than 16 KiB of it', async () => {
    const unknownKey = await switchQuotes('{"enabled":true,"x":1}');
    expect(unknownKey.status).toBe(400);
    expect(unknownKey.body).toMatchObject({
      reason: 'VALIDATION_FAILED',
      instance: '/v1/admin/market/quotes',
    });
    expect(unknownKey.body.errors).toEqual([
      { field: 'body.x', message: expect.stringContaining('is not a field of this request') },
    ]);

    const tooLarge = await switchQuotes(JSON.stringify({ enabled: true, padding: 'x'.repeat(20_000) }));
    expect(tooLarge.status).toBe(413);
    expect(tooLarge.body).toMatchObject({ reason: 'BODY_TOO_LARGE' });
    expect(switched).toEqual([false]);
  });
});
