import { Counter } from 'prom-client';

/** Metrics of the order path (prom-client default registry, on every service's `/metrics`). */

export const orderProcessSteps = new Counter({
  name: 'tradecore_order_process_steps_total',
  help: 'Steps the order process manager took, by step (reserved, rejected, routed, cancel-sent, released, settled, ended, halt-sent, resume-sent)',
  labelNames: ['step'] as const,
});

export const engineMessages = new Counter({
  name: 'tradecore_engine_messages_total',
  help: 'Messages the B3 engine handled, by type and outcome (booked, duplicate)',
  labelNames: ['type', 'outcome'] as const,
});

export const referencePriceRejections = new Counter({
  name: 'tradecore_engine_reference_price_rejections_total',
  help: 'Orders the B3 engine rejected for want of a usable reference price, by reason',
  labelNames: ['reason'] as const,
});

export const quotesPublished = new Counter({
  name: 'tradecore_market_data_quotes_total',
  help: 'Quotes the market data feed sent to the caches and the event store, by source',
  labelNames: ['source'] as const,
});
