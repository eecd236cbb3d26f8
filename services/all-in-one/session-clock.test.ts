import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JumpingClock } from '../b3-engine/fake-clock.ts';
import { B3_TIME_ZONE, closeAfter } from '../b3-engine/session-clock.ts';
import { loadConfig } from '../shared/config.ts';
import { type RunningTradecore, startTradecore } from './main.ts';
import { client, until } from './testing.ts';

/**
 * The session clock through the embedded stack, over HTTP: a GTD order expires at its time and a
 * DAY order at the configured session close, with nothing else happening on the symbol, and the
 * broker releases their cash. The B3 engine runs on a clock the test can jump forward, so the
 * close comes without waiting hours for it; the GTD expiry runs on real time.
 */
const SESSION_CLOSE = { hour: 17, minute: 30 };
let dataDir: string;
let running: RunningTradecore;
const clock = new JumpingClock();

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'tradecore-session-'));
  const config = loadConfig({
    TRADECORE_DATA_DIR: dataDir,
    PORT: '0',
    LOG_LEVEL: 'silent',
    TRADECORE_ADMIN_PASSWORD: 'session-clock-admin',
    B3_SESSION_CLOSE: '17:30',
  });
  running = await startTradecore(config, pino({ level: 'silent' }), 'all', clock);
}, 60_000);

afterAll(async () => {
  await running?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

const call = (...args: Parameters<ReturnType<typeof client>>) => client(running.url)(...args);

/** A funded trader: its id and token. */
async function trader(username: string, deposit: string) {
  const { accountId } = (
    await call('POST', '/v1/auth/register', { body: { username, password: `${username}-pass` } })
  ).body;
  const { token } = (
    await call('POST', '/v1/auth/login', { body: { username, password: `${username}-pass` } })
  ).body;
  expect(
    (await call('POST', `/v1/accounts/${accountId}/deposits`, { token, body: { amount: deposit } })).status,
  ).toBe(201);
  return { accountId: accountId as string, token: token as string };
}

const buy = (accountId: string, symbol: string, extra: Record<string, unknown> = {}) => ({
  accountId,
  symbol,
  side: 'BUY',
  type: 'LIMIT',
  quantity: 100,
  price: '32.00',
  ...extra,
});

describe('the session clock, embedded', () => {
  it('expires a GTD order a second after it was placed, with nothing else happening, and releases its cash', async () => {
    const { accountId, token } = await trader('gtd-trader', '10000.00');
    // A first order warms the path (PGlite, the engine's first book) on another symbol.
    const warm = await call('POST', '/v1/orders', {
      token,
      body: buy(accountId, 'VALE3', { price: '55.00' }),
    });
    await until(
      () => call('GET', `/v1/orders/${warm.body.orderId}`, { token }),
      (answer) => answer.body?.status === 'NEW',
    );

    const expiresAt = Date.now() + 1_000;
    const placed = await call('POST', '/v1/orders', {
      token,
      body: buy(accountId, 'PETR4', { timeInForce: 'GTD', expiresAt: new Date(expiresAt).toISOString() }),
    });
    expect(placed.status).toBe(202);
    const booked = await until(
      () => call('GET', `/v1/orders/${placed.body.orderId}`, { token }),
      (answer) => ['NEW', 'REJECTED'].includes(answer.body?.status),
    );
    // Resting before its time: accepted, not yet expired.
    expect(booked.body.status, JSON.stringify(booked.body)).toBe('NEW');
    expect(Date.now()).toBeLessThan(expiresAt);

    const ended = await until(
      () => call('GET', `/v1/orders/${placed.body.orderId}`, { token }),
      (answer) => answer.body?.status === 'EXPIRED',
    );
    expect(ended.body).toMatchObject({ status: 'EXPIRED', cancelReason: 'GOOD_TILL_DATE' });
    // Within about a second of its time, read model included.
    expect(Date.now() - expiresAt).toBeLessThan(3_000);
    // The VALE3 order (5500.00) still holds its cash; the PETR4 order's 3200.00 is back.
    const wallet = await until(
      () => call('GET', `/v1/accounts/${accountId}/wallet`, { token }),
      (answer) => answer.body?.cash?.reserved === '5500.00',
    );
    expect(wallet.body.cash).toEqual({ available: '4500.00', reserved: '5500.00' });
    expect((await call('GET', `/v1/orders/${warm.body.orderId}`, { token })).body.status).toBe('NEW');
  });

  it('expires a DAY order at the configured session close, not before, and releases its cash', async () => {
    const { accountId, token } = await trader('day-trader', '4000.00');
    const placed = await call('POST', '/v1/orders', {
      token,
      body: buy(accountId, 'ITUB4', { price: '35.00' }),
    });
    const booked = await until(
      () => call('GET', `/v1/orders/${placed.body.orderId}`, { token }),
      (answer) => ['NEW', 'REJECTED'].includes(answer.body?.status),
    );
    expect(booked.body.status, JSON.stringify(booked.body)).toBe('NEW');
    const close = closeAfter(clock.now(), { close: SESSION_CLOSE, timeZone: B3_TIME_ZONE });
    expect(new Date(close).toLocaleTimeString('en-GB', { timeZone: B3_TIME_ZONE })).toBe('17:30:00');

    clock.jumpTo(close - 2_000);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect((await call('GET', `/v1/orders/${placed.body.orderId}`, { token })).body.status).toBe('NEW');

    clock.jumpTo(close);
    const ended = await until(
      () => call('GET', `/v1/orders/${placed.body.orderId}`, { token }),
      (answer) => answer.body?.status === 'EXPIRED',
    );
    expect(ended.body).toMatchObject({ status: 'EXPIRED', cancelReason: 'END_OF_DAY' });
    const wallet = await until(
      () => call('GET', `/v1/accounts/${accountId}/wallet`, { token }),
      (answer) => answer.body?.cash?.reserved === '0.00',
    );
    expect(wallet.body.cash).toEqual({ available: '4000.00', reserved: '0.00' });
  });
});
