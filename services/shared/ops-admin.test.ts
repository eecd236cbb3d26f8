import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountDecider, accountStreamId } from '../../domain/broker/account/account.ts';
import { TokenIssuer } from '../api/auth.ts';
import { brokerWithAccount, disableAccount } from '../api/testing.ts';
import { handleCommand } from './command-handler.ts';
import { adminsOnly } from './ops-admin.ts';
import { startOpsServer } from './ops-server.ts';

/**
 * The guard of the services' own admin ports (projector, market-data) holds a token's admin role
 * to what its account holds now, as the API does: a revoked or disabled admin is refused at once.
 */

const tokens = new TokenIssuer('a-test-secret-of-enough-length-0123456789', 3_600);
let accounts: Awaited<ReturnType<typeof brokerWithAccount>>;
let ops: Awaited<ReturnType<typeof startOpsServer>>;
const served: string[] = [];

beforeAll(async () => {
  accounts = await brokerWithAccount('ops-admin', ['trader', 'admin']);
  const guard = adminsOnly(
    { tokens, broker: accounts.broker },
    { reason: 'UNAVAILABLE', detail: 'set TRADECORE_JWT_SECRET' },
  );
  ops = await startOpsServer({
    port: 0,
    host: '127.0.0.1',
    logger: pino({ level: 'silent' }),
    readiness: {},
    routes: (app) => app.get('/v1/admin/thing', { onRequest: guard }, async () => served.push('thing') && {}),
  });
}, 60_000);
afterAll(async () => {
  await ops?.close();
  await accounts?.close();
});

const call = async (authorization: string) => {
  const response = await fetch(`${ops.url}/v1/admin/thing`, { headers: { authorization } });
  return { status: response.status, body: (await response.json()) as { reason?: string } };
};
const tokenOf = async (accountId: string) =>
  (await tokens.issue({ accountId, username: accountId, roles: ['admin'] })).token;

describe("the services' own admin ports", () => {
  it('take an admin token in any case of the Bearer scheme', async () => {
    const token = await tokenOf('ops-admin');
    expect((await call(`Bearer ${token}`)).status).toBe(200);
    expect((await call(`bearer ${token}`)).status).toBe(200);
    expect(served).toEqual(['thing', 'thing']);
  });

  it('refuse an admin token whose account does not exist', async () => {
    const stranger = await call(`Bearer ${await tokenOf('nobody')}`);
    expect(stranger).toEqual({ status: 401, body: expect.objectContaining({ reason: 'UNAUTHENTICATED' }) });
  });

  it('refuse a revoked admin at once, with the token it still holds', async () => {
    const token = await tokenOf('ops-admin');
    await handleCommand(
      accounts.broker,
      accountStreamId('ops-admin'),
      accountDecider,
      { type: 'RevokeRole', role: 'admin', revokedBy: 'someone', at: new Date().toISOString() },
      { correlationId: 'revoke', causationId: 'revoke', actor: 'someone' },
    );
    expect(await call(`Bearer ${token}`)).toEqual({
      status: 403,
      body: expect.objectContaining({ reason: 'FORBIDDEN_ROLE' }),
    });

    await handleCommand(
      accounts.broker,
      accountStreamId('ops-admin'),
      accountDecider,
      { type: 'GrantRole', role: 'admin', grantedBy: 'someone', at: new Date().toISOString() },
      { correlationId: 'grant', causationId: 'grant', actor: 'someone' },
    );
    expect((await call(`Bearer ${token}`)).status).toBe(200);
  });

  it('refuse a disabled admin at once', async () => {
    const token = await tokenOf('ops-admin');
    await disableAccount(accounts.broker, 'ops-admin');
    expect((await call(`Bearer ${token}`)).status).toBe(401);
  });
});
