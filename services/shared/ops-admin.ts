import type { FastifyRequest } from 'fastify';
import type { TokenIssuer } from '../api/auth.ts';
import { ApiProblem } from '../api/problem.ts';

/**
 * An `onRequest` guard for an admin route a service serves on its own port (the projector's
 * projections, market-data's quote switch): an admin's bearer token from broker-api or query-api,
 * verified with the shared TRADECORE_JWT_SECRET. Without that secret (`tokens` absent) nothing can
 * be verified: 503 `unavailable`, which says what to set. Its refusals are thrown, so the ops
 * server answers them as the API does.
 */
export function adminsOnly(tokens: TokenIssuer | undefined, unavailable: { reason: string; detail: string }) {
  return async (request: FastifyRequest) => {
    if (!tokens) throw new ApiProblem(503, unavailable.reason, unavailable.detail);
    const header = request.headers.authorization;
    const token = header?.startsWith('Bearer ') ? header.slice('Bearer '.length).trim() : undefined;
    const principal = token ? await tokens.verify(token) : undefined;
    if (!principal) throw new ApiProblem(401, 'UNAUTHENTICATED', 'a valid bearer token is required');
    if (!principal.roles.includes('admin'))
      throw new ApiProblem(403, 'FORBIDDEN_ROLE', 'this route needs one of the roles: admin');
  };
}
