import type { z } from 'zod';
import { InvalidEvent, type NewEvent, type RecordedEvent } from './event-store.ts';

/**
 * One event type's contract: its current schema version and zod schema, and an upcaster from
 * every older version to the next one. The schema is the contract for storage, Kafka and the audit API.
 */
export interface EventDefinition<Type extends string = string> {
  type: Type;
  version: number;
  schema: z.ZodType;
  /** `upcasters[n]` turns data of version n into data of version n + 1. */
  upcasters?: Record<number, (data: unknown) => unknown>;
}

export function defineEvent<Type extends string>(definition: EventDefinition<Type>): EventDefinition<Type> {
  return definition;
}

/**
 * The registry an event store validates with: on the way in, data must match the type's current
 * schema (and gets its schema version stamped); on the way out, older versions are upcast.
 * `strict` refuses event types it does not know.
 */
export class EventSchemas {
  private readonly definitions = new Map<string, EventDefinition>();

  constructor(
    definitions: readonly EventDefinition[] = [],
    private readonly strict = definitions.length > 0,
  ) {
    for (const definition of definitions) this.register(definition);
  }

  register(definition: EventDefinition): this {
    if (this.definitions.has(definition.type))
      throw new Error(`event type ${definition.type} is defined twice`);
    this.definitions.set(definition.type, definition);
    return this;
  }

  /** Validates an event for append and returns it with its schema version set. */
  encode(event: NewEvent): NewEvent & { metadata: { schemaVersion: number } } {
    const definition = this.definitions.get(event.type);
    if (!definition) {
      if (this.strict) throw new InvalidEvent(event.type, ['unknown event type']);
      return { ...event, metadata: { ...event.metadata, schemaVersion: event.metadata.schemaVersion ?? 1 } };
    }
    const parsed = definition.schema.safeParse(event.data);
    if (!parsed.success) throw new InvalidEvent(event.type, describeIssues(parsed.error));
    return {
      ...event,
      data: parsed.data,
      metadata: { ...event.metadata, schemaVersion: definition.version },
    };
  }

  /** Upcasts a stored event to its type's current version. */
  decode<E extends RecordedEvent>(event: E): E {
    const definition = this.definitions.get(event.type);
    if (!definition) return event;
    let { schemaVersion } = event.metadata;
    if (schemaVersion === definition.version) return event;
    let data = event.data;
    while (schemaVersion < definition.version) {
      const upcast = definition.upcasters?.[schemaVersion];
      if (!upcast) throw new InvalidEvent(event.type, [`no upcaster from version ${schemaVersion}`]);
      data = upcast(data);
      schemaVersion += 1;
    }
    const parsed = definition.schema.safeParse(data);
    if (!parsed.success) throw new InvalidEvent(event.type, describeIssues(parsed.error));
    return { ...event, data: parsed.data, metadata: { ...event.metadata, schemaVersion } };
  }
}

function describeIssues(error: z.ZodError): string[] {
  return error.issues.map((issue) => `${issue.path.join('.') || '(data)'}: ${issue.message}`);
}
