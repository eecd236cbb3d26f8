import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../shared/config.ts';
import { type RunningTradecore, startTradecore } from './main.ts';
import { client } from './testing.ts';

/**
 * `tradecore start`'s `/metrics` after trading over HTTP: every order's end, the engine's decisions,
 * its matching time and its trades, with their labels, read as Prometheus reads them.
 */
let dataDir: string;
let running: RunningTradecore;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'tradecore-metrics-'));
  const config = loadConfig({
    TRADECORE_DATA_DIR: dataDir,
    PORT: '0',
    LOG_LEVEL: 'silent',
    TRADECORE_ADMIN_PASSWORD: 'metrics-admin',
  });
  running = await startTradecore(config, pino({ level: 'silent' }));
}, 120_000);

afterAll(async () => {
  await running?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

const call = (...args: Parameters<ReturnType<typeof client>>) => client(running.url)(...args);

async function trader(username: string): Promise<{ accountId: string; token: string }> {
  const password = `${username}-password`;
  const { accountId } = (await call('POST', '/v1/auth/register', { body: { username, password } })).body;
  const { token } = (await call('POST', '/v1/auth/login', { body: { username, password } })).body;
  return { accountId, token };
}

async function place(
  who: { accountId: string; token: string },
  order: { side: 'BUY' | 'SELL'; type: 'LIMIT' | 'MARKET'; quantity: number; price?: string },
): Promise<string> {
  const placed = await call('POST', '/v1/orders', {
    token: who.token,
    body: { accountId: who.accountId, symbol: 'PETR4', ...order },
  });
  expect(placed.status, JSON.stringify(placed.body)).toBe(202);
  return placed.body.orderId;
}

async function statusOf(who: { token: string }, orderId: string, wanted: string) {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const order = await call('GET', `/v1/orders/${orderId}`, { token: who.token });
    if (order.body?.status === wanted || Date.now() > deadline) return order.body;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The samples of `/metrics`, as `name{label="value",…}` (labels sorted) → value. */
async function scrape(): Promise<Map<string, number>> {
  const response = await fetch(`${running.url}/metrics`);
  expect(response.status).toBe(200);
  const samples = new Map<string, number>();
  for (const line of (await response.text()).split('\n')) {
    const match = /^([a-z_:]+)(?:\{(.*)\})? (\S+)$/i.exec(line);
    if (!match) continue;
    const labels = [...(match[2] ?? '').matchAll(/([a-z_]+)="([^"]*)"/gi)]
      .map(([, name, value]) => `${name}="${value}"`)
      .sort();
    samples.set(`${match[1]}{${labels.join(',')}}`, Number(match[3]));
  }
  return samples;
}

const series = (name: string, labels: Record<string, string> = {}) =>
  `${name}{${Object.entries(labels)
    .map(([label, value]) => `${label}="${value}"`)
    .sort()
    .join(',')}}`;

describe('tradecore start /metrics', () => {
  it('counts the orders that ended, the engine’s decisions, its matching time and its trades, by label', async () => {
    const before = await scrape();
    const moved = (after: Map<string, number>, name: string, labels: Record<string, string> = {}) =>
      (after.get(series(name, labels)) ?? 0) - (before.get(series(name, labels)) ?? 0);

    const buyer = await trader('metrics-buyer');
    const seller = await trader('metrics-seller');
    expect(
      (
        await call('POST', `/v1/accounts/${buyer.accountId}/deposits`, {
          token: buyer.token,
          body: { amount: '10000.00' },
        })
      ).status,
    ).toBe(201);
    expect(
      (
        await call('POST', `/v1/accounts/${seller.accountId}/custody-transfers`, {
          token: seller.token,
          body: { symbol: 'PETR4', quantity: 300 },
        })
      ).status,
    ).toBe(201);

    // A resting sell, half of it taken by a buy: one trade, the buyer the taker.
    const sell = await place(seller, { side: 'SELL', type: 'LIMIT', quantity: 200, price: '32.50' });
    expect((await statusOf(seller, sell, 'NEW')).status).toBe('NEW');
    const buy = await place(buyer, { side: 'BUY', type: 'LIMIT', quantity: 100, price: '32.50' });
    expect((await statusOf(buyer, buy, 'FILLED')).status).toBe('FILLED');
    expect((await statusOf(seller, sell, 'PARTIALLY_FILLED')).status).toBe('PARTIALLY_FILLED');
    // The rest of the sell canceled by its owner.
    expect((await call('DELETE', `/v1/orders/${sell}`, { token: seller.token })).status).toBe(202);
    expect((await statusOf(seller, sell, 'CANCELED')).status).toBe('CANCELED');
    // A buy the wallet cannot pay for: refused by the broker, never sent to B3.
    const tooBig = await place(buyer, { side: 'BUY', type: 'LIMIT', quantity: 1_000, price: '32.50' });
    expect(await statusOf(buyer, tooBig, 'REJECTED')).toMatchObject({ rejectReason: 'INSUFFICIENT_FUNDS' });
    // A market sell on a book with no bids left: refused by B3.
    const market = await place(seller, { side: 'SELL', type: 'MARKET', quantity: 100 });
    expect(await statusOf(seller, market, 'REJECTED')).toMatchObject({ rejectReason: 'NO_LIQUIDITY' });

    const after = await scrape();
    const orders = 'tradecore_orders_ended_total';
    expect(moved(after, orders, { outcome: 'FILLED' })).toBe(1);
    expect(moved(after, orders, { outcome: 'CANCELED', reason: 'CANCELED_BY_TRADER' })).toBe(1);
    expect(moved(after, orders, { outcome: 'REJECTED', reason: 'INSUFFICIENT_FUNDS' })).toBe(1);
    expect(moved(after, orders, { outcome: 'REJECTED', reason: 'NO_LIQUIDITY' })).toBe(1);
    expect(moved(after, orders, { outcome: 'EXPIRED' })).toBe(0);

    const engine = 'tradecore_engine_messages_total';
    expect(moved(after, engine, { type: 'NewOrder', outcome: 'accepted' })).toBe(2);
    expect(moved(after, engine, { type: 'NewOrder', outcome: 'rejected', reason: 'NO_LIQUIDITY' })).toBe(1);
    expect(moved(after, engine, { type: 'CancelOrder', outcome: 'accepted' })).toBe(1);
    expect(moved(after, engine, { type: 'NewOrder', outcome: 'duplicate' })).toBe(0);

    const matching = 'tradecore_engine_matching_seconds';
    expect(moved(after, `${matching}_count`, { type: 'NewOrder' })).toBe(3);
    expect(moved(after, `${matching}_count`, { type: 'CancelOrder' })).toBe(1);
    expect(moved(after, `${matching}_sum`, { type: 'NewOrder' })).toBeGreaterThan(0);
    expect(moved(after, `${matching}_bucket`, { type: 'NewOrder', le: '+Inf' })).toBe(3);

    const petr4 = { symbol: 'PETR4' };
    expect(moved(after, 'tradecore_engine_trades_total', petr4)).toBe(1);
    expect(moved(after, 'tradecore_engine_traded_shares_total', petr4)).toBe(100);
    expect(moved(after, 'tradecore_engine_traded_notional_cents_total', petr4)).toBe(100 * 32_50);
    const executions = 'tradecore_engine_executions_total';
    expect(moved(after, executions, { ...petr4, side: 'BUY', liquidity: 'taker' })).toBe(1);
    expect(moved(after, executions, { ...petr4, side: 'SELL', liquidity: 'maker' })).toBe(1);
    expect(moved(after, executions, { ...petr4, side: 'SELL', liquidity: 'taker' })).toBe(0);

    // The dead-letter series exist before the first dead letter, at 0.
    for (const channel of ['broker-to-b3', 'b3-to-broker'])
      expect(
        after.get(series('tradecore_transport_dead_letters_total', { channel, reason: 'handler-failed' })),
      ).toBe(0);
  }, 120_000);
});
