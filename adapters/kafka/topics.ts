import type { RecordedEvent } from '../../domain/shared/event-store.ts';
import type { IntegrationEvent, IntegrationMapper } from '../../projections/relay.ts';

/**
 * The Kafka integration topics: names, partition counts and key rules. Kafka keeps order per
 * partition only, and a key always lands on the same partition, so the key is what stays in
 * order. Partition counts can grow later but never shrink, and growing moves keys to other
 * partitions: pick them for the expected consumer parallelism, not for today's load.
 */

export interface TopicSpec {
  /** The full topic name, prefix included. */
  name: string;
  partitions: number;
  /** What the message key is: everything with one key stays in order. */
  keyedBy: string;
}

export interface TopicCatalogue {
  /** Broker order lifecycle, keyed by order id: one order's events stay in order. */
  orderEvents: TopicSpec;
  /** B3 executions, keyed by symbol: one instrument's tape stays in order. */
  tradeEvents: TopicSpec;
  /** Cash and custody movements, keyed by account id: one account's balance history stays in order. */
  walletEvents: TopicSpec;
  /** Quotes from the market data feed, keyed by symbol. */
  marketData: TopicSpec;
}

export const TOPIC_NAMES = {
  orderEvents: 'order-events-v1',
  tradeEvents: 'trade-events-v1',
  walletEvents: 'wallet-events-v1',
  marketData: 'assets-market-data-v1',
} as const;

/**
 * The catalogue, its names behind `prefix` (tests isolate their topics with one, e.g.
 * `isolatedName('relay')`; production uses none).
 */
export function topicCatalogue(prefix = ''): TopicCatalogue {
  const name = (base: string) => (prefix ? `${prefix}-${base}` : base);
  return {
    orderEvents: { name: name(TOPIC_NAMES.orderEvents), partitions: 6, keyedBy: 'order id' },
    tradeEvents: { name: name(TOPIC_NAMES.tradeEvents), partitions: 6, keyedBy: 'symbol' },
    walletEvents: { name: name(TOPIC_NAMES.walletEvents), partitions: 6, keyedBy: 'account id' },
    marketData: { name: name(TOPIC_NAMES.marketData), partitions: 3, keyedBy: 'symbol' },
  };
}

export function catalogueTopics(catalogue: TopicCatalogue): TopicSpec[] {
  return [catalogue.orderEvents, catalogue.tradeEvents, catalogue.walletEvents, catalogue.marketData];
}

/** The public body of an event-derived message: the event's data in a versioned envelope. */
export interface IntegrationEnvelope {
  eventId: string;
  type: string;
  schemaVersion: number;
  streamId: string;
  streamVersion: number;
  occurredAt: string;
  correlationId: string;
  data: unknown;
}

export function envelope(event: RecordedEvent): IntegrationEnvelope {
  return {
    eventId: event.id,
    type: event.type,
    schemaVersion: event.metadata.schemaVersion,
    streamId: event.streamId,
    streamVersion: event.version,
    occurredAt: event.metadata.occurredAt,
    correlationId: event.metadata.correlationId,
    data: event.data,
  };
}

function streamEntity(streamId: string, category: string): string | undefined {
  const prefix = `${category}-`;
  return streamId.startsWith(prefix) && streamId.length > prefix.length
    ? streamId.slice(prefix.length)
    : undefined;
}

/**
 * The relay's default routing, by stream category (the architecture's stream names):
 * `order-{orderId}` → order events keyed by order id, `wallet-{accountId}` → wallet events keyed
 * by account id, `trade-{tradeId}` → trade events keyed by the trade's `data.symbol`. Identity
 * (`account-…`), B3 book internals (`book-…`) and the catalogue (`instrument-…`) stay private.
 * Market data does not come from the event store: the quote feed publishes it directly.
 */
export function routeByStream(catalogue: TopicCatalogue): IntegrationMapper {
  return (event): IntegrationEvent[] => {
    const orderId = streamEntity(event.streamId, 'order');
    if (orderId) return [{ topic: catalogue.orderEvents.name, key: orderId, value: envelope(event) }];
    const accountId = streamEntity(event.streamId, 'wallet');
    if (accountId) return [{ topic: catalogue.walletEvents.name, key: accountId, value: envelope(event) }];
    if (streamEntity(event.streamId, 'trade')) {
      const symbol = (event.data as { symbol?: unknown } | null)?.symbol;
      if (typeof symbol !== 'string' || symbol.length === 0) {
        throw new Error(`trade event ${event.id} (${event.type}) has no data.symbol to key it by`);
      }
      return [{ topic: catalogue.tradeEvents.name, key: symbol, value: envelope(event) }];
    }
    return [];
  };
}
