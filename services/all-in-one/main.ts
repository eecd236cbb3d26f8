import pino, { type Logger } from 'pino';
import { defaultCatalogue } from '../../domain/broker/instrument/catalogue.ts';
import { createReadModels } from '../../projections/read-models/queries.ts';
import { buildApi, closeGracefully } from '../api/app.ts';
import { ADMIN_USERNAME, TokenIssuer } from '../api/auth.ts';
import type { App } from '../api/context.ts';
import { ensureAdmin, seedInstruments } from '../api/seed.ts';
import type { Clock } from '../b3-engine/session-clock.ts';
import { type Config, embeddedEventStores, embeddedReadModelStores } from '../shared/config.ts';
import { lockEmbeddedDataFolder } from '../shared/data-lock.ts';
import { connectEventStores } from '../shared/event-stores.ts';
import { KeyedLanes } from '../shared/keyed-lanes.ts';
import { assertCanListen, listenError } from '../shared/listen.ts';
import { ShutdownStack } from '../shared/ops-server.ts';
import {
  connectReadModelStores,
  projectionsReadiness,
  readModelStoresReadiness,
  startProjections,
} from '../shared/read-models.ts';
import {
  forgetGeneratedAdminPassword,
  loadSecrets,
  retireGeneratedAdminPassword,
} from '../shared/secrets.ts';
import { startTradingServices } from '../shared/trading.ts';

export interface RunningTradecore {
  app: App;
  url: string;
  docsUrl: string;
  /** What to tell the person who started it: where it listens, how to log in, where data lives. */
  banner: string[];
  /** Stops taking requests, then stops the services and projections, then closes the stores. */
  stop(): Promise<void>;
}

/**
 * `tradecore start`: every service in one process. With no URLs in the environment that is the
 * embedded mode — PGlite event stores and read models in the data folder, in-process transport
 * and price caches — and any URL that is set swaps its adapter in. Seeds the default catalogue
 * and the admin account (both idempotent across restarts), follows the read models, runs the
 * order process, the B3 engine and the quote feed, and serves the HTTP API.
 */
/** What one process runs: everything (`start`), or one API service (`serve broker-api|query-api`). */
export type Role = 'all' | 'broker-api' | 'query-api';

export async function startTradecore(
  config: Config,
  logger: Logger = pino({ level: config.logLevel }),
  role: Role = 'all',
  /** The B3 engine's time and timers (tests run a session close without waiting for it). */
  clock?: Clock,
): Promise<RunningTradecore> {
  const stack = new ShutdownStack(logger);
  const stop = () => stack.stop();
  try {
    // Fails in a moment, before the slow part of the start, when the port is taken or the host is no
    // address here; nothing is opened yet.
    await assertCanListen(config.host, config.port);
    // Before anything touches the data folder: a second process on it is refused here.
    const lock = await lockEmbeddedDataFolder(
      config,
      { eventStores: true, readModels: true },
      { serves: true, log: (line) => logger.info(line) },
    );
    if (lock) stack.push('data folder lock', () => lock.release());
    const secrets = await loadSecrets(config);
    // What a start is doing while nothing listens yet: opening the stores (seconds, embedded; a
    // first start creates them), then the trading services catching up with what was left to do.
    logger.info({ dataDir: config.dataDir }, 'starting: opening the event stores and read models');
    const eventStores = await connectEventStores(config, {}, logger);
    stack.push('event stores', () => eventStores.close());

    const readModelStores = await connectReadModelStores(config);
    stack.push('read-model stores', () => readModelStores.close());
    // A lone API process reads the read models; the projector process (or `start`) writes them.
    const projections =
      role !== 'all'
        ? undefined
        : await startProjections({
            eventStores,
            readModelStores,
            logger: logger.child({ component: 'projections' }),
          });
    if (projections) stack.push('projections', () => projections.stop());

    // One set of per-wallet lanes for the API's wallet routes and the order process, when both run
    // here: their commands on one wallet take turns instead of conflicting on its version.
    const walletLanes = new KeyedLanes();
    if (role === 'all')
      logger.info(
        {},
        'starting: the order process, the B3 engine and the quote feed, from their checkpoints',
      );
    const trading =
      role !== 'all'
        ? undefined
        : await startTradingServices({
            config,
            eventStores,
            logger: logger.child({ component: 'trading' }),
            clock,
            walletLanes,
          });
    if (trading) stack.push('trading services', () => trading.stop());
    // `serve broker-api` runs the broker side of the order path next to its API (serve checks the URLs).
    const brokerSide =
      role === 'broker-api' && config.amqpUrl && config.redisUrl
        ? await (await import('../broker/main.ts')).startBrokerSide(
            { ...config, amqpUrl: config.amqpUrl, redisUrl: config.redisUrl },
            eventStores.broker,
            logger,
            walletLanes,
          )
        : undefined;
    if (brokerSide) stack.push('broker side', () => brokerSide.stop());

    // Every server has answered by now: the first writes (the catalogue, the admin account) are
    // not made by a start that then fails on a setting, say a wrong MYSQL_URL password. Nothing
    // here needs them before: the projections and the order process follow the stores live.
    const listed = await seedInstruments(eventStores.broker, defaultCatalogue);
    if (listed.length > 0) logger.info({ instruments: listed.length }, 'default instrument catalogue listed');
    const tokens = new TokenIssuer(secrets.jwtSecret, config.jwtTtlSeconds);
    const admin = await ensureAdmin(
      { broker: eventStores.broker, b3: eventStores.b3, tokens, now: () => new Date() },
      secrets.adminPassword,
      // A password generated now (its file gone, or another process's data folder) replaces nothing.
      { replace: !secrets.adminPasswordGenerated, log: logger },
    );
    if (admin === 'changed')
      logger.warn(
        { from: secrets.adminPasswordFile ?? 'TRADECORE_ADMIN_PASSWORD' },
        "changed the admin's password to the configured one: tokens issued before no longer work",
      );
    if (admin === 'kept') {
      await forgetGeneratedAdminPassword(secrets);
      logger.warn(
        'the admin account has a password set before, which this start keeps: TRADECORE_ADMIN_PASSWORD sets a new one',
      );
    }
    const retired = await retireGeneratedAdminPassword(config);
    if (retired)
      logger.warn(
        { file: retired },
        'removed the admin password an earlier start generated: TRADECORE_ADMIN_PASSWORD is the admin password now',
      );

    const readModels = createReadModels(readModelStores);
    const app = await buildApi({
      broker: eventStores.broker,
      b3: eventStores.b3,
      tokens,
      readModels,
      // Every read-model store (MySQL, Postgres, Mongo) answers, each within its own deadline.
      readiness: {
        'read-models': readModelStoresReadiness(readModelStores),
        // Where this process projects them: a read model whose projector failed is not served fresh.
        ...(projections ? { projections: projectionsReadiness(projections) } : {}),
        ...brokerSide?.readiness,
        ...trading?.readiness,
      },
      projections,
      walletLanes,
      marketData: trading?.marketData,
      logger: logger.child({ component: 'http' }),
    });
    // First to stop: no new requests while the rest drains; open connections get a grace period.
    stack.push('http', () => closeGracefully(app));
    const address = await app.listen({ port: config.port, host: config.host }).catch((error: unknown) => {
      // Taken since the check above. Everything opened is closed below; a password generated by this
      // start must not be lost with it.
      const explained = listenError(error, config.host, config.port);
      if (explained && secrets.adminPasswordGenerated)
        explained.message += `; the admin password generated by this start is kept in ${secrets.adminPasswordFile}`;
      throw explained ?? error;
    });
    const url = address.replace('://0.0.0.0', '://127.0.0.1').replace('://[::]', '://127.0.0.1');
    await lock?.advertise(url);

    const password =
      admin === 'kept'
        ? 'the one set before (TRADECORE_ADMIN_PASSWORD sets a new one)'
        : secrets.adminPasswordGenerated
          ? `${secrets.adminPassword}   (generated now and shown once; kept in ${secrets.adminPasswordFile})`
          : secrets.adminPasswordFile
            ? `the one in ${secrets.adminPasswordFile}`
            : 'the value of TRADECORE_ADMIN_PASSWORD';
    const banner = [
      `tradecore is listening on ${url}`,
      `API docs: ${url}/docs`,
      `event stores: ${eventStores.description}`,
      `read models: ${readModelStores.description ?? 'connected'}`,
      ...(trading?.description ??
        brokerSide?.description ?? [
          `role: ${role} (the order process, B3 engine and projector run elsewhere)`,
        ]),
      `log in as admin: username "${ADMIN_USERNAME}", password ${password}`,
      `  curl -s -X POST ${url}/v1/auth/login -H 'content-type: application/json' -d '{"username":"admin","password":"…"}'`,
      whereDataStays(config, eventStores.description, readModelStores.description),
    ];
    return { app, url, docsUrl: `${url}/docs`, banner, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** The banner's last line: where the data is kept for the next start, the data folder or the servers. */
export function whereDataStays(config: Config, eventStores: string, readModels = 'connected'): string {
  const anyServer =
    !embeddedEventStores(config) || !!config.b3DatabaseUrl || !!config.mysqlUrl || !!config.mongoUrl;
  if (!anyServer) return 'Ctrl-C stops it; the data stays in the data folder for the next start.';
  const onlyServers = !embeddedEventStores(config) && !embeddedReadModelStores(config);
  return `Ctrl-C stops it; the data stays ${onlyServers ? 'on the servers' : 'where it is kept'} for the next start: event stores: ${eventStores}; read models: ${readModels}.`;
}
