import { Counter } from 'prom-client';

export const deadLettersTotal = new Counter({
  name: 'tradecore_transport_dead_letters_total',
  help: 'Messages given up and moved to a dead-letter queue, by logical channel and reason',
  labelNames: ['channel', 'reason'] as const,
});
