import type { FastifyReply, FastifyRequest } from 'fastify';
import type { TokenIssuer } from '../api/auth.ts';
import { PROBLEM_CONTENT_TYPE, problem } from '../api/problem.ts';

/** A problem+json answer from a service's own port (ops-server), outside the HTTP API's error handler. */
export function refuse(reply: FastifyReply, status: number, reason: string, detail: string): FastifyReply {
  return reply
    .code(status)
    .type(PROBLEM_CONTENT_TYPE)
    .send(problem(status, reason, detail));
}

/**
 * An `onRequest` guard for an admin route a service serves on its own port (the projector's
 * projections, market-data's quote switch): an admin's bearer token from broker-api or query-api,
 * verified with the shared TRADECORE_JWT_SECRET. Without that secret (`tokens` absent) nothing can
 * be verified: 503 `unavailable`, which says what to set.
 */
export function adminsOnly(tokens: TokenIssuer | undefined, unavailable: { reason: string; detail: string }) {
  return async (request: FastifyRequest, reply: FastifyReply) => {
    if (!tokens) return refuse(reply, 503, unavailable.reason, unavailable.detail);
    const header = request.headers.authorization;
    const token = header?.startsWith('Bearer ') ? header.slice('Bearer '.length).trim() : undefined;
    const principal = token ? await tokens.verify(token) : undefined;
    if (!principal) return refuse(reply, 401, 'UNAUTHENTICATED', 'a valid bearer token is required');
    if (!principal.roles.includes('admin'))
      return refuse(reply, 403, 'FORBIDDEN_ROLE', 'this route needs one of the roles: admin');
  };
}
