import type { EventMetadata } from '../../domain/shared/event-store.ts';

/** Who the start's own writes (the default catalogue's listings, the admin account) are from. */
export const SEED = { correlationId: 'seed', causationId: 'seed', actor: 'system' } as const;

/** Whether an event was written by a start's seeding, not by anyone's request. */
export function isSeeded(metadata: Pick<EventMetadata, 'correlationId' | 'actor'>): boolean {
  return metadata.correlationId === SEED.correlationId && metadata.actor === SEED.actor;
}
