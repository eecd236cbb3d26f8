import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { b3RedisKeyPrefix, ConfigError, ConfigSchema, loadConfig, redact } from './config.ts';

describe('configuration', () => {
  it('runs embedded with defaults when nothing is set', () => {
    expect(loadConfig({})).toEqual({
      dataDir: './.tradecore',
      port: 8080,
      host: '127.0.0.1',
      logLevel: 'info',
      databaseUrl: undefined,
      b3DatabaseUrl: undefined,
      esdbUrl: undefined,
      mysqlUrl: undefined,
      mongoUrl: undefined,
      databasePoolSize: 10,
      jwtTtlSeconds: 3600,
      kafkaTopicPrefix: '',
      priceMaxAgeMs: 300_000,
      priceBandPercent: 10,
      sessionClose: { hour: 18, minute: 0 },
      quoteSource: 'random-walk',
      quoteIntervalMs: 1000,
      quoteSeed: 42,
      quotesEnabled: true,
    });
  });

  it('reads the trading services’ settings: Redis, RabbitMQ, Kafka, prices and quotes', () => {
    const config = loadConfig({
      REDIS_URL: 'redis://cache:6379',
      AMQP_URL: 'amqp://u:p@mq:5672',
      KAFKA_BROKERS: 'k1:9092, k2:9092',
      PRICE_MAX_AGE_SECONDS: '30',
      PRICE_BAND_PERCENT: '7.5',
      QUOTE_SOURCE: 'replay',
      QUOTE_REPLAY_FILE: 'services/market-data/samples/brapi-quotes.json',
      QUOTES_ENABLED: 'false',
    });
    expect(config).toMatchObject({
      redisUrl: 'redis://cache:6379',
      // The B3 market cache defaults to another database of the same server.
      b3RedisUrl: 'redis://cache:6379/1',
      amqpUrl: 'amqp://u:p@mq:5672',
      kafkaBrokers: ['k1:9092', 'k2:9092'],
      priceMaxAgeMs: 30_000,
      priceBandPercent: 7.5,
      quoteSource: 'replay',
      quotesEnabled: false,
    });
    expect(loadConfig({ REDIS_URL: 'redis://a:6379', B3_REDIS_URL: 'redis://b:6380' }).b3RedisUrl).toBe(
      'redis://b:6380',
    );
    expect(loadConfig({ KAFKA_BROKERS: '' }).kafkaBrokers).toBeUndefined();
    expect(() => loadConfig({ KAFKA_BROKERS: 'no-port' })).toThrow(/KAFKA_BROKERS/);
    expect(() => loadConfig({ AMQP_URL: 'not a url' })).toThrow(/AMQP_URL/);
    expect(() => loadConfig({ QUOTE_SOURCE: 'bloomberg' })).toThrow(/QUOTE_SOURCE/);
    expect(loadConfig({ B3_SESSION_CLOSE: '17:55' }).sessionClose).toEqual({ hour: 17, minute: 55 });
    for (const bad of ['18h', '24:00', '9:30', '18:60', ''])
      expect(() => loadConfig({ B3_SESSION_CLOSE: bad }), bad).toThrow(/B3_SESSION_CLOSE: must be HH:MM/);
    expect(loadConfig({ QUOTE_SOURCE: 'brapi', BRAPI_TOKEN: 't0ken' })).toMatchObject({
      quoteSource: 'brapi',
      brapiToken: 't0ken',
    });
  });

  it('gives the B3 market cache a b3: key prefix only where it shares the broker cache’s Redis database', () => {
    const prefix = (env: Record<string, string>) => b3RedisKeyPrefix(loadConfig(env));
    expect(prefix({ REDIS_URL: 'redis://cache:6379/1' })).toBe('b3:');
    expect(prefix({ REDIS_URL: 'redis://cache', B3_REDIS_URL: 'redis://cache:6379/0' })).toBe('b3:');
    // The default: database 1 of REDIS_URL's server, apart from database 0.
    expect(prefix({ REDIS_URL: 'redis://cache:6379' })).toBe('');
    expect(prefix({ REDIS_URL: 'redis://cache:6379/2', B3_REDIS_URL: 'redis://cache:6379/3' })).toBe('');
    expect(prefix({ REDIS_URL: 'redis://a:6379', B3_REDIS_URL: 'redis://b:6379' })).toBe('');
    expect(prefix({})).toBe('');
  });

  it('reads the connected-mode URLs and treats an empty one as unset', () => {
    const config = loadConfig({ DATABASE_URL: 'postgres://u:p@db:5432/x', ESDB_URL: '', PORT: '9000' });
    expect(config).toMatchObject({ databaseUrl: 'postgres://u:p@db:5432/x', esdbUrl: undefined, port: 9000 });
  });

  it('treats an empty number setting as unset, and says what a bad one must be', () => {
    // `PORT=` in .env (or compose's `${PORT:-}`) is the default port, not 0, a random one.
    expect(
      loadConfig({
        PORT: '',
        TRADECORE_JWT_TTL_SECONDS: ' ',
        PRICE_MAX_AGE_SECONDS: '',
        PRICE_BAND_PERCENT: '',
        QUOTE_INTERVAL_MS: '',
        QUOTE_SEED: '',
      }),
    ).toMatchObject({
      port: 8080,
      jwtTtlSeconds: 3600,
      priceMaxAgeMs: 300_000,
      priceBandPercent: 10,
      quoteIntervalMs: 1000,
      quoteSeed: 42,
    });
    expect(loadConfig({ PORT: '0', QUOTE_SEED: '-7' })).toMatchObject({ port: 0, quoteSeed: -7 });
    const cases: Array<[Record<string, string>, string]> = [
      [{ PORT: 'abc' }, 'PORT: must be a whole number from 0 to 65535'],
      [{ PORT: '65536' }, 'PORT: must be a whole number from 0 to 65535'],
      [{ PORT: '80.5' }, 'PORT: must be a whole number from 0 to 65535'],
      [
        { TRADECORE_JWT_TTL_SECONDS: '59' },
        'TRADECORE_JWT_TTL_SECONDS: must be a whole number from 60 to 604800',
      ],
      [{ PRICE_MAX_AGE_SECONDS: '0' }, 'PRICE_MAX_AGE_SECONDS: must be a whole number of at least 1'],
      [{ PRICE_BAND_PERCENT: '0' }, 'PRICE_BAND_PERCENT: must be a number above 0, at most 100'],
      [{ QUOTE_INTERVAL_MS: 'fast' }, 'QUOTE_INTERVAL_MS: must be a whole number of at least 10'],
      [{ QUOTE_SEED: '4.2' }, 'QUOTE_SEED: must be a whole number'],
      [{ DATABASE_POOL_SIZE: '0' }, 'DATABASE_POOL_SIZE: must be a whole number from 1 to 200'],
    ];
    for (const [env, message] of cases)
      expect(() => loadConfig(env), JSON.stringify(env)).toThrow(`invalid configuration: ${message}`);
  });

  it('refuses a short JWT secret or admin password, naming the variable', () => {
    expect(() => loadConfig({ TRADECORE_JWT_SECRET: 'short' })).toThrow(/TRADECORE_JWT_SECRET/);
    expect(() => loadConfig({ TRADECORE_ADMIN_PASSWORD: 'short' })).toThrow(/TRADECORE_ADMIN_PASSWORD/);
  });

  it('refuses the placeholders .env.example gives for the admin password and the JWT secret', () => {
    const example = readFileSync(new URL('../../.env.example', import.meta.url), 'utf8');
    const placeholder = (name: string) => new RegExp(`^${name}=(.*)$`, 'm').exec(example)?.[1] ?? '';
    for (const name of ['TRADECORE_ADMIN_PASSWORD', 'TRADECORE_JWT_SECRET']) {
      expect(placeholder(name)).toMatch(/^change-me/);
      expect(() => loadConfig({ [name]: placeholder(name) })).toThrow(
        `${name}: is still the placeholder from .env.example`,
      );
    }
  });

  it('refuses a URL of another kind of server, naming the variable and the schemes it takes', () => {
    expect(() => loadConfig({ DATABASE_URL: 'mysql://root@127.0.0.1:3306/x' })).toThrow(
      'DATABASE_URL: must be a postgres:// or postgresql:// URL',
    );
    expect(() => loadConfig({ REDIS_URL: 'mongodb://127.0.0.1:27017' })).toThrow(
      'REDIS_URL: must be a redis:// or rediss:// URL',
    );
    expect(() => loadConfig({ AMQP_URL: 'http://127.0.0.1:15672' })).toThrow('AMQP_URL: must be a amqp://');
    expect(() => loadConfig({ MYSQL_URL: 'postgres://db/x' })).toThrow('MYSQL_URL: must be a mysql:// URL');
    expect(loadConfig({ DATABASE_URL: 'postgresql://db/x', AMQP_URL: 'amqps://mq' })).toMatchObject({
      databaseUrl: 'postgresql://db/x',
      amqpUrl: 'amqps://mq',
    });
  });

  it('fails fast naming the bad variable', () => {
    expect(() => loadConfig({ PORT: 'eighty' })).toThrow(ConfigError);
    expect(() => loadConfig({ PORT: 'eighty' })).toThrow(/PORT/);
    expect(() => loadConfig({ DATABASE_URL: 'not a url' })).toThrow(/DATABASE_URL/);
    expect(() => loadConfig({ LOG_LEVEL: 'loud' })).toThrow(/LOG_LEVEL/);
  });

  it('reads the read-model stores’ URLs, MYSQL_URL and MONGO_URL', () => {
    const config = loadConfig({
      MYSQL_URL: 'mysql://u:p@mysql:3306/orders',
      MONGO_URL: 'mongodb://mongo:27017/rm',
    });
    expect(config).toMatchObject({
      mysqlUrl: 'mysql://u:p@mysql:3306/orders',
      mongoUrl: 'mongodb://mongo:27017/rm',
    });
    expect(loadConfig({ MYSQL_URL: ' ', MONGO_URL: '' })).toMatchObject({
      mysqlUrl: undefined,
      mongoUrl: undefined,
    });
    expect(() => loadConfig({ MONGO_URL: 'mongo at home' })).toThrow(/MONGO_URL/);
  });

  it('never prints a password in a URL', () => {
    expect(redact('postgres://trader:secret@db:5432/x')).toBe('postgres://trader:***@db:5432/x');
  });
});

describe('the user documentation', () => {
  it('names as a setting only variables the configuration reads (or .env.example lists)', () => {
    const root = (path: string) => new URL(`../../${path}`, import.meta.url);
    const known = new Set([
      ...Object.keys(ConfigSchema.shape),
      ...[...readFileSync(root('.env.example'), 'utf8').matchAll(/^#?\s*([A-Z][A-Z0-9_]*)=/gm)].map(
        (match) => match[1],
      ),
    ]);
    // What reads as an environment variable: UPPER_SNAKE ending like one, in backticks (problem
    // reasons such as INVALID_URL aside).
    const setting =
      /`((?!INVALID_)(?:[A-Z0-9]+_)+(?:MS|URL|SECONDS|DIR|PASSWORD|SECRET|PERCENT|FILE|BROKERS|PREFIX|LEVEL|SEED|ENABLED))`/g;
    const unknown = ['README.md', 'docs/api.md', 'docs/cli.md', 'docs/operations.md'].flatMap((file) =>
      [...readFileSync(root(file), 'utf8').matchAll(setting)]
        .map((match) => match[1])
        .filter((name) => !known.has(name))
        .map((name) => `${file}: ${name}`),
    );
    expect(unknown).toEqual([]);
  });
});
