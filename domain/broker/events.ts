import type { EventDefinition } from '../shared/event-schemas.ts';
import { accountEvents } from './account/events.ts';
import { instrumentEvents } from './instrument/events.ts';
import { orderEvents } from './order/events.ts';
import { walletEvents } from './wallet/events.ts';

/** Every broker event type, for the broker event store's schema registry (`new EventSchemas(brokerEvents)`). */
export const brokerEvents: readonly EventDefinition[] = [
  ...accountEvents,
  ...instrumentEvents,
  ...walletEvents,
  ...orderEvents,
];
