import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bookStreamId } from '../../domain/b3/book-events.ts';
import { defaultCatalogue } from '../../domain/broker/instrument/catalogue.ts';
import { orderDecider } from '../../domain/broker/order/order.ts';
import { handleCommand } from '../shared/command-handler.ts';
import {
  BookAnswer,
  CanceledAlreadyAnswer,
  CancelRequestedAnswer,
  CandlesAnswer,
  InstrumentAnswer,
  InstrumentsPageAnswer,
  LoginAnswer,
  OrderAnswer,
  OrderPlacedAnswer,
  QuoteAnswer,
  QuotesPageAnswer,
  TradesPageAnswer,
  WalletAnswer,
  WalletChangeAnswer,
} from './answers.ts';
import { eventually, injectStream, startTestApi, type TestApi } from './testing.ts';

let api: TestApi;
let alice: { accountId: string; token: string };
const auth = (token: string) => ({ authorization: `Bearer ${token}` });

beforeAll(async () => {
  api = await startTestApi();
  alice = await api.trader('alice');
}, 180_000);
afterAll(async () => api?.close());

/** A book event as the B3 engine appends it. */
const engineEvent = (type: string, data: object) => ({
  id: randomUUID(),
  type,
  data: { at: Date.now(), ...data },
  metadata: {
    correlationId: randomUUID(),
    causationId: randomUUID(),
    actor: 'b3-engine',
    occurredAt: new Date().toISOString(),
  },
});

/** A trade as the B3 engine records it, at `at` (epoch ms). */
const tradeEvent = (tradeId: string, symbol: string, price: number, quantity: number, at: number) => ({
  id: randomUUID(),
  type: 'TradeExecuted',
  data: {
    tradeId,
    symbol,
    price,
    quantity,
    buyOrderId: `${tradeId}-buy`,
    buyAccountId: 'a-buyer',
    sellOrderId: `${tradeId}-sell`,
    sellAccountId: 'a-seller',
    aggressorSide: 'BUY',
    bookSequence: 1,
    at,
  },
  metadata: {
    correlationId: randomUUID(),
    causationId: randomUUID(),
    actor: 'b3-engine',
    occurredAt: new Date(at).toISOString(),
  },
});

/** `GET /v1/market/{symbol}/book` as alice reads it. */
async function aliceBook(symbol: string) {
  const response = await api.app.inject({
    method: 'GET',
    url: `/v1/market/${symbol}/book`,
    headers: auth(alice.token),
  });
  expect(response.statusCode, response.body).toBe(200);
  return response.json() as { status: string; haltReason: string | null; sequence: number };
}

describe('the HTTP API on PGlite', () => {
  it('registers, logs in and says who the token belongs to', async () => {
    const me = await api.app.inject({ method: 'GET', url: '/v1/auth/me', headers: auth(alice.token) });
    expect(me.statusCode).toBe(200);
    expect(me.json()).toMatchObject({ accountId: alice.accountId, username: 'alice', roles: ['trader'] });
  });

  it('refuses a second account with the same username, whatever its case', async () => {
    const response = await api.app.inject({
      method: 'POST',
      url: '/v1/auth/register',
      payload: { username: 'ALICE', password: 'another-password' },
    });
    expect(response.statusCode).toBe(409);
    expect(response.headers['content-type']).toContain('application/problem+json');
    expect(response.json()).toMatchObject({ reason: 'USERNAME_TAKEN', status: 409 });
  });

  it('refuses a wrong password without saying which part was wrong', async () => {
    for (const payload of [
      { username: 'alice', password: 'wrong-password' },
      { username: 'nobody-here', password: 'wrong-password' },
    ]) {
      const response = await api.app.inject({ method: 'POST', url: '/v1/auth/login', payload });
      expect(response.statusCode).toBe(401);
      expect(response.json()).toMatchObject({ reason: 'INVALID_CREDENTIALS' });
    }
  });

  it('deposits cash and shows it in the wallet read model as decimal strings', async () => {
    const deposit = await api.app.inject({
      method: 'POST',
      url: `/v1/accounts/${alice.accountId}/deposits`,
      headers: auth(alice.token),
      payload: { amount: '10000.50' },
    });
    expect(deposit.statusCode).toBe(201);
    expect(deposit.json()).toMatchObject({ cash: { available: '10000.50', reserved: '0.00' } });
    const wallet = await eventually(async () => {
      const response = await api.app.inject({
        method: 'GET',
        url: `/v1/accounts/${alice.accountId}/wallet`,
        headers: auth(alice.token),
      });
      return response.statusCode === 200 ? response.json() : undefined;
    });
    expect(wallet).toMatchObject({
      accountId: alice.accountId,
      cash: { available: '10000.50', reserved: '0.00' },
    });
  });

  it('shows a trader who never moved anything an empty wallet, and an account that is no trader none', async () => {
    const admin = await api.adminToken();
    const newcomer = await api.trader('newcomer');
    const auditor = await api.auditor('wallet-auditor');
    const read = (accountId: string) =>
      api.app.inject({ method: 'GET', url: `/v1/accounts/${accountId}/wallet`, headers: auth(admin) });
    const empty = await read(newcomer.accountId);
    expect(empty.statusCode).toBe(200);
    expect(empty.json()).toEqual({
      accountId: newcomer.accountId,
      cash: { available: '0.00', reserved: '0.00' },
      positions: [],
    });
    const none = await read(auditor.accountId);
    expect(none.statusCode).toBe(404);
    expect(none.json()).toMatchObject({ reason: 'WALLET_NOT_FOUND' });
    expect((await read(randomUUID())).json()).toMatchObject({ status: 404, reason: 'ACCOUNT_NOT_FOUND' });
  });

  it("answers an admin's list filtered by an account no one has 404, and by one with no orders an empty page", async () => {
    const admin = await api.adminToken();
    const newcomer = await api.trader('list-newcomer');
    for (const list of ['/v1/orders', '/v1/trades']) {
      const read = (accountId: string) =>
        api.app.inject({ method: 'GET', url: `${list}?accountId=${accountId}`, headers: auth(admin) });
      const unknown = await read(randomUUID());
      expect(unknown.statusCode, list).toBe(404);
      expect(unknown.json()).toMatchObject({ reason: 'ACCOUNT_NOT_FOUND' });
      const empty = await read(newcomer.accountId);
      expect(empty.statusCode, list).toBe(200);
      expect(empty.json()).toEqual({ items: [] });
    }
  });

  it('never lets a withdrawal take available cash below zero', async () => {
    const response = await api.app.inject({
      method: 'POST',
      url: `/v1/accounts/${alice.accountId}/withdrawals`,
      headers: auth(alice.token),
      payload: { amount: '999999.00' },
    });
    expect(response.statusCode).toBe(422);
    expect(response.json()).toMatchObject({ reason: 'INSUFFICIENT_FUNDS' });
  });

  it('takes a custody transfer at no cost: unitCost "0.00" is shares that cost nothing', async () => {
    const trader = await api.trader('gifted');
    const transfer = await api.app.inject({
      method: 'POST',
      url: `/v1/accounts/${trader.accountId}/custody-transfers`,
      headers: auth(trader.token),
      payload: { symbol: 'BBDC4', quantity: 100, unitCost: '0.00' },
    });
    expect(transfer.statusCode).toBe(201);
    const wallet = await eventually(async () => {
      const response = await api.app.inject({
        method: 'GET',
        url: `/v1/accounts/${trader.accountId}/wallet`,
        headers: auth(trader.token),
      });
      const body = response.json() as { positions?: unknown[] };
      return body.positions?.length === 1 ? body : undefined;
    });
    expect(wallet).toMatchObject({
      positions: [{ symbol: 'BBDC4', available: 100, reserved: 0, costBasis: '0.00' }],
    });
    const negative = await api.app.inject({
      method: 'POST',
      url: `/v1/accounts/${trader.accountId}/custody-transfers`,
      headers: auth(trader.token),
      payload: { symbol: 'BBDC4', quantity: 100, unitCost: '-1.00' },
    });
    expect(negative.statusCode).toBe(400);
  });

  it('refuses a custody transfer whose cost, or the position cost it makes, is past the exact range', async () => {
    const trader = await api.trader('whale');
    const transfer = (quantity: number, unitCost: string) =>
      api.app.inject({
        method: 'POST',
        url: `/v1/accounts/${trader.accountId}/custody-transfers`,
        headers: auth(trader.token),
        payload: { symbol: 'VALE3', quantity, unitCost },
      });
    const tooCostly = await transfer(1000, '99999999999.99');
    expect(tooCostly.statusCode).toBe(422);
    expect(tooCostly.json()).toMatchObject({
      reason: 'AMOUNT_TOO_LARGE',
      detail:
        'the cost of 1000 × 99999999999.99 = 99999999999990.00 is past the largest amount kept exactly, 90071992547409.91',
    });
    expect((await transfer(900, '99999999999.99')).statusCode).toBe(201);
    const second = await transfer(900, '99999999999.99');
    expect(second.statusCode).toBe(422);
    expect(second.json()).toMatchObject({ reason: 'COST_BASIS_TOO_LARGE' });
    // The read model holds what the events say: one transfer, its cost exact, as a decimal string.
    const wallet = await eventually(async () => {
      const response = await api.app.inject({
        method: 'GET',
        url: `/v1/accounts/${trader.accountId}/wallet`,
        headers: auth(trader.token),
      });
      const body = response.json() as { positions?: unknown[] };
      return body.positions?.length === 1 ? body : undefined;
    });
    expect(wallet).toMatchObject({
      positions: [{ symbol: 'VALE3', available: 900, costBasis: '89999999999991.00' }],
    });
  });

  it('places an order: 202 PENDING_NEW, OrderPlaced in the order stream', async () => {
    const response = await api.app.inject({
      method: 'POST',
      url: '/v1/orders',
      headers: auth(alice.token),
      payload: {
        accountId: alice.accountId,
        symbol: 'PETR4',
        side: 'BUY',
        type: 'LIMIT',
        quantity: 100,
        price: '32.50',
      },
    });
    expect(response.statusCode).toBe(202);
    const { orderId, status } = response.json();
    expect(status).toBe('PENDING_NEW');
    const [placed] = await api.broker.readStream(`order-${orderId}`);
    expect(placed).toMatchObject({
      type: 'OrderPlaced',
      data: { price: 3250, quantity: 100, accountId: alice.accountId },
    });
    expect(placed?.metadata.actor).toBe(alice.accountId);

    const read = await eventually(async () => {
      const got = await api.app.inject({
        method: 'GET',
        url: `/v1/orders/${orderId}`,
        headers: auth(alice.token),
      });
      return got.statusCode === 200 ? got.json() : undefined;
    });
    expect(read).toMatchObject({ orderId, status: 'PENDING_NEW', price: '32.50' });

    const list = await api.app.inject({
      method: 'GET',
      url: '/v1/orders?limit=10',
      headers: auth(alice.token),
    });
    expect(list.statusCode).toBe(200);
    expect(list.json().items.map((item: { orderId: string }) => item.orderId)).toContain(orderId);

    const cancel = await api.app.inject({
      method: 'DELETE',
      url: `/v1/orders/${orderId}`,
      headers: auth(alice.token),
    });
    expect(cancel.statusCode).toBe(202);
    // As the OpenAPI document describes both answers of a cancel.
    CancelRequestedAnswer.parse(cancel.json());
    const events = await api.broker.readStream(`order-${orderId}`);
    expect(events.map((event) => event.type)).toEqual(['OrderPlaced', 'OrderCancelRequested']);

    // B3 confirms the cancel (as the order process records it); asking again changes nothing.
    await handleCommand(
      api.broker,
      `order-${orderId}`,
      orderDecider,
      { type: 'CancelOrder', reason: 'CANCELED_BY_TRADER', at: new Date().toISOString() },
      { correlationId: 'b3-confirms', causationId: 'b3-confirms', actor: 'order-process' },
    );
    const again = await api.app.inject({
      method: 'DELETE',
      url: `/v1/orders/${orderId}`,
      headers: auth(alice.token),
    });
    expect(again.statusCode, again.body).toBe(200);
    expect(again.json()).toEqual({ orderId, status: 'CANCELED', cancelRequested: true });
    CanceledAlreadyAnswer.parse(again.json());
    expect((await api.broker.readStream(`order-${orderId}`)).length).toBe(3);
  });

  it('refuses orders that break the instrument rules with the domain reason', async () => {
    const place = (payload: object) =>
      api.app.inject({
        method: 'POST',
        url: '/v1/orders',
        headers: auth(alice.token),
        payload: { accountId: alice.accountId, side: 'BUY', type: 'LIMIT', ...payload },
      });
    expect((await place({ symbol: 'PETR4', quantity: 150, price: '32.50' })).json()).toMatchObject({
      status: 422,
      reason: 'LOT_SIZE',
      details: { field: 'quantity' },
    });
    // Each order-shape refusal names the body field it is about.
    expect((await place({ symbol: 'PETR4', quantity: 100 })).json()).toMatchObject({
      reason: 'PRICE_REQUIRED',
      details: { field: 'price' },
    });
    expect(
      (await place({ symbol: 'PETR4', quantity: 100, price: '32.50', timeInForce: 'GTD' })).json(),
    ).toMatchObject({ reason: 'EXPIRY_REQUIRED', details: { field: 'expiresAt' } });
    const tooMuch = await place({ symbol: 'PETR4', quantity: 100, price: '90071992547409.92' });
    expect(tooMuch.json().errors).toEqual([
      { field: 'body.price', message: 'too large: at most "90071992547409.91"' },
    ]);
    expect((await place({ symbol: 'ZZZZ3', quantity: 100, price: '32.50' })).json()).toMatchObject({
      status: 422,
      reason: 'INSTRUMENT_NOT_FOUND',
    });
  });

  it('answers validation problems with the failing fields and rejects unknown fields', async () => {
    const response = await api.app.inject({
      method: 'POST',
      url: `/v1/accounts/${alice.accountId}/deposits`,
      headers: auth(alice.token),
      payload: { amount: '12.345', extra: true },
    });
    expect(response.statusCode).toBe(400);
    expect(response.headers['content-type']).toContain('application/problem+json');
    const body = response.json();
    expect(body.reason).toBe('VALIDATION_FAILED');
    const fields = body.errors.map((error: { field: string }) => error.field);
    expect(fields).toContain('body.amount');
    expect(JSON.stringify(body)).not.toMatch(/at .*\.ts:\d+/);
  });

  it('refuses bodies above the size limit', async () => {
    const response = await api.app.inject({
      method: 'POST',
      url: '/v1/auth/register',
      payload: { username: 'big', password: 'x'.repeat(40_000) },
    });
    expect(response.statusCode).toBe(413);
    expect(response.json()).toMatchObject({
      status: 413,
      reason: 'BODY_TOO_LARGE',
      detail: 'a request body may be 16 KiB at most',
    });
  });

  it('sends an order update over the stream only once GET /v1/orders/{id} shows it', async () => {
    await api.app.inject({
      method: 'POST',
      url: `/v1/accounts/${alice.accountId}/deposits`,
      headers: auth(alice.token),
      payload: { amount: '1000.00' },
    });
    const socket = await injectStream(api.app, '/v1/stream', alice.token);
    const announced = new Set<string>();
    const waiting = new Map<string, () => void>();
    socket.on('message', (raw: Buffer) => {
      const message = JSON.parse(String(raw)) as { channel: string; event?: string; orderId?: string };
      if (message.channel !== 'order' || message.event !== 'OrderPlaced') return;
      announced.add(message.orderId!);
      waiting.get(message.orderId!)?.();
    });
    try {
      for (let attempt = 0; attempt < 5; attempt++) {
        const placed = await api.app.inject({
          method: 'POST',
          url: '/v1/orders',
          headers: auth(alice.token),
          payload: {
            accountId: alice.accountId,
            symbol: 'PETR4',
            side: 'BUY',
            type: 'LIMIT',
            quantity: 100,
            price: '1.00',
          },
        });
        const { orderId } = placed.json() as { orderId: string };
        if (!announced.has(orderId)) await new Promise<void>((resolve) => waiting.set(orderId, resolve));
        // Read at once, with no retry: the read model already has what the message said.
        const order = await api.app.inject({
          method: 'GET',
          url: `/v1/orders/${orderId}`,
          headers: auth(alice.token),
        });
        expect(order.statusCode, order.body).toBe(200);
        expect(order.json()).toMatchObject({ orderId });
      }
    } finally {
      socket.terminate();
    }
  });

  it('answers a fractional ticker’s catalogue entry with its instrument, and says how to manage it', async () => {
    const instrument = (symbol: string) =>
      api.app.inject({ method: 'GET', url: `/v1/instruments/${symbol}`, headers: auth(alice.token) });
    const fractional = await instrument('PETR4F');
    expect(fractional.statusCode).toBe(200);
    expect(fractional.json()).toEqual((await instrument('PETR4')).json());
    expect(fractional.json()).toMatchObject({ symbol: 'PETR4', fractionalSymbol: 'PETR4F' });
    expect((await instrument('XXXX3F')).json()).toMatchObject({
      status: 404,
      reason: 'INSTRUMENT_NOT_FOUND',
    });
    // An instrument without a fractional market has no fractional ticker: not for reads, not for custody.
    const listing = await api.app.inject({
      method: 'POST',
      url: '/v1/admin/instruments',
      headers: auth(await api.adminToken()),
      payload: {
        symbol: 'NOFR3',
        name: 'No Fractional SA',
        lotSize: 1,
        tickSize: '0.05',
        fractional: false,
        referencePrice: '10.05',
      },
    });
    expect(listing.json()).toMatchObject({ symbol: 'NOFR3', fractionalSymbol: null });
    expect((await instrument('NOFR3F')).json()).toMatchObject({
      status: 404,
      reason: 'INSTRUMENT_NOT_FOUND',
    });
    const transfer = await api.app.inject({
      method: 'POST',
      url: `/v1/accounts/${alice.accountId}/custody-transfers`,
      headers: auth(alice.token),
      payload: { symbol: 'NOFR3F', quantity: 5 },
    });
    expect(transfer.json()).toMatchObject({ status: 422, reason: 'INSTRUMENT_NOT_FOUND' });
    const halt = await api.app.inject({
      method: 'POST',
      url: '/v1/admin/instruments/PETR4F/halt',
      headers: auth(await api.adminToken()),
      payload: { reason: 'news' },
    });
    expect(halt.statusCode).toBe(400);
    expect(halt.json().errors[0].message).toContain('managed through its instrument, PETR4');
  });

  it('lists the catalogue from its read model by symbol, a page at a time, each entry as its own route answers it', async () => {
    const admin = await api.adminToken();
    const read = async (url: string) => {
      const response = await api.app.inject({ method: 'GET', url, headers: auth(alice.token) });
      expect(response.statusCode, response.body).toBe(200);
      return InstrumentsPageAnswer.parse(response.json());
    };
    /** Every page of the list, following nextCursor. */
    const everyPage = async (query: string) => {
      const items: Array<{ symbol: string; status: string }> = [];
      const pages: number[] = [];
      let cursor: string | undefined;
      do {
        const page = await read(`/v1/instruments?${query}${cursor ? `&cursor=${cursor}` : ''}`);
        items.push(...page.items);
        pages.push(page.items.length);
        cursor = page.nextCursor;
      } while (cursor);
      return { items, pages };
    };
    const listing = await api.app.inject({
      method: 'POST',
      url: '/v1/admin/instruments',
      headers: auth(admin),
      payload: {
        symbol: 'LIST3',
        name: 'Listed Today ON',
        lotSize: 100,
        tickSize: '0.01',
        fractional: true,
        referencePrice: '7.25',
      },
    });
    expect(listing.statusCode, listing.body).toBe(201);
    // The read model follows the catalogue streams within moments: the new one shows in its place.
    const { items, pages } = await eventually(async () => {
      const all = await everyPage('limit=7');
      return all.items.some((item) => item.symbol === 'LIST3') ? all : undefined;
    });
    const symbols = items.map((item) => item.symbol);
    expect(symbols).toEqual([...symbols].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
    expect(new Set(symbols).size).toBe(symbols.length);
    expect(symbols).toEqual(expect.arrayContaining(defaultCatalogue.map((spec) => spec.symbol)));
    expect(pages.slice(0, -1).every((size) => size === 7)).toBe(true);
    expect(items.find((item) => item.symbol === 'LIST3')).toEqual(listing.json());
    // Each entry is what GET /v1/instruments/{symbol} answers.
    for (const item of items) {
      const one = await api.app.inject({
        method: 'GET',
        url: `/v1/instruments/${item.symbol}`,
        headers: auth(alice.token),
      });
      expect(one.json(), item.symbol).toEqual(item);
    }
    // 50 to a page unless asked.
    expect((await read('/v1/instruments')).items).toHaveLength(Math.min(50, items.length));

    // A halt shows with its reason in the HALTED ones, and leaves the OPEN ones; a resume undoes both.
    const act = (action: 'halt' | 'resume', payload: object) =>
      api.app.inject({
        method: 'POST',
        url: `/v1/admin/instruments/KLBN11/${action}`,
        headers: auth(admin),
        payload,
      });
    expect((await act('halt', { reason: 'material fact pending' })).statusCode).toBe(200);
    const haltedOnes = await eventually(async () => {
      const page = await read('/v1/instruments?status=HALTED&limit=500');
      return page.items.some((item) => item.symbol === 'KLBN11') ? page.items : undefined;
    });
    expect(haltedOnes.every((item) => item.status === 'HALTED')).toBe(true);
    expect(haltedOnes.find((item) => item.symbol === 'KLBN11')).toMatchObject({
      status: 'HALTED',
      haltReason: 'material fact pending',
    });
    const openOnes = (await everyPage('status=OPEN&limit=5')).items;
    expect(openOnes.every((item) => item.status === 'OPEN')).toBe(true);
    expect(openOnes.map((item) => item.symbol)).not.toContain('KLBN11');
    expect((await act('resume', {})).statusCode).toBe(200);
    await eventually(async () => {
      const page = await read('/v1/instruments?status=OPEN&limit=500');
      const entry = page.items.find((item) => item.symbol === 'KLBN11');
      return entry?.haltReason === null ? entry : undefined;
    });
  });

  it('answers 404 for the market data of a symbol that is not listed, and those of one that is', async () => {
    const book = (symbol: string) =>
      api.app.inject({ method: 'GET', url: `/v1/market/${symbol}/book`, headers: auth(alice.token) });
    expect((await book('PETR4')).statusCode).toBe(200);
    expect((await book('PETR4F')).statusCode).toBe(200);
    const unlisted = await book('XXXX3');
    expect(unlisted.statusCode).toBe(404);
    expect(unlisted.json()).toMatchObject({ reason: 'BOOK_NOT_FOUND' });
    // Its candles and quote history likewise, where a listed symbol with none answers an empty list.
    for (const path of ['candles', 'quotes']) {
      const read = (symbol: string) =>
        api.app.inject({ method: 'GET', url: `/v1/market/${symbol}/${path}`, headers: auth(alice.token) });
      expect((await read('XXXX3')).json()).toMatchObject({ status: 404, reason: 'INSTRUMENT_NOT_FOUND' });
      expect((await read('PRIO3')).statusCode).toBe(200);
    }
    // The latest quote: not listed is INSTRUMENT_NOT_FOUND, as above; listed without a quote yet is
    // QUOTE_NOT_FOUND.
    const quote = (symbol: string) =>
      api.app.inject({ method: 'GET', url: `/v1/market/${symbol}/quote`, headers: auth(alice.token) });
    expect((await quote('XXXX3')).json()).toMatchObject({ status: 404, reason: 'INSTRUMENT_NOT_FOUND' });
    expect((await quote('XXXX3F')).json()).toMatchObject({ status: 404, reason: 'INSTRUMENT_NOT_FOUND' });
    expect((await quote('PRIO3')).json()).toMatchObject({ status: 404, reason: 'QUOTE_NOT_FOUND' });
  });

  it('answers the candles of every interval the schema takes (15m too), 1m when none is asked for', async () => {
    // Two BBAS3 trades six minutes apart, in one quarter hour a few hours ago.
    const quarter = 15 * 60_000;
    const start = Math.floor((Date.now() - 3 * 3_600_000) / quarter) * quarter;
    await api.b3.append('trade-BBAS3-candles', [
      tradeEvent('BBAS3-candle-1', 'BBAS3', 22_30, 100, start + 60_000),
      tradeEvent('BBAS3-candle-2', 'BBAS3', 22_50, 200, start + 7 * 60_000),
    ]);
    const range = `from=${new Date(start).toISOString()}&to=${new Date(start + quarter - 1).toISOString()}`;
    const candles = async (interval?: string) => {
      const response = await api.app.inject({
        method: 'GET',
        url: `/v1/market/BBAS3/candles?${interval ? `interval=${interval}&` : ''}${range}`,
        headers: auth(alice.token),
      });
      expect(response.statusCode, response.body).toBe(200);
      return (response.json() as { items: Array<{ start: string; trades: number; volume: number }> }).items;
    };
    const quarterHour = await eventually(async () => {
      const items = await candles('15m');
      return items.length > 0 ? items : undefined;
    });
    expect(quarterHour).toEqual([
      expect.objectContaining({
        start: new Date(start).toISOString(),
        open: '22.30',
        close: '22.50',
        trades: 2,
        volume: 300,
      }),
    ]);
    expect(await candles('5m')).toHaveLength(2);
    // No interval: one-minute candles.
    expect((await candles()).map((candle) => candle.start)).toEqual([
      new Date(start + 60_000).toISOString(),
      new Date(start + 7 * 60_000).toISOString(),
    ]);
    const unknown = await api.app.inject({
      method: 'GET',
      url: '/v1/market/BBAS3/candles?interval=2m',
      headers: auth(alice.token),
    });
    expect(unknown.statusCode).toBe(400);
    expect(unknown.json()).toMatchObject({ reason: 'VALIDATION_FAILED' });
  });

  it('answers the market data routes with the fields docs/api.md and the document list', async () => {
    const admin = await api.adminToken();
    const read = async (url: string) => {
      const response = await api.app.inject({ method: 'GET', url, headers: auth(alice.token) });
      expect(response.statusCode, response.body).toBe(200);
      return response.json() as Record<string, unknown>;
    };
    // A price (an admin's here; the feeds record a price the same way): bid, ask null, sizes and volume 0.
    await api.app.inject({
      method: 'POST',
      url: '/v1/admin/instruments/ABEV3/reference-price',
      headers: auth(admin),
      payload: { referencePrice: '12.85' },
    });
    const quote = QuoteAnswer.parse(
      await eventually(async () => {
        const response = await api.app.inject({
          method: 'GET',
          url: '/v1/market/ABEV3F/quote',
          headers: auth(alice.token),
        });
        return response.statusCode === 200 ? response.json() : undefined;
      }),
    );
    expect(quote).toMatchObject({
      symbol: 'ABEV3',
      bid: null,
      ask: null,
      bidSize: 0,
      askSize: 0,
      last: '12.85',
      volume: 0,
      source: 'admin',
    });
    expect(QuotesPageAnswer.parse(await read('/v1/market/ABEV3/quotes')).items[0]).toEqual(quote);

    // A book the engine opened, one order resting on each side, and a trade.
    const at = Date.now() - 60_000;
    await api.b3.append(bookStreamId('ABEV3'), [
      engineEvent('BookOpened', { sequence: 1, referencePrice: 12_85, priceBandBps: 1000, at }),
      engineEvent('OrderRested', {
        sequence: 2,
        orderId: 'abev-bid',
        accountId: alice.accountId,
        side: 'BUY',
        price: 12_80,
        remaining: 300,
        displayedQuantity: 100,
        at,
      }),
      engineEvent('OrderRested', {
        sequence: 3,
        orderId: 'abev-ask',
        accountId: alice.accountId,
        side: 'SELL',
        price: 12_90,
        remaining: 200,
        displayedQuantity: 200,
        at,
      }),
    ]);
    await api.b3.append('trade-ABEV3-documented', [tradeEvent('ABEV3-documented', 'ABEV3', 12_85, 100, at)]);
    const book = BookAnswer.parse(
      await eventually(async () => {
        const answer = await read('/v1/market/ABEV3/book');
        return answer.sequence === 3 ? answer : undefined;
      }),
    );
    expect(book).toMatchObject({
      status: 'OPEN',
      referencePrice: '12.85',
      lastTradePrice: null,
      bids: [{ price: '12.80', quantity: 100, orders: 1 }],
      asks: [{ price: '12.90', quantity: 200, orders: 1 }],
    });
    const candles = CandlesAnswer.parse(
      await eventually(async () => {
        const answer = await read('/v1/market/ABEV3/candles');
        return (answer.items as unknown[]).length > 0 ? answer : undefined;
      }),
    );
    expect(candles.items).toEqual([
      {
        symbol: 'ABEV3',
        interval: '1m',
        start: new Date(at - (at % 60_000)).toISOString(),
        open: '12.85',
        high: '12.85',
        low: '12.85',
        close: '12.85',
        volume: 100,
        vwap: '12.85',
        trades: 1,
      },
    ]);
  });

  it("shows the book's reference price as the B3 band applies it: an admin's new price at once, a newer quote", async () => {
    const admin = await api.adminToken();
    const referencePrice = async (symbol: string) => {
      const response = await api.app.inject({
        method: 'GET',
        url: `/v1/market/${symbol}/book`,
        headers: auth(alice.token),
      });
      return (response.json() as { referencePrice: string | null }).referencePrice;
    };
    const becomes = (symbol: string, price: string | null) =>
      eventually(async () => ((await referencePrice(symbol)) === price ? true : undefined), 5_000);

    // The engine opened RENT3's book at 40.90; an admin sets 42.00, which B3's band applies to the
    // next order at once, though no book event says so until that order comes.
    await api.b3.append(bookStreamId('RENT3'), [
      engineEvent('BookOpened', { sequence: 1, referencePrice: 40_90, priceBandBps: 1000 }),
    ]);
    await becomes('RENT3', '40.90');
    const priced = await api.app.inject({
      method: 'POST',
      url: '/v1/admin/instruments/RENT3/reference-price',
      headers: auth(admin),
      payload: { referencePrice: '42.00' },
    });
    expect(priced.statusCode).toBe(200);
    await becomes('RENT3', '42.00');
    // The engine records it with its next order; a book it never opened shows the same price,
    // which its first order will open it at.
    await api.b3.append(bookStreamId('RENT3'), [
      engineEvent('ReferencePriceSet', { sequence: 2, referencePrice: 42_00 }),
    ]);
    await eventually(async () => ((await aliceBook('RENT3')).sequence === 2 ? true : undefined));
    expect(await referencePrice('RENT3')).toBe('42.00');
    expect(await referencePrice('RENT3F')).toBe('42.00');

    // A feed's quote: the band takes one observed after the engine recorded its price, not an older one.
    const wasEnabled = api.marketData.quotesEnabled;
    api.marketData.setQuotesEnabled(true);
    try {
      const openedAt = Date.now() - 60_000;
      await api.b3.append(bookStreamId('SUZB3'), [
        engineEvent('BookOpened', { sequence: 1, referencePrice: 55_60, priceBandBps: 1000, at: openedAt }),
      ]);
      await api.marketData.publish({
        symbol: 'SUZB3',
        price: 55_10,
        at: openedAt - 60_000,
        source: 'random-walk',
      });
      await eventually(async () => {
        const response = await api.app.inject({
          method: 'GET',
          url: '/v1/market/SUZB3/quote',
          headers: auth(alice.token),
        });
        return response.statusCode === 200 ? true : undefined;
      });
      await becomes('SUZB3', '55.60');
      await api.marketData.publish({ symbol: 'SUZB3', price: 56_00, at: Date.now(), source: 'random-walk' });
      await becomes('SUZB3', '56.00');
      // The fractional book trades against the same price, once it has opened.
      await api.b3.append(bookStreamId('SUZB3F'), [
        engineEvent('BookOpened', { sequence: 1, referencePrice: 55_60, priceBandBps: 1000, at: openedAt }),
      ]);
      await becomes('SUZB3F', '56.00');
    } finally {
      api.marketData.setQuotesEnabled(wasEnabled);
    }
  });

  it('shows the book of a halted instrument as HALTED, on both markets, until trading resumes', async () => {
    const admin = await api.adminToken();
    // The B3 engine opened TAEE11's book (its first order did); TAEE11F's it never opened.
    await api.b3.append(bookStreamId('TAEE11'), [
      engineEvent('BookOpened', { sequence: 1, symbol: 'TAEE11', referencePrice: 36_20, priceBandBps: 1000 }),
    ]);
    const book = aliceBook;
    await eventually(async () => ((await book('TAEE11')).status === 'OPEN' ? true : undefined));
    expect(await book('TAEE11F')).toMatchObject({ status: 'NOT_OPEN' });

    const admit = (action: 'halt' | 'resume', payload: object) =>
      api.app.inject({
        method: 'POST',
        url: `/v1/admin/instruments/TAEE11/${action}`,
        headers: auth(admin),
        payload,
      });
    expect((await admit('halt', { reason: 'material fact pending' })).statusCode).toBe(200);
    for (const symbol of ['TAEE11', 'TAEE11F'])
      expect(await book(symbol)).toMatchObject({ status: 'HALTED', haltReason: 'material fact pending' });

    expect((await admit('resume', {})).statusCode).toBe(200);
    expect(await book('TAEE11')).toMatchObject({ status: 'OPEN', haltReason: null, referencePrice: '36.20' });
    expect(await book('TAEE11F')).toMatchObject({ status: 'NOT_OPEN', haltReason: null });
  });

  it("shows the B3 engine's status of a book: halted there, it is HALTED with the engine's reason, whatever the catalogue says", async () => {
    const book = aliceBook;
    await api.b3.append(bookStreamId('WEGE3'), [
      engineEvent('BookOpened', { sequence: 1, symbol: 'WEGE3', referencePrice: 40_00, priceBandBps: 1000 }),
      // The halt the catalogue sent reached the engine; the catalogue has resumed since, and the
      // resume has not reached it yet: the book is still halted at B3.
      engineEvent('TradingHalted', { sequence: 2, reason: 'circuit breaker', catalogueVersion: 1 }),
    ]);
    // A fractional book halted before its first order.
    await api.b3.append(bookStreamId('WEGE3F'), [
      engineEvent('TradingHalted', { sequence: 1, reason: 'circuit breaker', catalogueVersion: 1 }),
    ]);
    for (const symbol of ['WEGE3', 'WEGE3F'])
      expect(
        await eventually(async () => {
          const answer = await book(symbol);
          return answer.status === 'HALTED' ? answer : undefined;
        }),
      ).toMatchObject({ status: 'HALTED', haltReason: 'circuit breaker' });

    await api.b3.append(bookStreamId('WEGE3'), [
      engineEvent('TradingResumed', { sequence: 3, catalogueVersion: 2 }),
    ]);
    await api.b3.append(bookStreamId('WEGE3F'), [
      engineEvent('TradingResumed', { sequence: 2, catalogueVersion: 2 }),
    ]);
    await eventually(async () => ((await book('WEGE3')).status === 'OPEN' ? true : undefined));
    expect(await book('WEGE3')).toMatchObject({ status: 'OPEN', haltReason: null, referencePrice: '40.00' });
    await eventually(async () => ((await book('WEGE3F')).status === 'NOT_OPEN' ? true : undefined));
    expect(await book('WEGE3F')).toMatchObject({
      status: 'NOT_OPEN',
      haltReason: null,
      referencePrice: null,
    });
  });

  it('answers its main routes as the OpenAPI document describes them, field for field', async () => {
    const trader = await api.trader('documented');
    const login = await api.app.inject({
      method: 'POST',
      url: '/v1/auth/login',
      payload: { username: 'documented', password: 'a-good-password' },
    });
    LoginAnswer.parse(login.json());
    const deposit = await api.app.inject({
      method: 'POST',
      url: `/v1/accounts/${trader.accountId}/deposits`,
      headers: auth(trader.token),
      payload: { amount: '500.00' },
    });
    WalletChangeAnswer.parse(deposit.json());
    const transfer = await api.app.inject({
      method: 'POST',
      url: `/v1/accounts/${trader.accountId}/custody-transfers`,
      headers: auth(trader.token),
      payload: { symbol: 'ITUB4', quantity: 100, unitCost: '35.00' },
    });
    WalletChangeAnswer.parse(transfer.json());
    const wallet = await eventually(async () => {
      const response = await api.app.inject({
        method: 'GET',
        url: `/v1/accounts/${trader.accountId}/wallet`,
        headers: auth(trader.token),
      });
      const body = response.json() as { positions?: unknown[] };
      return body.positions?.length === 1 ? body : undefined;
    });
    WalletAnswer.parse(wallet);
    // The command's answer shows the positions as the wallet read model does.
    expect(transfer.json().positions).toEqual((wallet as { positions: unknown[] }).positions);
    const placed = await api.app.inject({
      method: 'POST',
      url: '/v1/orders',
      headers: auth(trader.token),
      payload: {
        accountId: trader.accountId,
        symbol: 'ITUB4',
        side: 'SELL',
        type: 'LIMIT',
        quantity: 100,
        price: '35.10',
      },
    });
    const { orderId } = OrderPlacedAnswer.parse(placed.json());
    const order = await eventually(async () => {
      const response = await api.app.inject({
        method: 'GET',
        url: `/v1/orders/${orderId}`,
        headers: auth(trader.token),
      });
      return response.statusCode === 200 ? response.json() : undefined;
    });
    OrderAnswer.parse(order);
    // One trade on the tape with this trader on one side: a trader sees its own side's ids only.
    await api.b3.append('trade-ITUB4-documented', [
      {
        id: randomUUID(),
        type: 'TradeExecuted',
        data: {
          tradeId: 'ITUB4-documented',
          symbol: 'ITUB4',
          price: 35_10,
          quantity: 100,
          buyOrderId: 'someone-elses',
          buyAccountId: 'someone-else',
          sellOrderId: orderId,
          sellAccountId: trader.accountId,
          aggressorSide: 'BUY',
          bookSequence: 1,
          at: Date.now(),
        },
        metadata: {
          correlationId: randomUUID(),
          causationId: randomUUID(),
          actor: 'b3-engine',
          occurredAt: new Date().toISOString(),
        },
      },
    ]);
    const tape = await eventually(async () => {
      const response = await api.app.inject({
        method: 'GET',
        url: '/v1/trades?symbol=ITUB4&limit=1',
        headers: auth(trader.token),
      });
      const page = response.json() as { items?: unknown[] };
      return page.items?.length === 1 ? page : undefined;
    });
    expect(TradesPageAnswer.parse(tape).items[0]).toMatchObject({ sellOrderId: orderId, price: '35.10' });
    expect(tape.items?.[0]).not.toHaveProperty('buyAccountId');
    // An admin's change to an entry answers the entry.
    const repriced = await api.app.inject({
      method: 'POST',
      url: '/v1/admin/instruments/ITUB4/reference-price',
      headers: auth(await api.adminToken()),
      payload: { referencePrice: '35.00' },
    });
    expect(repriced.statusCode, repriced.body).toBe(200);
    expect(InstrumentAnswer.parse(repriced.json())).toMatchObject({
      symbol: 'ITUB4',
      referencePrice: '35.00',
    });
    // The catalogue: an entry, and a page of the list with more to come.
    const entry = await api.app.inject({
      method: 'GET',
      url: '/v1/instruments/ITUB4F',
      headers: auth(trader.token),
    });
    expect(InstrumentAnswer.parse(entry.json())).toMatchObject({
      symbol: 'ITUB4',
      fractionalSymbol: 'ITUB4F',
    });
    const catalogue = await eventually(async () => {
      const response = await api.app.inject({
        method: 'GET',
        url: '/v1/instruments?limit=2',
        headers: auth(trader.token),
      });
      const page = response.json() as { items?: unknown[] };
      return page.items?.length === 2 ? page : undefined;
    });
    expect(InstrumentsPageAnswer.parse(catalogue).nextCursor).toEqual(expect.any(String));
  });

  it('takes JSON bodies only, under documented reasons, and an empty JSON body as none', async () => {
    const deposit = (headers: Record<string, string>, payload: string) =>
      api.app.inject({
        method: 'POST',
        url: `/v1/accounts/${alice.accountId}/deposits`,
        headers: { ...auth(alice.token), ...headers },
        payload,
      });
    const before = (await api.allEvents()).length;
    const plain = await deposit({ 'content-type': 'text/plain' }, '{"amount":"1.00"}');
    expect(plain.statusCode).toBe(415);
    expect(plain.json()).toMatchObject({
      reason: 'UNSUPPORTED_MEDIA_TYPE',
      detail: 'a body must be JSON, sent with Content-Type: application/json',
    });
    const broken = await deposit({ 'content-type': 'application/json' }, '{"amount":');
    expect(broken.statusCode).toBe(400);
    expect(broken.json()).toMatchObject({ reason: 'INVALID_JSON' });
    const empty = await deposit({ 'content-type': 'application/json' }, '');
    expect(empty.statusCode).toBe(400);
    expect(empty.json()).toMatchObject({ reason: 'VALIDATION_FAILED' });
    expect((await api.allEvents()).length).toBe(before);

    // A cancel sent with a JSON content type and no body is a cancel.
    const cancel = await api.app.inject({
      method: 'DELETE',
      url: '/v1/orders/00000000-0000-4000-8000-000000000000',
      headers: { ...auth(alice.token), 'content-type': 'application/json' },
    });
    expect(cancel.statusCode).toBe(404);
    // The scheme of the Authorization header is case-insensitive.
    const me = await api.app.inject({
      method: 'GET',
      url: '/v1/auth/me',
      headers: { authorization: `bearer ${alice.token}` },
    });
    expect(me.statusCode).toBe(200);
    // Anything after the token makes it no token of ours.
    const trailing = await api.app.inject({
      method: 'GET',
      url: '/v1/auth/me',
      headers: { authorization: `Bearer ${alice.token} extra` },
    });
    expect(trailing.json()).toMatchObject({ status: 401, reason: 'INVALID_TOKEN' });
  });

  it('serves the OpenAPI document, health and metrics', async () => {
    const spec = await api.app.inject({ method: 'GET', url: '/docs/json' });
    expect(spec.statusCode).toBe(200);
    const paths = Object.keys(spec.json().paths);
    expect(paths).toEqual(expect.arrayContaining(['/v1/orders', '/v1/audit/trace/{correlationId}']));
    // The headers the answers carry are in the document too.
    const placed = spec.json().paths['/v1/orders'].post.responses;
    expect(Object.keys(placed['202'].headers)).toEqual(['idempotent-replayed', 'location']);
    expect(placed['429']).toBeUndefined();
    const password = spec.json().paths['/v1/accounts/{id}/password'].post.responses;
    expect(password['429'].headers).toHaveProperty('retry-after');
    expect(password['403'].description).toContain('WRONG_PASSWORD');
    // The rebuild route names the projections it takes.
    const [name] = spec.json().paths['/v1/admin/projections/{name}/rebuild'].post.parameters;
    expect(name.description).toMatch(/^a read model's projection, or all: .*\borders\b.*\bwallets\b/);
    expect((await api.app.inject({ method: 'GET', url: '/docs' })).statusCode).toBeLessThan(400);
    expect((await api.app.inject({ method: 'GET', url: '/health/live' })).statusCode).toBe(200);
    const ready = await api.app.inject({ method: 'GET', url: '/health/ready' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json().checks['broker-event-store']).toEqual({ status: 'up' });
    const metrics = await api.app.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.body).toContain('tradecore_http_request_duration_seconds_bucket');
    expect(metrics.body).toContain('route="/v1/orders"');
  });

  it('rebuilds state for the audit API at a version and lists a stream with metadata, hashes redacted', async () => {
    const admin = await api.adminToken();
    const stream = await api.app.inject({
      method: 'GET',
      url: `/v1/audit/streams/account-${alice.accountId}?from=0&limit=10`,
      headers: auth(admin),
    });
    expect(stream.statusCode).toBe(200);
    expect(stream.json().events[0]).toMatchObject({
      type: 'AccountRegistered',
      data: { passwordHash: '[redacted]' },
    });
    const state = await api.app.inject({
      method: 'GET',
      url: `/v1/audit/streams/wallet-${alice.accountId}/state?version=0`,
      headers: auth(admin),
    });
    expect(state.statusCode).toBe(200);
    expect(state.json()).toMatchObject({ version: 0, state: { cash: { available: 1000050 } } });
    // Where the stream is now, as `tradecore audit state` says it: its last event's version.
    const walletEvents = await api.app.inject({
      method: 'GET',
      url: `/v1/audit/streams/wallet-${alice.accountId}?from=0&limit=1000`,
      headers: auth(admin),
    });
    expect(state.json().currentVersion).toBe(walletEvents.json().events.at(-1).version);
  });

  it('lets an admin list instruments, halt one, and run projections', async () => {
    const admin = await api.adminToken();
    const listing = await api.app.inject({
      method: 'POST',
      url: '/v1/admin/instruments',
      headers: auth(admin),
      payload: {
        symbol: 'MGLU3',
        name: 'Magazine Luiza ON',
        lotSize: 100,
        tickSize: '0.01',
        fractional: true,
        referencePrice: '9.80',
      },
    });
    expect(listing.statusCode).toBe(201);
    expect(listing.json()).toMatchObject({
      symbol: 'MGLU3',
      referencePrice: '9.80',
      fractionalSymbol: 'MGLU3F',
    });
    // Its price reaches the market data at once, so the B3 price band can take orders for it.
    const quote = await eventually(async () => {
      const response = await api.app.inject({
        method: 'GET',
        url: '/v1/market/MGLU3/quote',
        headers: auth(admin),
      });
      return response.statusCode === 200 ? response.json() : undefined;
    });
    expect(quote).toMatchObject({ symbol: 'MGLU3', last: '9.80' });
    // The fractional market trades the same share at the same price: its quote is the instrument's.
    for (const path of ['quote', 'quotes']) {
      const fractional = await api.app.inject({
        method: 'GET',
        url: `/v1/market/MGLU3F/${path}`,
        headers: auth(admin),
      });
      expect(fractional.statusCode, fractional.body).toBe(200);
      const answer = fractional.json();
      expect(path === 'quote' ? answer : answer.items[0]).toMatchObject({ symbol: 'MGLU3', last: '9.80' });
    }
    const halt = await api.app.inject({
      method: 'POST',
      url: '/v1/admin/instruments/MGLU3/halt',
      headers: auth(admin),
      payload: { reason: 'news pending' },
    });
    expect(halt.json()).toMatchObject({ status: 'HALTED' });
    const status = await api.app.inject({
      method: 'GET',
      url: '/v1/admin/projections',
      headers: auth(admin),
    });
    expect(status.statusCode).toBe(200);
    const unknown = await api.app.inject({
      method: 'POST',
      url: '/v1/admin/projections/nope/rebuild',
      headers: auth(admin),
    });
    expect(unknown.statusCode).toBe(404);
    const withFields = await api.app.inject({
      method: 'POST',
      url: '/v1/admin/projections/orders/rebuild',
      headers: auth(admin),
      payload: { everything: true },
    });
    expect(withFields.statusCode).toBe(400);
    expect(withFields.json()).toMatchObject({ reason: 'VALIDATION_FAILED' });
    const unlisted = await api.app.inject({
      method: 'POST',
      url: '/v1/admin/instruments/NOPE3/halt',
      headers: auth(admin),
      payload: { reason: 'x' },
    });
    expect(unlisted.statusCode).toBe(404);
    expect(unlisted.json()).toMatchObject({ reason: 'INSTRUMENT_NOT_FOUND', detail: 'NOPE3 is not listed' });
    // Resume takes no body, or `{}`.
    for (const payload of [undefined, {}]) {
      const resume = await api.app.inject({
        method: 'POST',
        url: '/v1/admin/instruments/MGLU3/resume',
        headers: auth(admin),
        ...(payload ? { payload } : {}),
      });
      expect(resume.statusCode).toBe(200);
      expect(resume.json()).toMatchObject({ status: 'OPEN' });
    }
  });

  it('replaces the reason of a halt when an admin halts again for another; the same reason, like a resume of an open instrument, changes nothing', async () => {
    const admin = await api.adminToken();
    const act = (action: 'halt' | 'resume', payload: object) =>
      api.app.inject({
        method: 'POST',
        url: `/v1/admin/instruments/ITSA4/${action}`,
        headers: auth(admin),
        payload,
      });
    const recorded = async () =>
      (await api.broker.readStream('instrument-ITSA4')).filter(
        (event) => event.type === 'TradingHalted' || event.type === 'TradingResumed',
      );

    expect((await act('halt', { reason: 'circuit breaker' })).json()).toMatchObject({
      status: 'HALTED',
      haltReason: 'circuit breaker',
    });
    const replaced = await act('halt', { reason: 'material fact pending' });
    expect(replaced.statusCode).toBe(200);
    expect(replaced.json()).toMatchObject({ status: 'HALTED', haltReason: 'material fact pending' });
    expect((await recorded()).map((event) => (event.data as { reason?: string }).reason)).toEqual([
      'circuit breaker',
      'material fact pending',
    ]);
    const catalogue = await api.app.inject({
      method: 'GET',
      url: '/v1/instruments/ITSA4',
      headers: auth(alice.token),
    });
    expect(catalogue.json()).toMatchObject({ status: 'HALTED', haltReason: 'material fact pending' });

    const repeated = await act('halt', { reason: 'material fact pending' });
    expect(repeated.statusCode).toBe(200);
    expect(repeated.json()).toMatchObject({ status: 'HALTED', haltReason: 'material fact pending' });
    expect(await recorded()).toHaveLength(2);

    for (let time = 0; time < 2; time++) {
      const resumed = await act('resume', {});
      expect(resumed.statusCode).toBe(200);
      expect(resumed.json()).toMatchObject({ status: 'OPEN', haltReason: null });
    }
    expect(await recorded()).toHaveLength(3);
  });

  it('lets an admin switch quotes off and pin a reference price for the price band', async () => {
    const admin = await api.adminToken();
    const off = await api.app.inject({
      method: 'POST',
      url: '/v1/admin/market/quotes',
      headers: auth(admin),
      payload: { enabled: false },
    });
    expect(off.json()).toEqual({ enabled: false });
    expect(api.marketData.quotesEnabled).toBe(false);
    const bad = await api.app.inject({
      method: 'POST',
      url: '/v1/admin/market/quotes',
      headers: auth(admin),
      payload: { enabled: 'nope' },
    });
    expect(bad.statusCode).toBe(400);
    expect(api.marketData.quotesEnabled).toBe(false);

    const priced = await api.app.inject({
      method: 'POST',
      url: '/v1/admin/instruments/VALE3/reference-price',
      headers: auth(admin),
      payload: { referencePrice: '61.23' },
    });
    expect(priced.json()).toMatchObject({ symbol: 'VALE3', referencePrice: '61.23' });
    // The same price reached the quote feed: recorded as an admin quote on the B3 side.
    const quotes = await api.b3.readStream('quotes-VALE3');
    expect(quotes.at(-1)).toMatchObject({
      type: 'QuoteReceived',
      data: { symbol: 'VALE3', last: 6_123, source: 'admin' },
    });

    // The price the catalogue already has is pinned too: the quotes have moved away from it since.
    const listed = await api.app.inject({
      method: 'GET',
      url: '/v1/instruments/ITUB4',
      headers: auth(admin),
    });
    const { referencePrice } = listed.json() as { referencePrice: string };
    const again = await api.app.inject({
      method: 'POST',
      url: '/v1/admin/instruments/ITUB4/reference-price',
      headers: auth(admin),
      payload: { referencePrice },
    });
    expect(again.statusCode).toBe(200);
    expect((await api.b3.readStream('quotes-ITUB4')).at(-1)).toMatchObject({
      data: { symbol: 'ITUB4', last: Math.round(Number(referencePrice) * 100), source: 'admin' },
    });
  });
});

describe('login rate limiting', () => {
  it('answers 429 problem+json once a client has used up its login attempts', async () => {
    const limited = await startTestApi({
      readModels: false,
      loginRateLimit: { max: 3, timeWindowMs: 60_000 },
    });
    try {
      const attempt = () =>
        limited.app.inject({
          method: 'POST',
          url: '/v1/auth/login',
          payload: { username: 'nobody', password: 'wrong-password' },
        });
      for (let i = 0; i < 3; i += 1) expect((await attempt()).statusCode).toBe(401);
      const refused = await attempt();
      expect(refused.statusCode).toBe(429);
      expect(refused.headers['content-type']).toContain('application/problem+json');
      expect(refused.json()).toMatchObject({ reason: 'RATE_LIMITED', status: 429 });
    } finally {
      await limited.close();
    }
  }, 180_000);
});
