import type { FastifyRequest } from 'fastify';
import type { Account } from '../../domain/broker/account/account.ts';
import { AggregateCache } from '../../domain/shared/aggregate.ts';
import type { EventStore } from '../../domain/shared/event-store.ts';
import type { TokenIssuer } from '../api/auth.ts';
import { bearerTokenOf, isAdmin, unauthenticated, verifiedSession } from '../api/context.ts';
import { ApiProblem } from '../api/problem.ts';

/** What an ops port needs to know an admin: the shared TRADECORE_JWT_SECRET's tokens, and the accounts. */
export interface OpsAuth {
  tokens: TokenIssuer;
  /** The broker store, where a token's admin role is checked against its account. */
  broker: EventStore;
}

/**
 * An `onRequest` guard for an admin route a service serves on its own port (the projector's
 * projections, market-data's quote switch): an admin's bearer token from broker-api or query-api,
 * verified with the shared TRADECORE_JWT_SECRET, whose admin role its account still holds (as the
 * API checks it: a revoked or disabled admin is refused at once, not when its token expires).
 * Without that secret (`auth` absent) nothing can be verified: 503 `unavailable`, which says what
 * to set. Its refusals are thrown, so the ops server answers them as the API does.
 */
export function adminsOnly(auth: OpsAuth | undefined, unavailable: { reason: string; detail: string }) {
  if (!auth)
    return async () => {
      throw new ApiProblem(503, unavailable.reason, unavailable.detail);
    };
  const accounts = { ...auth, caches: { accounts: new AggregateCache<Account>() } };
  return async (request: FastifyRequest) => {
    const token = bearerTokenOf(request);
    const principal = token ? (await verifiedSession(accounts, token))?.principal : undefined;
    if (!principal) throw unauthenticated(request);
    if (!isAdmin(principal))
      throw new ApiProblem(403, 'FORBIDDEN_ROLE', 'this route needs one of the roles: admin');
  };
}
