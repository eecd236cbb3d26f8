/**
 * `tradecore serve <service>`: one service per process, each adapter chosen by its URL. A service
 * that shares state with the others cannot run on embedded stand-ins (a PGlite folder, an
 * in-process transport or cache is private to one process), so each one names the URLs it needs
 * and the start fails fast, naming the missing variable, before anything is opened.
 */
import pino from 'pino';
import { startB3EngineService } from '../b3-engine/main.ts';
import { startMarketDataService } from '../market-data/main.ts';
import { startProjectorService } from '../projector/main.ts';
import { type Config, ConfigError } from '../shared/config.ts';
import { assertCanListen } from '../shared/listen.ts';
import type { RunningService } from '../shared/ops-server.ts';

export const SERVICES = ['broker-api', 'b3-engine', 'market-data', 'projector', 'query-api'] as const;
export type ServiceName = (typeof SERVICES)[number];

export function isServiceName(name: string | undefined): name is ServiceName {
  return (SERVICES as readonly string[]).includes(name ?? '');
}

/** The variables each service needs set, beyond the event store every one of them needs. */
type Need = { variable: string; present: (config: Config) => boolean; why: string };
/** Read models: the processes that write them and those that read them must see the same stores. */
const READ_MODELS: Need[] = [
  {
    variable: 'MYSQL_URL',
    present: (c) => !!c.mysqlUrl,
    why: 'the orders, wallets and instruments read models live in MySQL',
  },
  {
    variable: 'MONGO_URL',
    present: (c) => !!c.mongoUrl,
    why: 'the quotes and audit read models live in Mongo',
  },
];

const NEEDS: Record<ServiceName, Need[]> = {
  'broker-api': [
    ...READ_MODELS,
    {
      variable: 'AMQP_URL',
      present: (c) => !!c.amqpUrl,
      why: 'the order process routes orders to the b3-engine over RabbitMQ',
    },
    {
      variable: 'REDIS_URL',
      present: (c) => !!c.redisUrl,
      why: 'market buys reserve against the broker asset cache',
    },
  ],
  'b3-engine': [
    { variable: 'AMQP_URL', present: (c) => !!c.amqpUrl, why: 'orders arrive from broker-api over RabbitMQ' },
    {
      variable: 'B3_REDIS_URL',
      present: (c) => !!c.b3RedisUrl,
      why: 'reference prices come from the B3 market cache (or set REDIS_URL)',
    },
  ],
  'market-data': [
    {
      variable: 'REDIS_URL',
      present: (c) => !!c.redisUrl,
      why: 'quotes go to the broker asset cache and the B3 market cache',
    },
  ],
  projector: READ_MODELS,
  'query-api': READ_MODELS,
};

/** Throws a ConfigError naming the first variable the service needs and does not have. */
export function checkServeConfig(service: ServiceName, config: Config): void {
  if (!config.databaseUrl && !config.esdbUrl)
    throw new ConfigError(
      `invalid configuration: DATABASE_URL: serve ${service} needs a shared event store (DATABASE_URL, or ESDB_URL)`,
    );
  for (const need of NEEDS[service])
    if (!need.present(config))
      throw new ConfigError(
        `invalid configuration: ${need.variable}: serve ${service} needs it (${need.why})`,
      );
}

export async function startService(service: ServiceName, config: Config): Promise<RunningService> {
  checkServeConfig(service, config);
  // Before connecting to anything: a taken port fails at once.
  await assertCanListen(config.host, config.port);
  const logger = pino({ level: config.logLevel }).child({ service });
  // checkServeConfig has made sure of these; the narrowing is for the compiler.
  const amqpUrl = config.amqpUrl ?? '';
  const redisUrl = config.redisUrl ?? '';
  const b3RedisUrl = config.b3RedisUrl ?? '';
  switch (service) {
    case 'broker-api':
    case 'query-api': {
      const { startTradecore } = await import('../all-in-one/main.ts');
      return startTradecore(config, logger, service);
    }
    case 'b3-engine':
      return startB3EngineService({ ...config, amqpUrl, b3RedisUrl }, logger);
    case 'market-data':
      return startMarketDataService({ ...config, redisUrl, b3RedisUrl }, logger);
    case 'projector':
      return startProjectorService(config, logger);
  }
}
