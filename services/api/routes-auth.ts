import { randomUUID } from 'node:crypto';
import { accountDecider, accountStreamId } from '../../domain/broker/account/account.ts';
import { InvalidUsername } from '../../domain/broker/account/errors.ts';
import { USERNAME } from '../../domain/broker/account/username.ts';
import { loadAggregate } from '../../domain/shared/aggregate.ts';
import { WrongExpectedVersion } from '../../domain/shared/event-store.ts';
import { aggregateOf, handleCommand } from '../shared/command-handler.ts';
import { usernameStreamId } from './api-events.ts';
import { burnPasswordCheck, hashPassword, verifyPassword } from './auth.ts';
import { type App, answerCreate, metadataOf, principalOf, type RouteContext } from './context.ts';
import type { CreateRun } from './idempotency.ts';
import { ApiProblem } from './problem.ts';
import { Credentials, RegisterBody } from './schemas.ts';

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
      const { token, expiresAt } = await context.tokens.issue({
        accountId,
        username: account.username,
        roles: account.roles,
      });
      return { token, tokenType: 'Bearer', expiresAt, accountId, roles: account.roles };
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
    },
    async (request) => principalOf(request),
  );
}
