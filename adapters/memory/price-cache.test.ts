import { priceCacheContract } from '../shared/price-cache-contract.ts';
import { MemoryPriceCache } from './price-cache.ts';

priceCacheContract('in-process', async () => new MemoryPriceCache());
