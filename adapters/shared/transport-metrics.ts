import { Counter } from 'prom-client';
import { type DeadLetterReason, TRANSPORT_CHANNELS } from '../../domain/shared/transport.ts';

export const deadLettersTotal = new Counter({
  name: 'tradecore_transport_dead_letters_total',
  help: 'Messages given up and moved to a dead-letter queue, by logical channel and reason (every pair starts at 0)',
  labelNames: ['channel', 'reason'] as const,
});

/** Every reason, checked by the compiler: a new one gets its series too. */
const DEAD_LETTER_REASONS: Record<DeadLetterReason, true> = {
  'handler-failed': true,
  'invalid-json': true,
  'invalid-envelope': true,
  'unknown-type': true,
  'invalid-body': true,
};

// Each series exists from the start, at 0: `increase()` sees the first dead letter, and a
// dashboard shows "none" rather than "no data".
for (const channel of TRANSPORT_CHANNELS)
  for (const reason of Object.keys(DEAD_LETTER_REASONS)) deadLettersTotal.inc({ channel, reason }, 0);
