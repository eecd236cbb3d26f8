import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../shared/config.ts';
import { type RunningTradecore, startTradecore } from './main.ts';
import { client, until } from './testing.ts';

/**
 * An admin's reference price over HTTP, with the default random-walk feed running: the price band,
 * the quote, the book and the instrument agree on it, before and after a restart.
 */
const dataDirs: string[] = [];
afterAll(async () => {
  for (const folder of dataDirs) await rm(folder, { recursive: true, force: true });
});

function start(dataDir: string): Promise<RunningTradecore> {
  const config = loadConfig({
    TRADECORE_DATA_DIR: dataDir,
    PORT: '0',
    LOG_LEVEL: 'silent',
    TRADECORE_ADMIN_PASSWORD: 'reference-price-admin',
    QUOTE_SOURCE: 'random-walk',
    QUOTE_INTERVAL_MS: '100',
  });
  return startTradecore(config, pino({ level: 'silent' }));
}

describe('an admin’s reference price, embedded with the random-walk feed', () => {
  it('holds for the band, the quote, the book and the instrument, across a restart', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'tradecore-pin-'));
    dataDirs.push(dataDir);
    let running = await start(dataDir);
    try {
      let call = client(running.url);
      const login = async (username: string, password: string) =>
        (await call('POST', '/v1/auth/login', { body: { username, password } })).body.token as string;
      const admin = await login('admin', 'reference-price-admin');
      const pinned = await call('POST', '/v1/admin/instruments/PETR4/reference-price', {
        token: admin,
        body: { referencePrice: '32.00' },
      });
      expect(pinned.body).toMatchObject({ referencePrice: '32.00' });
      const pinnedAt = Date.now();
      // The walk goes on for the other symbols, quote after quote.
      const vale = await until(
        () => call('GET', '/v1/market/VALE3/quote', { token: admin }),
        (answer) => Date.parse(answer.body?.at) > pinnedAt + 300,
      );
      expect(vale.body).toMatchObject({ source: 'random-walk' });
      expect((await call('GET', '/v1/market/PETR4/quote', { token: admin })).body).toMatchObject({
        last: '32.00',
        source: 'admin',
      });

      await running.stop();
      running = await start(dataDir);
      call = client(running.url);
      const trader = (
        await call('POST', '/v1/auth/register', { body: { username: 'trader', password: 'trader-pass' } })
      ).body.accountId as string;
      const token = await login('trader', 'trader-pass');
      await call('POST', `/v1/accounts/${trader}/deposits`, { token, body: { amount: '10000.00' } });
      // The band's lower edge: 10 % under 32.00.
      const buy = await call('POST', '/v1/orders', {
        token,
        body: {
          accountId: trader,
          symbol: 'PETR4',
          side: 'BUY',
          type: 'LIMIT',
          quantity: 100,
          price: '28.80',
        },
      });
      expect(buy.status).toBe(202);
      const order = await until(
        () => call('GET', `/v1/orders/${buy.body.orderId}`, { token }),
        // The orders read model may not have the order yet (a 404, whose body's status is 404).
        (answer) => answer.status === 200 && answer.body?.status !== 'PENDING_NEW',
      );
      expect(order.body, JSON.stringify(order.body)).toMatchObject({ status: 'NEW' });
      const book = await until(
        () => call('GET', '/v1/market/PETR4/book', { token }),
        // The book's status row and its levels are two reads: wait for both.
        (answer) => answer.body?.bids?.length === 1 && answer.body?.referencePrice !== null,
      );
      expect(book.body).toMatchObject({ referencePrice: '32.00', bids: [{ price: '28.80' }] });
      expect((await call('GET', '/v1/market/PETR4/quote', { token })).body).toMatchObject({
        last: '32.00',
        source: 'admin',
      });
      expect((await call('GET', '/v1/instruments/PETR4', { token })).body).toMatchObject({
        referencePrice: '32.00',
      });
    } finally {
      await running.stop();
    }
    // Two starts on a PGlite data folder take seconds on a busy two-core machine.
  }, 120_000);
});
