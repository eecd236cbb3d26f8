import { accountDecider, accountStreamId } from '../../domain/broker/account/account.ts';
import { type InstrumentSpec, listingCommands } from '../../domain/broker/instrument/catalogue.ts';
import { InstrumentAlreadyListed } from '../../domain/broker/instrument/errors.ts';
import { instrumentDecider, instrumentStreamId } from '../../domain/broker/instrument/instrument.ts';
import { loadAggregate } from '../../domain/shared/aggregate.ts';
import type { EventStore } from '../../domain/shared/event-store.ts';
import { WrongExpectedVersion } from '../../domain/shared/event-store.ts';
import { aggregateOf, handleCommand } from '../shared/command-handler.ts';
import { deterministicId } from '../shared/deterministic-id.ts';
import { SEED } from '../shared/seed-metadata.ts';
import { type ServiceLogger, silentLogger } from '../shared/service-logger.ts';
import { ADMIN_ACCOUNT_ID, ADMIN_USERNAME, hashPassword, verifyPassword } from './auth.ts';
import type { RouteContext } from './context.ts';
import { ApiProblem } from './problem.ts';
import { registerAccount } from './routes-auth.ts';

/**
 * Lists every instrument of the catalogue that is not listed yet. Idempotent across restarts and
 * concurrent starters: each listing appends with expected version no_stream and a deterministic event id.
 * Returns the symbols it listed.
 */
export async function seedInstruments(
  store: EventStore,
  catalogue: readonly InstrumentSpec[],
  at: Date = new Date(),
): Promise<string[]> {
  const listed: string[] = [];
  for (const command of listingCommands(catalogue, at.toISOString())) {
    const streamId = instrumentStreamId(command.symbol);
    if ((await store.streamVersion(streamId)) !== -1) continue;
    try {
      await handleCommand(store, streamId, instrumentDecider, command, SEED, {
        expectedVersion: 'no_stream',
        newEventId: (index) => deterministicId('seed', streamId, String(index)),
      });
      listed.push(command.symbol);
    } catch (error) {
      // Another starter listed it between our check and our append (handleCommand reloads and the
      // decider refuses a second listing): listed either way.
      if (!(error instanceof WrongExpectedVersion) && !(error instanceof InstrumentAlreadyListed))
        throw error;
    }
  }
  return listed;
}

/**
 * Makes sure the `admin` account exists: registers it with `password` on the first start, and
 * changes its password to `password` when that was changed since (TRADECORE_ADMIN_PASSWORD) —
 * unless `replace` is false (a password this start generated, its file having gone): an existing
 * admin then keeps the password it has, which nothing else may quietly replace. Says which. An
 * admin account without the admin role gets it back (and `log` hears of it).
 */
export async function ensureAdmin(
  context: Omit<RouteContext, 'caches' | 'walletLanes'>,
  password: string,
  { replace = true, log = silentLogger }: { replace?: boolean; log?: Pick<ServiceLogger, 'warn'> } = {},
): Promise<'created' | 'unchanged' | 'changed' | 'kept'> {
  const streamId = accountStreamId(ADMIN_ACCOUNT_ID);
  const { state } = await loadAggregate(context.broker, streamId, aggregateOf(accountDecider));
  if (!state.registered) {
    try {
      await registerAccount(
        context,
        { accountId: ADMIN_ACCOUNT_ID, username: ADMIN_USERNAME, password, roles: ['admin'] },
        SEED,
      );
      return 'created';
    } catch (error) {
      // Another process registered it first.
      if (error instanceof ApiProblem || error instanceof WrongExpectedVersion) return 'unchanged';
      throw error;
    }
  }
  if (!state.roles.includes('admin')) {
    // Revoked before the revoke route refused it: give it back, or no account could ever
    // administer this data folder again.
    await handleCommand(
      context.broker,
      streamId,
      accountDecider,
      { type: 'GrantRole', role: 'admin', grantedBy: ADMIN_ACCOUNT_ID, at: context.now().toISOString() },
      SEED,
    );
    log.warn({}, 'gave the admin account its admin role back: it had been revoked, and it must keep it');
  }
  if (await verifyPassword(password, state.passwordHash)) return 'unchanged';
  if (!replace) return 'kept';
  const passwordHash = await hashPassword(password);
  await handleCommand(
    context.broker,
    streamId,
    accountDecider,
    { type: 'ChangePassword', passwordHash, at: context.now().toISOString() },
    SEED,
  );
  return 'changed';
}
