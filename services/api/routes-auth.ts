import { randomUUID } from 'node:crypto';
import { accountDecider, accountStreamId } from '../../domain/broker/account/account.ts';
import { AccountNotFound, InvalidUsername } from '../../domain/broker/account/errors.ts';
import { USERNAME } from '../../domain/broker/account/username.ts';
import { loadAggregate } from '../../domain/shared/aggregate.ts';
import { WrongExpectedVersion } from '../../domain/shared/event-store.ts';
import { aggregateOf, handleCommand } from '../shared/command-handler.ts';
import { usernameStreamId } from './api-events.ts';
import { ADMIN_ACCOUNT_ID, burnPasswordCheck, hashPassword, verifyPassword } from './auth.ts';
import {
  type App,
  answerCreate,
  isAdmin,
  metadataOf,
  principalOf,
  type RouteContext,
  requireToken,
} from './context.ts';
import type { CreateRun } from './idempotency.ts';
import { ApiProblem } from './problem.ts';
import { AccountParams, Credentials, PasswordChangeBody, RegisterBody } from './schemas.ts';

/** The account id a username was claimed for, or undefined. */
export async function accountIdOfUsername(
  context: Pick<RouteContext, 'broker'>,
  username: string,
): Promise<string | undefined> {
  const [claim] = await context.broker.readStream(usernameStreamId(username), { limit: 1 });
  return claim ? String((claim.data as { accountId: string }).accountId) : undefined;
}

/**
 * Registers an account: the username is claimed first in `username-{lowercased}` with expected
 * version no_stream (the event store is the uniqueness constraint), then the account stream is
 * written, also with no_stream. Returns the account id registered.
 *
 * A crash between the two leaves a claim with no account. With `eventIds` (a `CreateRun`'s), the
 * run after it meets its own claim (the store answers idempotently) and goes on to the account.
 * Any other registration of that username finds the claim's account empty and registers it: the
 * account stream's no_stream then decides between it and a registration still in flight, so
 * exactly one of them gets the account and the other is told the username is taken.
 */
export async function registerAccount(
  context: Omit<RouteContext, 'caches' | 'walletLanes'>,
  input: {
    accountId?: string;
    username: string;
    password: string;
    roles?: Array<'trader' | 'auditor' | 'admin'>;
  },
  metadata: { correlationId: string; causationId: string; actor?: string },
  eventIds?: CreateRun['eventIds'],
): Promise<string> {
  const username = input.username.toLowerCase();
  if (!USERNAME.test(username)) throw new InvalidUsername(username);
  const taken = () => new ApiProblem(409, 'USERNAME_TAKEN', `the username ${username} is taken`);
  let accountId = input.accountId ?? randomUUID();
  const now = context.now().toISOString();
  try {
    await context.broker.append(
      usernameStreamId(username),
      [
        {
          id: eventIds?.('UsernameClaimed')(0) ?? randomUUID(),
          type: 'UsernameClaimed',
          data: { username, accountId },
          metadata: { ...metadata, actor: metadata.actor ?? accountId, occurredAt: now },
        },
      ],
      { expectedVersion: 'no_stream' },
    );
  } catch (error) {
    if (!(error instanceof WrongExpectedVersion)) throw error;
    const claimed = await accountIdOfUsername(context, username);
    if (claimed === undefined) throw taken();
    const [registered] = await context.broker.readStream(accountStreamId(claimed), { limit: 1 });
    // This run's own account, registered on an orphaned claim before a crash.
    if (registered && registered.id === eventIds?.('AccountRegistered')(0)) return claimed;
    if (registered) throw taken();
    // An account registering itself registers as the claim's account.
    if (metadata.actor === accountId) metadata = { ...metadata, actor: claimed };
    accountId = claimed;
  }
  try {
    await handleCommand(
      context.broker,
      accountStreamId(accountId),
      accountDecider,
      {
        type: 'RegisterAccount',
        accountId,
        username,
        passwordHash: await hashPassword(input.password),
        roles: input.roles,
        at: now,
      },
      { ...metadata, actor: metadata.actor ?? accountId },
      { expectedVersion: 'no_stream', ...(eventIds ? { newEventId: eventIds('AccountRegistered') } : {}) },
    );
  } catch (error) {
    if (error instanceof WrongExpectedVersion) throw taken();
    throw error;
  }
  return accountId;
}

export function authRoutes(app: App, context: RouteContext): void {
  const limit = context.loginRateLimit ?? { max: 10, timeWindowMs: 60_000 };

  app.post(
    '/v1/auth/register',
    {
      schema: {
        tags: ['auth'],
        summary: 'Register a trader account',
        description: 'Creates an account with the trader role. Usernames are unique, case-insensitively.',
        body: RegisterBody,
      },
      config: { rateLimit: { max: limit.max * 3, timeWindow: limit.timeWindowMs } },
    },
    async (request, reply) =>
      answerCreate(context, request, reply, async (run) => {
        const registered = (accountId: string) => ({
          statusCode: 201,
          body: { accountId },
          location: `/v1/accounts/${accountId}/wallet`,
        });
        const accountId = run.id('account');
        // A run after a crash: the account the crashed run registered.
        const earlier = await run.earlier('AccountRegistered', accountStreamId(accountId));
        if (earlier) return registered((earlier.data as { accountId: string }).accountId);
        return registered(
          await registerAccount(
            context,
            { accountId, username: request.body.username, password: request.body.password },
            { ...metadataOf(request, accountId) },
            run.eventIds,
          ),
        );
      }),
  );

  app.post(
    '/v1/auth/login',
    {
      schema: {
        tags: ['auth'],
        summary: 'Log in: a bearer token (JWT) with an expiry',
        description: 'Rate limited per client address.',
        body: Credentials,
      },
      config: { rateLimit: { max: limit.max, timeWindow: limit.timeWindowMs } },
    },
    async (request) => {
      const refused = new ApiProblem(401, 'INVALID_CREDENTIALS', 'unknown username or wrong password');
      const accountId = await accountIdOfUsername(context, request.body.username);
      if (!accountId) {
        await burnPasswordCheck(request.body.password);
        throw refused;
      }
      const { state: account } = await loadAggregate(
        context.broker,
        accountStreamId(accountId),
        aggregateOf(accountDecider),
      );
      if (!account.registered || !(await verifyPassword(request.body.password, account.passwordHash)))
        throw refused;
      if (account.status === 'DISABLED')
        throw new ApiProblem(403, 'ACCOUNT_DISABLED', 'this account is disabled');
      // The token counts the password changes of the account state the password was checked against.
      const { token, expiresAt } = await context.tokens.issue(
        { accountId, username: account.username, roles: account.roles },
        account.passwordChanges,
      );
      return { token, tokenType: 'Bearer', expiresAt, accountId, roles: account.roles };
    },
  );

  app.post(
    '/v1/accounts/:id/password',
    {
      schema: {
        tags: ['auth'],
        summary: "Change an account's password",
        description:
          "The account's holder (any role) gives its current password and gets a new token; an admin may reset another account's without it. Every token issued before the change stops working. Rate limited per client address, as login is.",
        security: [{ bearerAuth: [] }],
        params: AccountParams,
        body: PasswordChangeBody,
      },
      config: { rateLimit: { max: limit.max, timeWindow: limit.timeWindowMs } },
      onRequest: requireToken,
    },
    async (request) => {
      const accountId = request.params.id;
      const { currentPassword, newPassword } = request.body;
      const principal = principalOf(request);
      const own = principal.accountId === accountId;
      if (!own && !isAdmin(principal))
        throw new ApiProblem(403, 'NOT_YOUR_ACCOUNT', 'this token does not give access to that account');
      if (accountId === ADMIN_ACCOUNT_ID)
        throw new ApiProblem(
          409,
          'ADMIN_PASSWORD_FROM_CONFIG',
          "the admin account's password is TRADECORE_ADMIN_PASSWORD (or the one the first start generated into the data folder): every start sets it from there, so change it there and restart",
        );
      const { state: account, version } = await loadAggregate(
        context.broker,
        accountStreamId(accountId),
        aggregateOf(accountDecider),
      );
      if (!account.registered) throw new AccountNotFound(accountId);
      const field = (name: string, message: string) =>
        new ApiProblem(400, 'VALIDATION_FAILED', 'the request does not match its schema', {
          errors: [{ field: `body.${name}`, message }],
        });
      // An admin's reset checks no current password: one given would seem checked, and is not.
      if (!own && currentPassword !== undefined)
        throw field(
          'currentPassword',
          "is not taken when an admin resets another account's password: leave it out",
        );
      if (own) {
        if (currentPassword === undefined)
          throw field('currentPassword', 'required to change your own password');
        if (newPassword === currentPassword)
          throw field('newPassword', 'must differ from the current password');
        if (!(await verifyPassword(currentPassword, account.passwordHash)))
          throw new ApiProblem(403, 'WRONG_PASSWORD', 'the current password is wrong');
      }
      const passwordChangedAt = context.now().toISOString();
      const { state } = await handleCommand(
        context.broker,
        accountStreamId(accountId),
        accountDecider,
        { type: 'ChangePassword', passwordHash: await hashPassword(newPassword), at: passwordChangedAt },
        metadataOf(request),
        // On the account as the current password was checked: another change racing this one makes
        // it 409 CONCURRENCY_CONFLICT, not a second winner with a token of its own.
        { expectedVersion: version },
      );
      if (!own) return { accountId, passwordChangedAt };
      // The caller's token was issued before the change and no longer counts: here is one that does.
      const { token, expiresAt } = await context.tokens.issue(
        { accountId, username: state.username, roles: state.roles },
        state.passwordChanges,
      );
      return { accountId, passwordChangedAt, token, tokenType: 'Bearer', expiresAt };
    },
  );

  app.get(
    '/v1/auth/me',
    {
      schema: {
        tags: ['auth'],
        summary: "The bearer token's account and roles",
        security: [{ bearerAuth: [] }],
      },
      onRequest: requireToken,
    },
    async (request) => principalOf(request),
  );
}
