import { envelope, routeByStream, type TopicCatalogue } from '../../adapters/kafka/topics.ts';
import type { IntegrationEvent, IntegrationMapper } from '../../projections/relay.ts';

/**
 * The B3 store relay's routing: `routeByStream` (trades keyed by symbol) plus the market data
 * feed's `quotes-{symbol}` streams → `assets-market-data-v1`, keyed by symbol so one instrument's
 * quotes stay in order.
 */
export function routeB3Events(catalogue: TopicCatalogue): IntegrationMapper {
  const byStream = routeByStream(catalogue);
  return (event): IntegrationEvent[] => {
    if (event.streamId.startsWith('quotes-') && event.type === 'QuoteReceived') {
      const symbol = event.streamId.slice('quotes-'.length);
      return [{ topic: catalogue.marketData.name, key: symbol, value: envelope(event) }];
    }
    return byStream(event);
  };
}
