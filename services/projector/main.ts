/**
 * `tradecore serve projector`: every read model followed in its own process — orders, wallets and
 * the instrument catalogue into MySQL (MYSQL_URL), trades, depth and candles into Postgres (B3_DATABASE_URL or
 * DATABASE_URL, schema `readmodels`), quotes and the audit timeline into Mongo (MONGO_URL). Each
 * projector keeps its checkpoint with its rows, so a restart resumes where it stopped.
 */
import type { Logger } from 'pino';
import { TokenIssuer } from '../api/auth.ts';
import type { Config } from '../shared/config.ts';
import { lockEmbeddedDataFolder } from '../shared/data-lock.ts';
import { connectEventStores } from '../shared/event-stores.ts';
import {
  type RunningService,
  ShutdownStack,
  STOP_STEP_DEADLINE_MS,
  startOpsServer,
} from '../shared/ops-server.ts';
import {
  connectReadModelStores,
  projectionsReadiness,
  readModelStoresReadiness,
  startProjections,
} from '../shared/read-models.ts';
import { projectionAdminRoutes } from './admin.ts';

export async function startProjectorService(config: Config, logger: Logger): Promise<RunningService> {
  const stack = new ShutdownStack(logger);
  try {
    // ESDB_URL without DATABASE_URL leaves the Postgres read models embedded in the data folder.
    const lock = await lockEmbeddedDataFolder(
      config,
      { eventStores: true, readModels: true },
      { log: (line) => logger.info(line) },
    );
    if (lock) stack.push('data folder lock', () => lock.release());
    const eventStores = await connectEventStores(config, {}, logger);
    stack.push('event stores', () => eventStores.close());
    const readModelStores = await connectReadModelStores(config);
    stack.push('read-model stores', () => readModelStores.close());
    const projections = await startProjections({
      eventStores,
      readModelStores,
      logger: logger.child({ component: 'projections' }),
      stopDeadlineMs: STOP_STEP_DEADLINE_MS,
    });
    stack.push('projections', () => projections.stop());

    const ops = await startOpsServer({
      port: config.port,
      host: config.host,
      logger: logger.child({ component: 'http' }),
      readiness: {
        'broker-event-store': () => eventStores.broker.headPosition(),
        'b3-event-store': () => eventStores.b3.headPosition(),
        'read-models': projectionsReadiness(projections),
        'read-model-stores': readModelStoresReadiness(readModelStores),
      },
      routes: (app) =>
        projectionAdminRoutes(app, {
          projections,
          auth: config.jwtSecret
            ? { tokens: new TokenIssuer(config.jwtSecret, config.jwtTtlSeconds), broker: eventStores.broker }
            : undefined,
        }),
    });
    stack.push('http', () => ops.close());
    return {
      url: ops.url,
      banner: [
        `tradecore projector: health and metrics on ${ops.url}`,
        `projections admin (an admin's token): GET ${ops.url}/v1/admin/projections, POST …/{name}/rebuild`,
        `event stores: ${eventStores.description}`,
        `read models: ${readModelStores.description ?? 'connected'} (${[...projections.projectors.keys()].join(', ')})`,
      ],
      stop: () => stack.stop(),
    };
  } catch (error) {
    await stack.stop();
    throw error;
  }
}
