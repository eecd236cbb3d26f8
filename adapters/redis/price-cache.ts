/**
 * The price cache on Redis (ioredis): one hash per symbol, `<prefix>price:<symbol>` with the
 * fields `price` (cents), `at` (epoch ms), `source` and `pinned` (0/1). The broker asset cache
 * and the B3 market cache are two instances on separate Redis databases or servers, chosen by URL
 * (`redis://host:6379/1` selects database 1).
 *
 * A set is one Lua script, so "only if newer" holds with several feeds writing at once.
 */
import { Redis } from 'ioredis';
import type { CachedPrice, PriceCache } from '../../domain/shared/price-cache.ts';

// Keeps a pinned price unless the new one is pinned too; otherwise the newer observation wins.
const SET_IF_NEWER = `
local current = redis.call('HMGET', KEYS[1], 'at', 'pinned')
local pinned = ARGV[4]
if current[1] and pinned ~= '1' then
  if current[2] == '1' then return 0 end
  if tonumber(current[1]) > tonumber(ARGV[2]) then return 0 end
end
redis.call('HSET', KEYS[1], 'price', ARGV[1], 'at', ARGV[2], 'source', ARGV[3], 'pinned', pinned)
return 1`;

export interface RedisPriceCacheOptions {
  url: string;
  /** Prepended to every key (tests isolate with one). */
  keyPrefix?: string;
  /**
   * Where the connection's errors go (a lost connection, each failed reconnect): without a
   * listener ioredis prints them to stderr itself, outside the service's JSON logs.
   */
  logger?: { warn(details: object, message: string): void };
}

export class RedisPriceCache implements PriceCache {
  private constructor(
    readonly redis: Redis,
    private readonly keyPrefix: string,
  ) {}

  static async connect(options: RedisPriceCacheOptions): Promise<RedisPriceCache> {
    const redis = new Redis(options.url, {
      lazyConnect: true,
      maxRetriesPerRequest: 3,
      connectTimeout: 5_000,
    });
    // While connecting, an error is the start's to report (ioredis rejects with "Connection is
    // closed.", its cause only in the event); once connected, the log's.
    let cause: Error | undefined;
    const connecting = (error: Error) => {
      cause = error;
    };
    redis.on('error', connecting);
    try {
      await redis.connect();
    } catch (error) {
      // Or ioredis goes on reconnecting to a server the caller has given up on.
      redis.disconnect();
      throw cause ?? error;
    }
    redis.off('error', connecting);
    redis.on('error', (error: Error) => options.logger?.warn({ err: error }, 'Redis connection error'));
    return new RedisPriceCache(redis, options.keyPrefix ?? '');
  }

  private key(symbol: string): string {
    return `${this.keyPrefix}price:${symbol}`;
  }

  async set(price: CachedPrice): Promise<void> {
    await this.redis.eval(
      SET_IF_NEWER,
      1,
      this.key(price.symbol),
      String(price.price),
      String(price.at),
      price.source,
      price.pinned ? '1' : '0',
    );
  }

  async get(symbol: string): Promise<CachedPrice | undefined> {
    const fields = await this.redis.hgetall(this.key(symbol));
    if (fields.price === undefined || fields.at === undefined) return undefined;
    const price = Number(fields.price);
    const at = Number(fields.at);
    if (!Number.isSafeInteger(price) || price <= 0 || !Number.isFinite(at)) return undefined;
    return { symbol, price, at, source: fields.source ?? 'unknown', pinned: fields.pinned === '1' };
  }

  async delete(symbol: string): Promise<void> {
    await this.redis.del(this.key(symbol));
  }

  async close(): Promise<void> {
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}
