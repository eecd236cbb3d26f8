/**
 * `tradecore serve projector`: every read model followed in its own process — orders and wallets
 * into MySQL (MYSQL_URL), trades, depth and candles into Postgres (B3_DATABASE_URL or
 * DATABASE_URL, schema `readmodels`), quotes and the audit timeline into Mongo (MONGO_URL). Each
 * projector keeps its checkpoint with its rows, so a restart resumes where it stopped.
 */
import type { Logger } from 'pino';
import type { Config } from '../shared/config.ts';
import { lockEmbeddedDataFolder } from '../shared/data-lock.ts';
import { connectEventStores } from '../shared/event-stores.ts';
import { type RunningService, ShutdownStack, startOpsServer } from '../shared/ops-server.ts';
import { connectReadModelStores, projectionsReadiness, startProjections } from '../shared/read-models.ts';

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
    const eventStores = await connectEventStores(config);
    stack.push('event stores', () => eventStores.close());
    const readModelStores = await connectReadModelStores(config);
    stack.push('read-model stores', () => readModelStores.close());
    const projections = await startProjections({
      eventStores,
      readModelStores,
      logger: logger.child({ component: 'projections' }),
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
      },
    });
    stack.push('http', () => ops.close());
    return {
      url: ops.url,
      banner: [
        `tradecore projector: health and metrics on ${ops.url}`,
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
