import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryEventStore } from '../../adapters/memory/event-store.ts';
import { accountDecider, accountStreamId } from '../../domain/broker/account/account.ts';
import { loadAggregate } from '../../domain/shared/aggregate.ts';
import { aggregateOf, handleCommand } from '../shared/command-handler.ts';
import { hashPassword, TokenIssuer, verifyPassword } from './auth.ts';
import { ensureAdmin } from './seed.ts';
import { disableAccount, JWT_SECRET, startTestApi, type TestApi } from './testing.ts';

/**
 * Roles are read from the token, but a privileged one (admin, auditor) is checked against the
 * account on every request: a revoked admin must not act, nor grant itself the role back, with the
 * token it still holds.
 */

let api: TestApi;
let admin: string;
let bob: { accountId: string; token: string };

beforeAll(async () => {
  api = await startTestApi({ readModels: false });
  admin = await api.adminToken();
  bob = await api.trader('roles-bob');
}, 180_000);
afterAll(async () => api?.close());

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

async function grant(accountId: string, role: string, token = admin) {
  return api.app.inject({
    method: 'POST',
    url: `/v1/admin/accounts/${accountId}/roles`,
    headers: bearer(token),
    payload: { role },
  });
}

async function revoke(accountId: string, role: string) {
  const response = await api.app.inject({
    method: 'DELETE',
    url: `/v1/admin/accounts/${accountId}/roles/${role}`,
    headers: bearer(admin),
  });
  expect(response.statusCode, response.body).toBe(200);
}

/** A trader given `role` by the admin, logged in again so that its token holds it. */
async function promoted(username: string, role: string) {
  const { accountId } = await api.trader(username);
  expect((await grant(accountId, role)).statusCode).toBe(200);
  return api.trader(username);
}

const deposit = (accountId: string, token: string) =>
  api.app.inject({
    method: 'POST',
    url: `/v1/accounts/${accountId}/deposits`,
    headers: bearer(token),
    payload: { amount: '10.00' },
  });

describe('privileged roles, checked against the account', () => {
  it("refuses a revoked admin's token at once: no admin route, no other account, no granting itself the role back", async () => {
    const carol = await promoted('roles-carol', 'admin');
    expect((await deposit(bob.accountId, carol.token)).statusCode).toBe(201);

    await revoke(carol.accountId, 'admin');
    const regrant = await grant(carol.accountId, 'admin', carol.token);
    expect(regrant.statusCode).toBe(403);
    expect(regrant.json()).toMatchObject({ reason: 'FORBIDDEN_ROLE' });
    expect((await deposit(bob.accountId, carol.token)).json()).toMatchObject({ reason: 'NOT_YOUR_ACCOUNT' });
    // What the token's other role gives stays: her own account.
    expect((await deposit(carol.accountId, carol.token)).statusCode).toBe(201);
    const events = await api.broker.readStream(accountStreamId(carol.accountId));
    expect(events.map((event) => event.type)).toEqual(['AccountRegistered', 'RoleGranted', 'RoleRevoked']);

    // Granted again by an admin, the role the token holds counts again.
    expect((await grant(carol.accountId, 'admin')).statusCode).toBe(200);
    expect((await deposit(bob.accountId, carol.token)).statusCode).toBe(201);
  });

  it("refuses a revoked auditor's token on the audit routes", async () => {
    const dave = await promoted('roles-dave', 'auditor');
    const read = () =>
      api.app.inject({
        method: 'GET',
        url: `/v1/audit/streams/${accountStreamId(bob.accountId)}`,
        headers: bearer(dave.token),
      });
    expect((await read()).statusCode).toBe(200);
    await revoke(dave.accountId, 'auditor');
    expect((await read()).json()).toMatchObject({ status: 403, reason: 'FORBIDDEN_ROLE' });
  });

  it("refuses a disabled admin's token everywhere: the token is revoked", async () => {
    const erin = await promoted('roles-erin', 'admin');
    expect((await grant(bob.accountId, 'auditor', erin.token)).statusCode).toBe(200);
    await disableAccount(api.broker, erin.accountId);
    expect((await grant(bob.accountId, 'admin', erin.token)).json()).toMatchObject({
      status: 401,
      reason: 'INVALID_TOKEN',
    });
    expect((await me(erin.token)).json()).toMatchObject({
      status: 401,
      reason: 'INVALID_TOKEN',
    });
  });
});

const me = (token: string) => api.app.inject({ method: 'GET', url: '/v1/auth/me', headers: bearer(token) });

describe("a trader's token, checked against the account", () => {
  it('does nothing more as a trader once the role is revoked, and shows the roles the account holds', async () => {
    const frank = await promoted('roles-frank', 'auditor');
    expect((await deposit(frank.accountId, frank.token)).statusCode).toBe(201);
    await revoke(frank.accountId, 'trader');
    expect((await deposit(frank.accountId, frank.token)).json()).toMatchObject({
      status: 403,
      reason: 'FORBIDDEN_ROLE',
    });
    expect((await me(frank.token)).json()).toMatchObject({ roles: ['auditor'] });
  });

  it('is revoked when its account is disabled', async () => {
    const gina = await api.trader('roles-gina');
    await disableAccount(api.broker, gina.accountId);
    expect((await me(gina.token)).json()).toMatchObject({
      status: 401,
      reason: 'INVALID_TOKEN',
    });
  });

  it('is revoked when the password changes after it was issued; a token issued after counts', async () => {
    const hugo = await api.trader('roles-hugo');
    // The change lands in a later second than the token's `iat` (whole seconds).
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    await handleCommand(
      api.broker,
      accountStreamId(hugo.accountId),
      accountDecider,
      {
        type: 'ChangePassword',
        passwordHash: await hashPassword('a-new-password'),
        at: new Date().toISOString(),
      },
      { correlationId: 'change-password', causationId: 'change-password', actor: hugo.accountId },
    );
    const refused = await me(hugo.token);
    expect(refused.json()).toMatchObject({ status: 401, reason: 'INVALID_TOKEN' });
    expect(refused.json().detail).toContain('password changed');
    const again = await api.trader('roles-hugo', 'a-new-password');
    expect((await me(again.token)).statusCode).toBe(200);
  });
});

describe('the admin account, after a first start that crashed half-way', () => {
  it('is registered by the next start when only its username was claimed', async () => {
    const broker = new MemoryEventStore();
    // What a first start killed between claiming the username and writing the account leaves.
    await broker.append('username-admin', [
      {
        id: randomUUID(),
        type: 'UsernameClaimed',
        data: { username: 'admin', accountId: 'admin' },
        metadata: {
          correlationId: 'seed',
          causationId: 'seed',
          actor: 'system',
          occurredAt: new Date().toISOString(),
        },
      },
    ]);
    const context = {
      broker,
      b3: new MemoryEventStore(),
      tokens: new TokenIssuer(JWT_SECRET, 60),
      now: () => new Date(),
    };
    expect(await ensureAdmin(context, 'the-new-admin-password')).toBe(true);
    const { state } = await loadAggregate(broker, accountStreamId('admin'), aggregateOf(accountDecider));
    expect(state).toMatchObject({ registered: true, username: 'admin', roles: ['admin'] });
    expect(await verifyPassword('the-new-admin-password', state.passwordHash)).toBe(true);
  });
});
