import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from './config.ts';
import { connectEventStores } from './event-stores.ts';
import { startTradingServices } from './trading.ts';
import {
  b3Schemas,
  brokerSchemas,
  deposit,
  eventually,
  listInstrument,
  ordersReach,
  placeOrder,
  transferSharesIn,
  walletOf,
} from './trading-fixtures.ts';

describe('startTradingServices, embedded', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it('survives a restart: the book, the manager’s position and the admin’s prices come back from the data folder', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'tradecore-trading-'));
    dirs.push(dataDir);
    const config = loadConfig({ TRADECORE_DATA_DIR: dataDir, QUOTE_SOURCE: 'off', QUOTES_ENABLED: 'false' });
    const open = () => connectEventStores(config, { broker: brokerSchemas(), b3: b3Schemas() });

    let stores = await open();
    let services = await startTradingServices({ config, eventStores: stores });
    expect(services.description).toContain('broker↔B3 transport: in process');
    await services.marketData.setReferencePrice('PETR4', 32_50);
    await listInstrument(stores.broker, 'PETR4', 32_50);
    await deposit(stores.broker, 'before-restart', 400_000);
    await transferSharesIn(stores.broker, 'after-restart', 'PETR4', 100, 30_00);
    const buy = await placeOrder(stores.broker, {
      accountId: 'before-restart',
      symbol: 'PETR4',
      side: 'BUY',
      quantity: 100,
      price: 32_50,
    });
    await ordersReach(stores.broker, [buy], ['NEW']);
    await services.orderProcess.idle();
    await services.stop();
    await stores.close();

    stores = await open();
    services = await startTradingServices({ config, eventStores: stores });
    try {
      expect(await services.marketPrices.get('PETR4')).toMatchObject({ price: 32_50, pinned: true });
      const sell = await placeOrder(stores.broker, {
        accountId: 'after-restart',
        symbol: 'PETR4',
        side: 'SELL',
        quantity: 100,
        price: 32_50,
      });
      await ordersReach(stores.broker, [buy, sell], ['FILLED']);
      await eventually(
        async () => (await walletOf(stores.broker, 'before-restart')).positions.PETR4?.available === 100,
      );
      expect((await services.engine.book('PETR4')).size).toBe(0);
    } finally {
      await services.stop();
      await stores.close();
    }
    // Creating two PGlite databases on disk takes seconds on a busy two-core machine.
  }, 90_000);
});
