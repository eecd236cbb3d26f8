import type { App } from '../api/context.ts';
import { QuotesBody } from '../api/schemas.ts';
import { adminsOnly, type OpsAuth } from '../shared/ops-admin.ts';
import type { MarketDataFeed } from './feed.ts';

/**
 * The quote switch of the HTTP API (`POST /v1/admin/market/quotes`), served by the `market-data`
 * service on its own port: the switch is the feed's, in the process the feed runs in, so broker-api
 * cannot answer it in connected mode. It holds until the service stops (QUOTES_ENABLED is what a
 * start takes). An admin's token from broker-api (the same TRADECORE_JWT_SECRET) is what it takes.
 */
export function marketDataAdminRoutes(
  app: App,
  /** No `auth` without TRADECORE_JWT_SECRET: nothing this process could verify, so the route is refused. */
  options: { feed: Pick<MarketDataFeed, 'setQuotesEnabled'>; auth: OpsAuth | undefined },
): void {
  const { feed, auth } = options;
  const admins = adminsOnly(auth, {
    reason: 'MARKET_DATA_ADMIN_UNAVAILABLE',
    detail: 'set TRADECORE_JWT_SECRET (the one of broker-api) to use the admin route here',
  });

  app.post(
    '/v1/admin/market/quotes',
    { onRequest: admins, schema: { body: QuotesBody } },
    async (request) => {
      feed.setQuotesEnabled(request.body.enabled);
      return { enabled: request.body.enabled };
    },
  );
}
