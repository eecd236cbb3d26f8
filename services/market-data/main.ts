/**
 * `tradecore serve market-data`: the quote feed in its own process. Quotes from QUOTE_SOURCE, and
 * admins' prices from the broker store's instrument events (listings, reference price updates), go
 * to `quotes-{symbol}` in the B3 event store and to both price caches: the broker asset cache
 * (REDIS_URL) and the B3 market cache (B3_REDIS_URL, else REDIS_URL's database 1).
 */
import type { Logger } from 'pino';
import { RedisPriceCache } from '../../adapters/redis/price-cache.ts';
import { defaultCatalogue } from '../../domain/broker/instrument/catalogue.ts';
import { TokenIssuer } from '../api/auth.ts';
import { b3RedisKeyPrefix, b3RedisVariable, type Config, reaching } from '../shared/config.ts';
import { connectEventStores } from '../shared/event-stores.ts';
import { type RunningService, ShutdownStack, startOpsServer } from '../shared/ops-server.ts';
import { quoteSourceConfig } from '../shared/trading.ts';
import { marketDataAdminRoutes } from './admin.ts';
import { MarketDataFeed } from './feed.ts';
import { ReferencePriceFollower } from './reference-prices.ts';

/** Needs REDIS_URL (and so a B3 market cache): `tradecore serve` checks. */
export async function startMarketDataService(
  config: Config & { redisUrl: string; b3RedisUrl: string },
  logger: Logger,
  /** Isolation for tests: a key prefix in both Redis caches. */
  options: { redisKeyPrefix?: string } = {},
): Promise<RunningService> {
  const stack = new ShutdownStack(logger);
  try {
    const eventStores = await connectEventStores(config, {}, logger);
    stack.push('event stores', () => eventStores.close());
    const brokerPrices = await reaching('REDIS_URL', config.redisUrl, () =>
      RedisPriceCache.connect({ url: config.redisUrl, keyPrefix: options.redisKeyPrefix, logger }),
    );
    stack.push('broker asset cache', () => brokerPrices.close());
    const marketPrices = await reaching(b3RedisVariable(config), config.b3RedisUrl, () =>
      RedisPriceCache.connect({
        url: config.b3RedisUrl,
        keyPrefix: `${options.redisKeyPrefix ?? ''}${b3RedisKeyPrefix(config)}`,
        logger,
      }),
    );
    stack.push('B3 market cache', () => marketPrices.close());

    const source = quoteSourceConfig(config);
    const feed = new MarketDataFeed({
      store: eventStores.b3,
      brokerPrices,
      marketPrices,
      source,
      enabled: config.quotesEnabled,
      logger: logger.child({ component: 'market-data' }),
    });
    await feed.warmCaches(defaultCatalogue.map((spec) => spec.symbol));
    feed.keepCachesWarm();
    await feed.start();
    stack.push('feed', () => feed.stop());
    // Listings and reference prices set through broker-api, in another process: the broker store's
    // instrument events, followed from a checkpoint in that store.
    const referencePrices = new ReferencePriceFollower({
      broker: eventStores.broker,
      feed,
      logger: logger.child({ component: 'reference-prices' }),
    });
    await referencePrices.start();
    stack.push('reference prices', () => referencePrices.stop());

    const ops = await startOpsServer({
      port: config.port,
      host: config.host,
      logger: logger.child({ component: 'http' }),
      readiness: {
        'b3-event-store': () => eventStores.b3.headPosition(),
        // The instrument events come from there.
        'broker-event-store': () => eventStores.broker.headPosition(),
        'broker-asset-cache': () => brokerPrices.get('PETR4'),
        'market-cache': () => marketPrices.get('PETR4'),
      },
      routes: (app) =>
        marketDataAdminRoutes(app, {
          feed,
          auth: config.jwtSecret
            ? { tokens: new TokenIssuer(config.jwtSecret, config.jwtTtlSeconds), broker: eventStores.broker }
            : undefined,
        }),
    });
    stack.push('http', () => ops.close());
    return {
      url: ops.url,
      banner: [
        `tradecore market-data: health and metrics on ${ops.url}`,
        `quotes switch (an admin's token): POST ${ops.url}/v1/admin/market/quotes {"enabled": false}`,
        `event stores: ${eventStores.description}`,
        `quotes: ${source.kind}${config.quotesEnabled ? '' : ' (off until an admin switches them on)'}`,
      ],
      stop: () => stack.stop(),
    };
  } catch (error) {
    await stack.stop();
    throw error;
  }
}
