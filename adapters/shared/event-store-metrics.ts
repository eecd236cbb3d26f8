import { Histogram } from 'prom-client';

export const appendSeconds = new Histogram({
  name: 'tradecore_eventstore_append_seconds',
  help: 'Time to append one batch of events to a stream',
  labelNames: ['store'] as const,
  buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
});

export const readerHoldbackSeconds = new Histogram({
  name: 'tradecore_eventstore_reader_holdback_seconds',
  help: 'How long a reader of all events waited at a position because an older transaction was still open',
  labelNames: ['store'] as const,
  buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
});

export const appendGroupSize = new Histogram({
  name: 'tradecore_eventstore_append_group_size',
  help: 'Appends written together in one statement and one commit (group commit)',
  labelNames: ['store'] as const,
  buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 500],
});
