import { z } from 'zod';
import { brokerEvents } from '../../domain/broker/events.ts';
import { defineEvent, EventSchemas } from '../../domain/shared/event-schemas.ts';

/**
 * Events the API itself keeps in the broker event store, so that its guarantees hold across
 * restarts and processes without another database:
 * - `username-{lowercased}`: one `UsernameClaimed`, appended with expected version no_stream —
 *   the store's optimistic concurrency is the uniqueness constraint.
 * - `idempotency-{actor}-{key}`: a claim before the work, then the answer (or a release when the
 *   work failed, so that a retry may run it again); a claim whose request crashed is followed by
 *   another claim, a retry's, once its lease passed (services/api/idempotency.ts).
 */
export const usernameStreamId = (username: string): string => `username-${username.toLowerCase()}`;
export const idempotencyStreamId = (actor: string, key: string): string => `idempotency-${actor}-${key}`;

export const UsernameClaimedData = z.strictObject({
  username: z.string().min(1).max(64),
  accountId: z.string().min(1).max(200),
});
export const IdempotencyKeyClaimedData = z.strictObject({
  key: z.string().min(1).max(200),
  /** HMAC of method, route and canonical body: the same key with another request is refused. */
  fingerprint: z.string().min(1).max(200),
  /**
   * What the run makes has ids derived from the key's first claim, so a run after a crash finds
   * it by id (v2). Version 1 claims' runs made random ids: upcast to false.
   */
  derivedIds: z.boolean(),
});
export const IdempotencyKeyCompletedData = z.strictObject({
  statusCode: z.number().int().min(100).max(599),
  body: z.unknown(),
  /** The answer's Location header, given again with a replay. */
  location: z.string().min(1).max(500).optional(),
});
export const IdempotencyKeyReleasedData = z.strictObject({ reason: z.string().max(500) });

export const apiEvents = [
  defineEvent({ type: 'UsernameClaimed', version: 1, schema: UsernameClaimedData }),
  defineEvent({
    type: 'IdempotencyKeyClaimed',
    version: 2,
    schema: IdempotencyKeyClaimedData,
    upcasters: { 1: (data) => ({ ...(data as object), derivedIds: false }) },
  }),
  defineEvent({ type: 'IdempotencyKeyCompleted', version: 1, schema: IdempotencyKeyCompletedData }),
  defineEvent({ type: 'IdempotencyKeyReleased', version: 1, schema: IdempotencyKeyReleasedData }),
] as const;

/** The broker event store's registry when the API writes to it: the broker's events and the API's own. */
export function brokerStoreSchemas(): EventSchemas {
  return new EventSchemas([...brokerEvents, ...apiEvents]);
}
