import { z } from 'zod';

/**
 * Every setting tradecore reads from the environment, validated at start. Nothing else reads
 * `process.env`. An adapter is chosen by its URL: absent means embedded.
 */
const optionalUrl = (...schemes: string[]) =>
  z
    .string()
    .trim()
    .transform((value) => (value === '' ? undefined : value))
    .pipe(
      z
        .url()
        .refine((value) => !URL.canParse(value) || schemes.includes(new URL(value).protocol.slice(0, -1)), {
          message: `must be a ${schemes.map((scheme) => `${scheme}://`).join(' or ')} URL`,
        })
        .optional(),
    )
    .optional();

/** Text that may be absent; empty (`BRAPI_TOKEN=` in .env, compose's `${BRAPI_TOKEN:-}`) is absent. */
const optionalText = () =>
  z
    .string()
    .trim()
    .transform((value) => (value === '' ? undefined : value))
    .optional();

/**
 * A number setting; empty (`PORT=` in .env, compose's `${PORT:-}`) is unset: the default. Not
 * `z.coerce.number()`, which reads '' as 0 (PORT= listened on a random port) and answers
 * `expected number, received NaN` to `PORT=abc`: the message says what the setting takes.
 */
const numberSetting = (
  fallback: number,
  range: { whole?: boolean; minimum?: number; above?: number; maximum?: number } = {},
) => {
  const { whole = true, minimum, above, maximum } = range;
  const bounds =
    minimum !== undefined && maximum !== undefined
      ? ` from ${minimum} to ${maximum}`
      : [
          minimum !== undefined ? ` of at least ${minimum}` : '',
          above !== undefined ? ` above ${above}` : '',
          maximum !== undefined ? `${above !== undefined ? ',' : ''} at most ${maximum}` : '',
        ].join('');
  const message = `must be ${whole ? 'a whole number' : 'a number'}${bounds}`;
  const shape = whole ? /^[+-]?\d+$/ : /^[+-]?(\d+(\.\d*)?|\.\d+)$/;
  return z
    .string()
    .trim()
    .transform((value) => (value === '' ? undefined : value))
    .pipe(
      z
        .string()
        .refine((value) => {
          const number = Number(value);
          return (
            shape.test(value) &&
            (whole ? Number.isSafeInteger(number) : Number.isFinite(number)) &&
            (minimum === undefined || number >= minimum) &&
            (above === undefined || number > above) &&
            (maximum === undefined || number <= maximum)
          );
        }, message)
        .transform(Number)
        .optional(),
    )
    .optional()
    .transform((value) => value ?? fallback);
};

/** A secret `.env.example` gives a placeholder for: copied unchanged, everyone knows it. */
const secret = (minimum: number) =>
  z
    .string()
    .min(minimum, `must be at least ${minimum} characters`)
    .refine(
      (value) => !value.startsWith('change-me'),
      'is still the placeholder from .env.example: set your own',
    );

export const ConfigSchema = z.object({
  TRADECORE_DATA_DIR: z.string().min(1).default('./.tradecore'),
  PORT: numberSetting(8080, { minimum: 0, maximum: 65_535 }),
  HOST: z.string().min(1).default('127.0.0.1'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Broker event store (Postgres); PGlite in the data folder when absent. */
  DATABASE_URL: optionalUrl('postgres', 'postgresql'),
  /** B3 event store (Postgres); DATABASE_URL's server, schema `b3`, when absent. */
  B3_DATABASE_URL: optionalUrl('postgres', 'postgresql'),
  /** EventStoreDB for both event stores instead of Postgres, when set. */
  ESDB_URL: optionalUrl('esdb', 'esdb+discover'),
  /** MySQL (or MariaDB) for the broker read models (orders, wallets, instruments); the URL names the database. PGlite when absent. */
  MYSQL_URL: optionalUrl('mysql'),
  /** Mongo for the document read models (quotes, audit timeline); database from the URL's path, else `tradecore`. PGlite when absent. */
  MONGO_URL: optionalUrl('mongodb', 'mongodb+srv'),
  /** Connections each Postgres and MySQL pool of a process may hold (a process has up to four). */
  DATABASE_POOL_SIZE: numberSetting(10, { minimum: 1, maximum: 200 }),
  /** The `admin` account's password; generated on first start and kept in the data folder when absent. */
  TRADECORE_ADMIN_PASSWORD: secret(8).pipe(z.string().max(200)).optional(),
  /** The JWT signing key (HS256); generated on first start and kept in the data folder when absent. */
  TRADECORE_JWT_SECRET: secret(32).optional(),
  /** How long a login token stays valid, in seconds. */
  TRADECORE_JWT_TTL_SECONDS: numberSetting(3600, { minimum: 60, maximum: 604_800 }),
  /** Redis for the broker asset cache (prices market buys reserve against); in-process cache when absent. */
  REDIS_URL: optionalUrl('redis', 'rediss'),
  /** Redis for the B3 market cache (the engine's reference prices); REDIS_URL's server, database 1, when absent. */
  B3_REDIS_URL: optionalUrl('redis', 'rediss'),
  /** RabbitMQ for the broker↔B3 transport; in-process transport when absent. */
  AMQP_URL: optionalUrl('amqp', 'amqps'),
  /** Kafka bootstrap brokers, comma-separated host:port; no integration events when absent. */
  KAFKA_BROKERS: z
    .string()
    .trim()
    .transform((value) =>
      value
        .split(',')
        .map((broker) => broker.trim())
        .filter((broker) => broker !== ''),
    )
    .pipe(z.array(z.string().regex(/^[^\s:]+:\d{1,5}$/, 'must be host:port, comma-separated')))
    .optional(),
  /** Prepended to the Kafka topic names (`<prefix>-order-events-v1`); none when absent. */
  KAFKA_TOPIC_PREFIX: z.string().trim().default(''),
  /** A reference price older than this makes the B3 engine reject an order (REFERENCE_PRICE_STALE). */
  PRICE_MAX_AGE_SECONDS: numberSetting(300, { minimum: 1 }),
  /** Half-width of the B3 price band around the reference price, in percent. */
  PRICE_BAND_PERCENT: numberSetting(10, { whole: false, above: 0, maximum: 100 }),
  /**
   * When B3's trading session closes, 24-hour HH:MM in São Paulo time: DAY orders expire then.
   * B3's regular equities session ends around 18:00 (its hours move with US daylight saving).
   */
  B3_SESSION_CLOSE: z
    .string()
    .trim()
    .regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be HH:MM, 24-hour, in São Paulo time')
    .default('18:00'),
  /** Where quotes come from: a seeded random walk, a recorded Brapi file, or nowhere (admin prices only). */
  QUOTE_SOURCE: z.enum(['random-walk', 'replay', 'brapi', 'off']).default('random-walk'),
  /** QUOTE_SOURCE=brapi: the Brapi API (default https://brapi.dev) and its token. */
  BRAPI_URL: optionalUrl('https', 'http'),
  BRAPI_TOKEN: optionalText(),
  /** The Brapi `/api/quote` recording QUOTE_SOURCE=replay plays. */
  QUOTE_REPLAY_FILE: optionalText(),
  QUOTE_INTERVAL_MS: numberSetting(1000, { minimum: 10 }),
  QUOTE_SEED: numberSetting(42),
  /** `false` starts with quotes switched off (an admin can switch them on). */
  QUOTES_ENABLED: z
    .enum(['true', 'false', '1', '0'])
    .default('true')
    .transform((value) => value === 'true' || value === '1'),
});

export type Config = {
  dataDir: string;
  port: number;
  host: string;
  logLevel: z.infer<typeof ConfigSchema>['LOG_LEVEL'];
  databaseUrl?: string;
  b3DatabaseUrl?: string;
  esdbUrl?: string;
  mysqlUrl?: string;
  mongoUrl?: string;
  databasePoolSize: number;
  adminPassword?: string;
  jwtSecret?: string;
  jwtTtlSeconds: number;
  redisUrl?: string;
  b3RedisUrl?: string;
  amqpUrl?: string;
  kafkaBrokers?: string[];
  kafkaTopicPrefix: string;
  priceMaxAgeMs: number;
  priceBandPercent: number;
  /** The session close, wall-clock time in America/Sao_Paulo. */
  sessionClose: { hour: number; minute: number };
  quoteSource: 'random-walk' | 'replay' | 'brapi' | 'off';
  brapiUrl?: string;
  brapiToken?: string;
  quoteReplayFile?: string;
  quoteIntervalMs: number;
  quoteSeed: number;
  quotesEnabled: boolean;
};

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** A server a setting names could not be used at start: the message names the setting. */
export class ServerUnreachable extends Error {
  override readonly name = 'ServerUnreachable';
}

/**
 * Opens what `variable`'s URL names; a failure (nothing listening, another kind of server on that
 * port, refused credentials) is a `ServerUnreachable` naming the setting and its URL, password
 * hidden, so that a misconfigured service says which setting to fix.
 */
export async function reaching<T>(variable: string, url: string, open: () => Promise<T>): Promise<T> {
  try {
    return await open();
  } catch (error) {
    throw new ServerUnreachable(
      `${variable}: cannot use ${shownUrl(url)}: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
}

/** A URL as `redact` shows it; a list of `host:port` (KAFKA_BROKERS), which holds no password, as it is. */
const shownUrl = (url: string): string => (/^[a-z][a-z\d+.-]*:\/\//i.test(url) ? redact(url) : url);

/** A URL without its password, for logs and banners. */
export function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparseable URL)';
  }
}

/** The setting that gave the B3 side's URL: its own, or the broker's it defaults to. */
export const b3DatabaseVariable = (config: Config): string =>
  config.b3DatabaseUrl ? 'B3_DATABASE_URL' : 'DATABASE_URL';
export const b3RedisVariable = (config: Config): string =>
  config.redisUrl && config.b3RedisUrl === redisDatabase(config.redisUrl, 1) ? 'REDIS_URL' : 'B3_REDIS_URL';

export function loadConfig(env: Record<string, string | undefined>): Config {
  const parsed = ConfigSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(`invalid configuration: ${problems.join('; ')}`);
  }
  const values = parsed.data;
  return {
    dataDir: values.TRADECORE_DATA_DIR,
    port: values.PORT,
    host: values.HOST,
    logLevel: values.LOG_LEVEL,
    databaseUrl: values.DATABASE_URL,
    b3DatabaseUrl: values.B3_DATABASE_URL,
    esdbUrl: values.ESDB_URL,
    mysqlUrl: values.MYSQL_URL,
    mongoUrl: values.MONGO_URL,
    databasePoolSize: values.DATABASE_POOL_SIZE,
    adminPassword: values.TRADECORE_ADMIN_PASSWORD,
    jwtSecret: values.TRADECORE_JWT_SECRET,
    jwtTtlSeconds: values.TRADECORE_JWT_TTL_SECONDS,
    redisUrl: values.REDIS_URL,
    b3RedisUrl: values.B3_REDIS_URL ?? (values.REDIS_URL ? redisDatabase(values.REDIS_URL, 1) : undefined),
    amqpUrl: values.AMQP_URL,
    kafkaBrokers: values.KAFKA_BROKERS && values.KAFKA_BROKERS.length > 0 ? values.KAFKA_BROKERS : undefined,
    kafkaTopicPrefix: values.KAFKA_TOPIC_PREFIX,
    priceMaxAgeMs: values.PRICE_MAX_AGE_SECONDS * 1000,
    priceBandPercent: values.PRICE_BAND_PERCENT,
    sessionClose: {
      hour: Number(values.B3_SESSION_CLOSE.slice(0, 2)),
      minute: Number(values.B3_SESSION_CLOSE.slice(3, 5)),
    },
    quoteSource: values.QUOTE_SOURCE,
    brapiUrl: values.BRAPI_URL,
    brapiToken: values.BRAPI_TOKEN,
    quoteReplayFile: values.QUOTE_REPLAY_FILE,
    quoteIntervalMs: values.QUOTE_INTERVAL_MS,
    quoteSeed: values.QUOTE_SEED,
    quotesEnabled: values.QUOTES_ENABLED,
  };
}

/** The PGlite databases tradecore keeps in the data folder, each in a folder of this name. */
export const EMBEDDED_DATABASES = {
  brokerEvents: 'broker-events',
  b3Events: 'b3-events',
  readModels: 'read-models',
} as const;

/**
 * True when the event stores are PGlite databases in the data folder: neither ESDB_URL nor
 * DATABASE_URL (the choice connectEventStores makes).
 */
export function embeddedEventStores(config: Config): boolean {
  return !config.esdbUrl && !config.databaseUrl;
}

/**
 * True when any read model is served by the PGlite database in the data folder: B3_DATABASE_URL
 * (or DATABASE_URL), MYSQL_URL or MONGO_URL absent (the choices connectReadModelStores makes).
 */
export function embeddedReadModelStores(config: Config): boolean {
  return !(config.b3DatabaseUrl ?? config.databaseUrl) || !config.mysqlUrl || !config.mongoUrl;
}

/**
 * The B3 market cache's key prefix: `b3:` when it is the broker asset cache's Redis database too
 * (REDIS_URL naming database 1, or B3_REDIS_URL naming REDIS_URL's database), so that both caches'
 * `price:<symbol>` keys stay apart; none otherwise, the keys as they always were.
 */
export function b3RedisKeyPrefix(config: Pick<Config, 'redisUrl' | 'b3RedisUrl'>): string {
  return config.redisUrl &&
    config.b3RedisUrl &&
    redisTarget(config.redisUrl) === redisTarget(config.b3RedisUrl)
    ? 'b3:'
    : '';
}

/** `host:port/db` of a Redis URL, with ioredis' defaults (6379, database 0). */
function redisTarget(url: string): string {
  const parsed = new URL(url);
  const database = Number(parsed.pathname.slice(1) || '0');
  return `${parsed.hostname.toLowerCase()}:${parsed.port || '6379'}/${database}`;
}

/** The same Redis server, another database: `redis://h:6379` → `redis://h:6379/1`. */
export function redisDatabase(url: string, database: number): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}
