import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryEventStore } from '../../adapters/memory/event-store.ts';
import { accountDecider, accountStreamId } from '../../domain/broker/account/account.ts';
import { walletStreamId } from '../../domain/broker/wallet/wallet.ts';
import { loadAggregate } from '../../domain/shared/aggregate.ts';
import { aggregateOf, handleCommand } from '../shared/command-handler.ts';
import { KeyedLanes } from '../shared/keyed-lanes.ts';
import { hashPassword, TokenIssuer, verifyPassword } from './auth.ts';
import { ensureAdmin } from './seed.ts';
import {
  ADMIN_PASSWORD,
  disableAccount,
  eventually,
  JWT_SECRET,
  startTestApi,
  type TestApi,
} from './testing.ts';

/**
 * Roles are read from the token, but a privileged one (admin, auditor) is checked against the
 * account on every request: a revoked admin must not act, nor grant itself the role back, with the
 * token it still holds.
 */

/** The wallet lanes the API queues its wallet commands in, counting what was queued. */
class CountingLanes extends KeyedLanes {
  queued = 0;
  override run<T>(key: string, job: () => Promise<T>): Promise<T> {
    this.queued += 1;
    return super.run(key, job);
  }
}
const walletLanes = new CountingLanes();

let api: TestApi;
let admin: string;
let bob: { accountId: string; token: string };

beforeAll(async () => {
  api = await startTestApi({ readModels: false, walletLanes });
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

  it('moves no cash for a wallet command that waited its turn past the disable of its account', async () => {
    const queued = await api.trader('roles-queued');
    expect((await deposit(queued.accountId, queued.token)).statusCode).toBe(201);
    // The wallet's lane busy (the order process reserving, other commands queued first).
    let release!: () => void;
    const busy = walletLanes.run(
      walletStreamId(queued.accountId),
      () => new Promise<void>((resolve) => (release = resolve)),
    );
    const queuedBefore = walletLanes.queued;
    const waiting = deposit(queued.accountId, queued.token);
    await eventually(async () => walletLanes.queued > queuedBefore || undefined);
    await disableAccount(api.broker, queued.accountId);
    release();
    await busy;
    expect((await waiting).json()).toMatchObject({ status: 422, reason: 'ACCOUNT_DISABLED' });
    const wallet = await api.broker.readStream(walletStreamId(queued.accountId));
    expect(wallet.map((event) => event.type)).toEqual(['CashDeposited']);
  });

  it('is revoked when its account is disabled', async () => {
    const gina = await api.trader('roles-gina');
    await disableAccount(api.broker, gina.accountId);
    expect((await me(gina.token)).json()).toMatchObject({
      status: 401,
      reason: 'INVALID_TOKEN',
      detail: 'the bearer token was revoked (its account is disabled): log in again',
    });
  });

  it('is revoked when the password changes after it was issued; a token issued after counts', async () => {
    const hugo = await api.trader('roles-hugo');
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

const changePassword = (accountId: string, token: string, payload: object) =>
  api.app.inject({
    method: 'POST',
    url: `/v1/accounts/${accountId}/password`,
    headers: bearer(token),
    payload,
  });

const login = (username: string, password: string) =>
  api.app.inject({ method: 'POST', url: '/v1/auth/login', payload: { username, password } });

describe('POST /v1/accounts/{id}/password', () => {
  it('changes your own password given the current one, revokes every earlier token at once, and answers a new one', async () => {
    const ivan = await api.trader('roles-ivan');
    const before = await api.broker.streamVersion(accountStreamId(ivan.accountId));
    const missing = await changePassword(ivan.accountId, ivan.token, { newPassword: 'a-new-password' });
    expect(missing.statusCode).toBe(400);
    expect(missing.json().errors).toEqual([
      { field: 'body.currentPassword', message: 'required to change your own password' },
    ]);
    const same = await changePassword(ivan.accountId, ivan.token, {
      currentPassword: 'a-good-password',
      newPassword: 'a-good-password',
    });
    expect(same.json().errors).toEqual([
      { field: 'body.newPassword', message: 'must differ from the current password' },
    ]);
    const wrong = await changePassword(ivan.accountId, ivan.token, {
      currentPassword: 'not-the-password',
      newPassword: 'a-new-password',
    });
    expect(wrong.json()).toMatchObject({ status: 403, reason: 'WRONG_PASSWORD' });
    expect(await api.broker.streamVersion(accountStreamId(ivan.accountId))).toBe(before);

    // In the same second as the login: the token is still issued before the change.
    const changed = await changePassword(ivan.accountId, ivan.token, {
      currentPassword: 'a-good-password',
      newPassword: 'a-new-password',
    });
    expect(changed.statusCode, changed.body).toBe(200);
    const body = changed.json();
    expect(body).toMatchObject({ accountId: ivan.accountId, tokenType: 'Bearer' });
    expect(Date.parse(body.passwordChangedAt)).not.toBeNaN();
    expect((await me(ivan.token)).json()).toMatchObject({
      status: 401,
      reason: 'INVALID_TOKEN',
      detail: 'the bearer token was revoked (its password changed since it was issued): log in again',
    });
    expect((await me(body.token)).json()).toMatchObject({ accountId: ivan.accountId, roles: ['trader'] });
    expect((await login('roles-ivan', 'a-good-password')).statusCode).toBe(401);
    expect((await login('roles-ivan', 'a-new-password')).statusCode).toBe(200);
  });

  it('revokes a token whose login checked the old password even when it was signed after the change', async () => {
    const nina = await api.trader('roles-nina');
    const changed = await changePassword(nina.accountId, nina.token, {
      currentPassword: 'a-good-password',
      newPassword: 'a-new-password',
    });
    expect(changed.statusCode, changed.body).toBe(200);
    // What a login racing the change gets: checked against the account before it (no change
    // counted), signed a moment after it.
    const later = new TokenIssuer(JWT_SECRET, 3600, () => new Date(Date.now() + 60_000));
    const principal = { accountId: nina.accountId, username: 'roles-nina', roles: ['trader' as const] };
    const raced = await later.issue(principal, 0);
    expect((await me(raced.token)).json()).toMatchObject({ status: 401, reason: 'INVALID_TOKEN' });
    const current = await later.issue(principal, 1);
    expect((await me(current.token)).statusCode).toBe(200);
  });

  it('lets one of two changes racing on the same current password win, and refuses the other', async () => {
    const omar = await api.trader('roles-omar');
    const before = await api.broker.streamVersion(accountStreamId(omar.accountId));
    const answers = await Promise.all(
      ['owner-password-1', 'thief-password-1'].map((newPassword) =>
        changePassword(omar.accountId, omar.token, { currentPassword: 'a-good-password', newPassword }),
      ),
    );
    expect(answers.map((answer) => answer.statusCode).sort()).toEqual([200, 409]);
    const refused = answers.find((answer) => answer.statusCode === 409)!;
    expect(refused.json()).toMatchObject({ reason: 'CONCURRENCY_CONFLICT' });
    expect(refused.json()).not.toHaveProperty('token');
    expect(await api.broker.streamVersion(accountStreamId(omar.accountId))).toBe(before + 1);
    const winner = answers.find((answer) => answer.statusCode === 200)!.json();
    expect((await me(winner.token)).statusCode).toBe(200);
  });

  it("lets an admin reset another account's without the current one, and nobody else", async () => {
    const jane = await api.trader('roles-jane');
    const kurt = await api.trader('roles-kurt');
    const theirs = await changePassword(jane.accountId, kurt.token, {
      currentPassword: 'a-good-password',
      newPassword: 'kurt-was-here',
    });
    expect(theirs.json()).toMatchObject({ status: 403, reason: 'NOT_YOUR_ACCOUNT' });
    // A current password given to an admin's reset would seem checked: refused, nothing changes.
    const checked = await changePassword(jane.accountId, admin, {
      currentPassword: 'whatever-it-is',
      newPassword: 'reset-by-admin',
    });
    expect(checked.json().errors).toEqual([
      {
        field: 'body.currentPassword',
        message: "is not taken when an admin resets another account's password: leave it out",
      },
    ]);
    // A password that the hash would not keep apart from others (an unpaired surrogate) is refused.
    const surrogate = await changePassword(jane.accountId, admin, { newPassword: 'abcd\ud800efgh' });
    expect(surrogate.json().errors[0].field).toBe('body.newPassword');
    const reset = await changePassword(jane.accountId, admin, { newPassword: 'reset-by-admin' });
    expect(reset.statusCode, reset.body).toBe(200);
    expect(reset.json()).not.toHaveProperty('token');
    expect((await login('roles-jane', 'reset-by-admin')).statusCode).toBe(200);
    expect((await me(jane.token)).statusCode).toBe(401);
    expect(
      (await changePassword('nobody-here', admin, { newPassword: 'reset-by-admin' })).json(),
    ).toMatchObject({
      status: 404,
      reason: 'ACCOUNT_NOT_FOUND',
    });
  });

  it("leaves the built-in admin's password to its configuration", async () => {
    const refused = await changePassword('admin', admin, {
      currentPassword: ADMIN_PASSWORD,
      newPassword: 'a-new-admin-password',
    });
    expect(refused.json()).toMatchObject({ status: 409, reason: 'ADMIN_PASSWORD_FROM_CONFIG' });
    expect((await login('admin', ADMIN_PASSWORD)).statusCode).toBe(200);
  });
});

describe('POST /v1/admin/accounts/{id}/disable', () => {
  const disable = (accountId: string, token: string, payload: object = { reason: 'left the firm' }) =>
    api.app.inject({
      method: 'POST',
      url: `/v1/admin/accounts/${accountId}/disable`,
      headers: bearer(token),
      payload,
    });

  it('disables an account for good: its token, its login and its wallet are closed to it; again answers the same', async () => {
    const lena = await api.trader('roles-lena');
    expect((await disable(lena.accountId, lena.token)).json()).toMatchObject({
      status: 403,
      reason: 'FORBIDDEN_ROLE',
    });
    expect((await disable(lena.accountId, admin, { reason: '' })).json().errors[0].field).toBe('body.reason');
    const disabled = await disable(lena.accountId, admin);
    expect(disabled.statusCode, disabled.body).toBe(200);
    expect(disabled.json()).toEqual({
      accountId: lena.accountId,
      username: 'roles-lena',
      roles: ['trader'],
      status: 'DISABLED',
    });
    expect((await me(lena.token)).json()).toMatchObject({ status: 401, reason: 'INVALID_TOKEN' });
    expect((await login('roles-lena', 'a-good-password')).json()).toMatchObject({
      status: 403,
      reason: 'ACCOUNT_DISABLED',
    });
    expect((await deposit(lena.accountId, admin)).json()).toMatchObject({ reason: 'ACCOUNT_DISABLED' });
    const version = await api.broker.streamVersion(accountStreamId(lena.accountId));
    expect((await disable(lena.accountId, admin, { reason: 'again' })).json()).toMatchObject({
      status: 'DISABLED',
    });
    expect(await api.broker.streamVersion(accountStreamId(lena.accountId))).toBe(version);
  });

  it('refuses the built-in admin, your own account, and an account that does not exist', async () => {
    expect((await disable('admin', admin)).json()).toMatchObject({ status: 409, reason: 'BUILT_IN_ADMIN' });
    const mona = await promoted('roles-mona', 'admin');
    expect((await disable(mona.accountId, mona.token)).json()).toMatchObject({
      status: 409,
      reason: 'OWN_ACCOUNT',
    });
    expect((await disable('nobody-here', admin)).json()).toMatchObject({
      status: 404,
      reason: 'ACCOUNT_NOT_FOUND',
    });
  });
});

describe('revoking the admin role', () => {
  const revokeAs = (accountId: string, role: string, token: string) =>
    api.app.inject({
      method: 'DELETE',
      url: `/v1/admin/accounts/${accountId}/roles/${role}`,
      headers: bearer(token),
    });

  it('is refused for the built-in admin and for your own, so that someone can always administer', async () => {
    const otto = await promoted('roles-otto', 'admin');
    // The built-in admin is given a second role first, so that admin is not its last (LAST_ROLE).
    expect((await grant('admin', 'trader', otto.token)).statusCode).toBe(200);
    expect((await revokeAs('admin', 'admin', otto.token)).json()).toMatchObject({
      status: 409,
      reason: 'BUILT_IN_ADMIN',
    });
    expect((await revokeAs(otto.accountId, 'admin', otto.token)).json()).toMatchObject({
      status: 409,
      reason: 'OWN_ACCOUNT',
    });
    // Both still administer; another admin may take otto's role, and the built-in admin's others.
    for (const token of [admin, otto.token])
      expect((await api.app.inject({ url: '/v1/auth/me', headers: bearer(token) })).json().roles).toContain(
        'admin',
      );
    expect((await revokeAs(otto.accountId, 'admin', admin)).json()).toMatchObject({ roles: ['trader'] });
    expect((await revokeAs('admin', 'trader', admin)).json()).toMatchObject({ roles: ['admin'] });
  });

  it('is undone by the next start when the built-in admin lost it anyway', async () => {
    const broker = new MemoryEventStore();
    const context = {
      broker,
      b3: new MemoryEventStore(),
      tokens: new TokenIssuer(JWT_SECRET, 60),
      now: () => new Date(),
    };
    expect(await ensureAdmin(context, ADMIN_PASSWORD)).toBe('created');
    const streamId = accountStreamId('admin');
    const at = new Date().toISOString();
    for (const command of [
      { type: 'GrantRole', role: 'trader', grantedBy: 'admin', at },
      { type: 'RevokeRole', role: 'admin', revokedBy: 'admin', at },
    ] as const)
      await handleCommand(broker, streamId, accountDecider, command, {
        correlationId: 'c',
        causationId: 'c',
        actor: 'admin',
      });
    const warnings: string[] = [];
    const log = { warn: (_details: object, message: string) => warnings.push(message) };
    expect(await ensureAdmin(context, ADMIN_PASSWORD, { log })).toBe('unchanged');
    const { state } = await loadAggregate(broker, streamId, aggregateOf(accountDecider));
    expect(state.roles).toEqual(['trader', 'admin']);
    expect(warnings).toEqual([
      'gave the admin account its admin role back: it had been revoked, and it must keep it',
    ]);
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
    expect(await ensureAdmin(context, 'the-new-admin-password')).toBe('created');
    const { state } = await loadAggregate(broker, accountStreamId('admin'), aggregateOf(accountDecider));
    expect(state).toMatchObject({ registered: true, username: 'admin', roles: ['admin'] });
    expect(await verifyPassword('the-new-admin-password', state.passwordHash)).toBe(true);
  });
});
