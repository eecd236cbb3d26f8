import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { EventSchemas } from '../../domain/shared/event-schemas.ts';
import { SHUTDOWN_GRACE_MS } from '../api/app.ts';
import { loadConfig } from '../shared/config.ts';
import { connectEventStores } from '../shared/event-stores.ts';
import { type RunningTradecore, startTradecore } from './main.ts';
import { client, until } from './testing.ts';

/**
 * The README's run command, end to end over HTTP: start embedded in a fresh data folder, register
 * two traders, fund them, trade, read everything back, stop, start again on the same folder and
 * read the same answers.
 */
let dataDir: string;
const dataDirs: string[] = [];
afterAll(async () => {
  for (const folder of dataDirs) await rm(folder, { recursive: true, force: true });
});

async function freshDataDir(prefix: string): Promise<string> {
  dataDir = await mkdtemp(join(tmpdir(), prefix));
  dataDirs.push(dataDir);
  return dataDir;
}

async function start(logger = pino({ level: 'silent' })): Promise<RunningTradecore> {
  const config = loadConfig({
    TRADECORE_DATA_DIR: dataDir,
    PORT: '0',
    LOG_LEVEL: 'silent',
    TRADECORE_ADMIN_PASSWORD: 'end-to-end-admin',
  });
  return startTradecore(config, logger);
}

describe('tradecore start, embedded', () => {
  it('trades over HTTP and answers the same after a restart', async () => {
    await freshDataDir('tradecore-e2e-');
    // What the start says while nothing listens yet, in its log.
    const said: string[] = [];
    let running = await start(
      pino({ level: 'info' }, { write: (line: string) => said.push(JSON.parse(line).msg as string) }),
    );
    let call = client(running.url);
    expect(running.banner.join('\n')).toContain(`${running.url}/docs`);
    expect(said[0]).toBe('starting: opening the event stores and read models');
    expect(
      said.indexOf('starting: the order process, the B3 engine and the quote feed, from their checkpoints'),
    ).toBeGreaterThan(0);
    expect(said.findIndex((line) => line.startsWith('Server listening'))).toBeGreaterThan(1);

    const login = async (username: string, password: string) =>
      (await call('POST', '/v1/auth/login', { body: { username, password } })).body.token as string;
    const buyerId = (
      await call('POST', '/v1/auth/register', { body: { username: 'buyer', password: 'buyer-pass' } })
    ).body.accountId as string;
    const sellerId = (
      await call('POST', '/v1/auth/register', { body: { username: 'seller', password: 'seller-pass' } })
    ).body.accountId as string;
    let buyer = await login('buyer', 'buyer-pass');
    const seller = await login('seller', 'seller-pass');
    expect(
      (await call('POST', `/v1/accounts/${buyerId}/deposits`, { token: buyer, body: { amount: '10000.00' } }))
        .status,
    ).toBe(201);
    expect(
      (
        await call('POST', `/v1/accounts/${sellerId}/custody-transfers`, {
          token: seller,
          body: { symbol: 'PETR4', quantity: 300 },
        })
      ).status,
    ).toBe(201);
    const sell = await call('POST', '/v1/orders', {
      token: seller,
      body: {
        accountId: sellerId,
        symbol: 'PETR4',
        side: 'SELL',
        type: 'LIMIT',
        quantity: 200,
        price: '32.50',
      },
    });
    expect(sell.status).toBe(202);
    const buy = await call('POST', '/v1/orders', {
      token: buyer,
      headers: { 'x-correlation-id': 'e2e-buy' },
      body: {
        accountId: buyerId,
        symbol: 'PETR4',
        side: 'BUY',
        type: 'LIMIT',
        quantity: 100,
        price: '32.50',
      },
    });
    expect(buy.status).toBe(202);

    const order = await until(
      () => call('GET', `/v1/orders/${buy.body.orderId}`, { token: buyer }),
      (answer) => answer.body?.status === 'FILLED',
    );
    expect(order.body, JSON.stringify(order.body)).toMatchObject({
      status: 'FILLED',
      filledQuantity: 100,
      averagePrice: '32.50',
    });
    const wallet = await until(
      () => call('GET', `/v1/accounts/${buyerId}/wallet`, { token: buyer }),
      (answer) => answer.body?.cash?.available === '6750.00',
    );
    expect(wallet.body).toMatchObject({ cash: { available: '6750.00', reserved: '0.00' } });
    const book = await until(
      () => call('GET', '/v1/market/PETR4/book?depth=5', { token: buyer }),
      (answer) => answer.body?.asks?.length === 1,
    );
    expect(book.body.asks[0]).toMatchObject({ price: '32.50', quantity: 100 });
    const trades = await until(
      () => call('GET', '/v1/trades?symbol=PETR4', { token: buyer }),
      (answer) => answer.body?.items?.length === 1,
    );
    const ownTrades = await until(
      () => call('GET', `/v1/trades?accountId=${buyerId}`, { token: buyer }),
      (answer) => answer.body?.items?.length === 1,
    );
    expect(ownTrades.body.items).toEqual([{ ...trades.body.items[0], side: 'BUY' }]);
    // The tape names a trader's own side only; the admin sees both.
    expect(trades.body.items[0]).toMatchObject({ buyAccountId: buyerId, quantity: 100, price: '32.50' });
    expect(Object.keys(trades.body.items[0])).not.toContain('sellAccountId');
    expect(Object.keys(trades.body.items[0])).not.toContain('sellOrderId');
    const candles = await until(
      () => call('GET', '/v1/market/PETR4/candles?interval=1m', { token: buyer }),
      (answer) => answer.body?.items?.length === 1,
    );
    const orders = await call('GET', '/v1/orders', { token: buyer });
    const admin = await login('admin', 'end-to-end-admin');
    const trace = await call('GET', '/v1/audit/trace/e2e-buy', { token: admin });
    expect((await call('GET', '/v1/trades?symbol=PETR4', { token: admin })).body.items[0]).toMatchObject({
      buyAccountId: buyerId,
      sellAccountId: sellerId,
    });
    expect(trace.body.events.map((event: { type: string }) => event.type)).toEqual(
      expect.arrayContaining([
        'OrderPlaced',
        'CashReserved',
        'OrderAccepted',
        'TradeExecuted',
        'BuySettled',
        'OrderFilled',
      ]),
    );

    await running.stop();
    running = await start();
    call = client(running.url);
    try {
      buyer = await login('buyer', 'buyer-pass');
      expect((await call('GET', `/v1/orders/${buy.body.orderId}`, { token: buyer })).body).toEqual(
        order.body,
      );
      expect((await call('GET', `/v1/accounts/${buyerId}/wallet`, { token: buyer })).body).toEqual(
        wallet.body,
      );
      // The reference price moves with the quote feed; the levels are what the trades left.
      const bookAgain = (await call('GET', '/v1/market/PETR4/book?depth=5', { token: buyer })).body;
      expect({ bids: bookAgain.bids, asks: bookAgain.asks }).toEqual({
        bids: book.body.bids,
        asks: book.body.asks,
      });
      expect((await call('GET', '/v1/trades?symbol=PETR4', { token: buyer })).body).toEqual(trades.body);
      expect((await call('GET', `/v1/trades?accountId=${buyerId}`, { token: buyer })).body).toEqual(
        ownTrades.body,
      );
      expect((await call('GET', '/v1/market/PETR4/candles?interval=1m', { token: buyer })).body).toEqual(
        candles.body,
      );
      expect((await call('GET', '/v1/orders', { token: buyer })).body).toEqual(orders.body);
      const again = await call('GET', '/v1/audit/trace/e2e-buy', {
        token: await login('admin', 'end-to-end-admin'),
      });
      expect(again.body).toEqual(trace.body);
    } finally {
      await running.stop();
    }
  }, 120_000);
});

describe('tradecore start, with a read model that fails', () => {
  it('is not ready, naming the failed read model, while the admin API reports it failed', async () => {
    await freshDataDir('tradecore-failed-');
    // An event the schemas would refuse, written by a store that checks none (as the old demo did).
    const unchecked = await connectEventStores(loadConfig({ TRADECORE_DATA_DIR: dataDir }), {
      broker: new EventSchemas(),
    });
    await unchecked.broker.append('wallet-broken', [
      {
        id: randomUUID(),
        type: 'CashDeposited',
        data: { amount: '1000.00' },
        metadata: {
          correlationId: 'c',
          causationId: 'c',
          actor: 'test',
          occurredAt: new Date().toISOString(),
        },
      },
    ]);
    await unchecked.close();

    const running = await start();
    try {
      const call = client(running.url);
      const admin = (
        await call('POST', '/v1/auth/login', { body: { username: 'admin', password: 'end-to-end-admin' } })
      ).body.token as string;
      const projections = await until(
        () => call('GET', '/v1/admin/projections', { token: admin }),
        (answer) => answer.body?.projections?.some((p: { state: string }) => p.state === 'failed'),
      );
      const failed = projections.body.projections.filter((p: { state: string }) => p.state === 'failed');
      expect(failed.map((p: { projection: string }) => p.projection)).toEqual(['wallets']);

      const ready = await call('GET', '/health/ready');
      expect(ready.status).toBe(503);
      expect(ready.body.status).toBe('not ready');
      expect(ready.body.checks.projections.status).toBe('down');
      expect(ready.body.checks.projections.error).toMatch(/^read model wallets failed: /);
      // The stores themselves answer: only the projection is named.
      expect(ready.body.checks['broker-event-store']).toEqual({ status: 'up' });
      expect((await call('GET', '/health/live')).status).toBe(200);
    } finally {
      await running.stop();
    }
  }, 120_000);
});

describe('tradecore start, one account depositing while it places orders', () => {
  it('takes every deposit (no 409 reaches the client) and keeps the balance exact', async () => {
    await freshDataDir('tradecore-lanes-');
    const running = await start();
    try {
      const call = client(running.url);
      const accountId = (
        await call('POST', '/v1/auth/register', { body: { username: 'busy', password: 'busy-pass' } })
      ).body.accountId as string;
      const token = (
        await call('POST', '/v1/auth/login', { body: { username: 'busy', password: 'busy-pass' } })
      ).body.token as string;
      expect(
        (await call('POST', `/v1/accounts/${accountId}/deposits`, { token, body: { amount: '1000.00' } }))
          .status,
      ).toBe(201);

      // The new user's trial: 4 workers depositing 1.00 and 4 placing a resting fractional buy,
      // all on one account's wallet, for a few seconds.
      const statuses: number[] = [];
      const orderIds: string[] = [];
      const end = Date.now() + 4_000;
      const depositing = async () => {
        while (Date.now() < end) {
          const answer = await call('POST', `/v1/accounts/${accountId}/deposits`, {
            token,
            body: { amount: '1.00' },
          });
          statuses.push(answer.status);
        }
      };
      const ordering = async () => {
        while (Date.now() < end) {
          const answer = await call('POST', '/v1/orders', {
            token,
            body: {
              accountId,
              symbol: 'PETR4F',
              side: 'BUY',
              type: 'LIMIT',
              quantity: 1,
              price: '30.00',
              timeInForce: 'GTC',
            },
          });
          expect(answer.status, JSON.stringify(answer.body)).toBe(202);
          orderIds.push(answer.body.orderId);
        }
      };
      await Promise.all([...Array.from({ length: 4 }, depositing), ...Array.from({ length: 4 }, ordering)]);
      expect(statuses.filter((status) => status !== 201)).toEqual([]);
      expect(orderIds.length).toBeGreaterThan(0);

      // Every order reserved (and rests, GTC) or was refused and released: each one's 30.00 is
      // either reserved or back, and every deposit is there.
      const deposited = 100_000 + statuses.length * 100;
      const orders = await until(
        () => Promise.all(orderIds.map((id) => call('GET', `/v1/orders/${id}`, { token }))),
        (answers) => answers.every((answer) => answer.body?.status && answer.body.status !== 'PENDING_NEW'),
        60_000,
      );
      const resting = orders.filter((answer) => answer.body.status === 'NEW').length;
      const cents = (amount: string) => Math.round(Number(amount) * 100);
      const wallet = await until(
        () => call('GET', `/v1/accounts/${accountId}/wallet`, { token }),
        (answer) =>
          answer.body?.cash !== undefined &&
          cents(answer.body.cash.reserved) === resting * 3_000 &&
          cents(answer.body.cash.available) + cents(answer.body.cash.reserved) === deposited,
        30_000,
      );
      expect({
        available: cents(wallet.body.cash.available),
        reserved: cents(wallet.body.cash.reserved),
      }).toEqual({ available: deposited - resting * 3_000, reserved: resting * 3_000 });
    } finally {
      await running.stop();
    }
  }, 180_000);
});

describe('tradecore stop', () => {
  it('ends within the grace period when clients hold connections open', async () => {
    await freshDataDir('tradecore-stop-');
    const running = await start();
    const { port } = new URL(running.url);
    const token = (
      await client(running.url)('POST', '/v1/auth/login', {
        body: { username: 'admin', password: 'end-to-end-admin' },
      })
    ).body.token as string;
    const open = (request: string) => {
      const socket = connect(Number(port), '127.0.0.1');
      socket.on('error', () => {});
      socket.write(request);
      return socket;
    };
    const sockets = [
      // Connected, never a byte.
      open(''),
      // Half a request.
      open('GET /health/live HTTP/1.1\r\nhost: 127.0.0.1\r\n'),
      // A WebSocket that never answers the close.
      open(
        [
          'GET /v1/stream HTTP/1.1',
          'host: 127.0.0.1',
          'connection: Upgrade',
          'upgrade: websocket',
          'sec-websocket-version: 13',
          'sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==',
          `authorization: Bearer ${token}`,
          '',
          '',
        ].join('\r\n'),
      ),
    ];
    const upgraded = await new Promise<string>((resolve) =>
      sockets[2]!.once('data', (chunk) => resolve(String(chunk))),
    );
    expect(upgraded).toMatch(/^HTTP\/1.1 101 /);

    const started = Date.now();
    const stopped = await Promise.race([
      running.stop().then(() => 'stopped'),
      new Promise((resolve) => setTimeout(resolve, SHUTDOWN_GRACE_MS + 5_000, 'still stopping')),
    ]);
    expect(stopped).toBe('stopped');
    // The open connections held it until the grace period ran out.
    expect(Date.now() - started).toBeGreaterThanOrEqual(SHUTDOWN_GRACE_MS - 100);
    // stop() went on past the HTTP server: the data folder is free for the next start.
    await (await start()).stop();
    for (const socket of sockets) socket.destroy();
  }, 120_000);
});
