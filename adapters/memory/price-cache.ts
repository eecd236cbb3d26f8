import { type CachedPrice, type PriceCache, supersedes } from '../../domain/shared/price-cache.ts';

/** The price cache in process, for embedded mode and unit tests. */
export class MemoryPriceCache implements PriceCache {
  private readonly prices = new Map<string, CachedPrice>();

  async set(price: CachedPrice): Promise<void> {
    if (supersedes(this.prices.get(price.symbol), price)) this.prices.set(price.symbol, { ...price });
  }

  async get(symbol: string): Promise<CachedPrice | undefined> {
    const price = this.prices.get(symbol);
    return price ? { ...price } : undefined;
  }

  async delete(symbol: string): Promise<void> {
    this.prices.delete(symbol);
  }

  async close(): Promise<void> {}
}
