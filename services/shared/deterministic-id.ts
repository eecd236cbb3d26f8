import { createHash } from 'node:crypto';

/** tradecore's uuid v5 namespace (a fixed random uuid). */
const NAMESPACE = Buffer.from('6f1c2a4e9b3d4f7a8c5e0d1b2a3c4e5f', 'hex');

/**
 * A uuid v5 (RFC 9562) of `name`: the same name always gives the same id. Ids of effects derive
 * from the id of what caused them (an event id, a message id), so a replay after a crash appends
 * the same event ids (the store answers idempotently) and re-sends the same message ids (the
 * consumer deduplicates).
 */
export function deterministicId(...parts: string[]): string {
  const hash = createHash('sha1').update(NAMESPACE).update(parts.join('/')).digest();
  hash[6] = (hash[6]! & 0x0f) | 0x50;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
