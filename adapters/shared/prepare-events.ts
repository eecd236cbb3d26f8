import { z } from 'zod';
import type { EventSchemas } from '../../domain/shared/event-schemas.ts';
import { EventMetadata, InvalidEvent, type NewEvent } from '../../domain/shared/event-store.ts';

const eventId = z.uuid();
const streamId = z.string().min(1).max(500);

export interface PreparedEvent {
  id: string;
  type: string;
  data: unknown;
  metadata: EventMetadata;
}

/** What every adapter checks before an append: ids, types, metadata and, with a registry, the data's schema. */
export function prepareEvents(stream: string, events: NewEvent[], schemas?: EventSchemas): PreparedEvent[] {
  if (!streamId.safeParse(stream).success)
    throw new TypeError(`stream id must be 1–500 characters, got "${stream}"`);
  if (events.length === 0) throw new TypeError('append needs at least one event');
  const ids = new Set<string>();
  return events.map((event) => {
    if (!eventId.safeParse(event.id).success)
      throw new InvalidEvent(event.type, [`id: must be a uuid, got "${event.id}"`]);
    if (ids.has(event.id))
      throw new InvalidEvent(event.type, [`id: ${event.id} appears twice in one append`]);
    ids.add(event.id);
    if (typeof event.type !== 'string' || event.type.length === 0)
      throw new InvalidEvent('?', ['type: required']);
    const encoded = schemas ? schemas.encode(event) : event;
    const metadata = EventMetadata.safeParse({ schemaVersion: 1, ...encoded.metadata });
    if (!metadata.success) {
      throw new InvalidEvent(
        event.type,
        metadata.error.issues.map((issue) => `metadata.${issue.path.join('.')}: ${issue.message}`),
      );
    }
    return {
      id: event.id.toLowerCase(),
      type: event.type,
      data: encoded.data ?? null,
      metadata: metadata.data,
    };
  });
}
