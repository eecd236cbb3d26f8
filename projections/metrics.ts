import { Counter, Gauge } from 'prom-client';

export const projectionCheckpoint = new Gauge({
  name: 'tradecore_projection_checkpoint',
  help: 'Position of the last event a projection applied',
  labelNames: ['projection'] as const,
});

export const projectionLagEvents = new Gauge({
  name: 'tradecore_projection_lag_positions',
  help: 'Head position of the source event store minus the projection checkpoint',
  labelNames: ['projection'] as const,
});

export const projectionLagSeconds = new Gauge({
  name: 'tradecore_projection_lag_seconds',
  help: 'How long the oldest event a projection has not applied yet has waited, 0 when caught up',
  labelNames: ['projection'] as const,
});

export const projectedEvents = new Counter({
  name: 'tradecore_projection_events_total',
  help: 'Events applied by a projection',
  labelNames: ['projection', 'target'] as const,
});
