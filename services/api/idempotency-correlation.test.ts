import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApi } from './app.ts';
import { TokenIssuer } from './auth.ts';
import { JWT_SECRET, startTestApi, type TestApi } from './testing.ts';

const logLines: Array<Record<string, unknown>> = [];
const logger = pino(
  { level: 'info' },
  new Writable({
    write(chunk, _encoding, done) {
      logLines.push(JSON.parse(String(chunk)));
      done();
    },
  }),
);

let api: TestApi;
let trader: { accountId: string; token: string };
const order = () => ({
  accountId: trader.accountId,
  symbol: 'ITUB4',
  side: 'BUY',
  type: 'LIMIT',
  quantity: 100,
  price: '35.10',
});

beforeAll(async () => {
  api = await startTestApi({ logger });
  trader = await api.trader('idem');
}, 180_000);
afterAll(async () => api?.close());

const post = (url: string, payload: object, headers: Record<string, string | string[]> = {}) =>
  api.app.inject({
    method: 'POST',
    url,
    payload,
    headers: { authorization: `Bearer ${trader.token}`, ...headers },
  });

const orderStreams = async () =>
  new Set(
    (await api.broker.readAll({ limit: 100_000 }))
      .filter((event) => event.type === 'OrderPlaced')
      .map((event) => event.streamId),
  );

describe('Idempotency-Key', () => {
  it('answers the same key and body with the same result and creates nothing new', async () => {
    const before = (await orderStreams()).size;
    const first = await post('/v1/orders', order(), { 'idempotency-key': 'order-1' });
    const second = await post('/v1/orders', order(), { 'idempotency-key': 'order-1' });
    expect(first.statusCode).toBe(202);
    expect(second.statusCode).toBe(202);
    expect(second.json()).toEqual(first.json());
    expect(second.headers['idempotent-replayed']).toBe('true');
    expect(first.headers.location).toBe(`/v1/orders/${first.json().orderId}`);
    expect(second.headers.location).toBe(first.headers.location);
    expect((await orderStreams()).size).toBe(before + 1);
  });

  it('refuses the same key with another body with 422', async () => {
    await post('/v1/orders', order(), { 'idempotency-key': 'order-2' });
    const other = await post('/v1/orders', { ...order(), quantity: 200 }, { 'idempotency-key': 'order-2' });
    expect(other.statusCode).toBe(422);
    expect(other.json()).toMatchObject({ reason: 'IDEMPOTENCY_KEY_REUSED' });
  });

  it('holds across a restart: a new API process on the same store answers from the event store', async () => {
    const first = await post(
      `/v1/accounts/${trader.accountId}/deposits`,
      { amount: '50.00' },
      { 'idempotency-key': 'dep-1' },
    );
    const restarted = await buildApi({
      broker: api.broker,
      b3: api.b3,
      tokens: new TokenIssuer(JWT_SECRET, 3600),
    });
    const again = await restarted.inject({
      method: 'POST',
      url: `/v1/accounts/${trader.accountId}/deposits`,
      payload: { amount: '50.00' },
      headers: { authorization: `Bearer ${trader.token}`, 'idempotency-key': 'dep-1' },
    });
    await restarted.close();
    expect(again.statusCode).toBe(201);
    expect(again.json()).toEqual(first.json());
    const deposits = (await api.broker.readStream(`wallet-${trader.accountId}`)).filter(
      (event) => event.type === 'CashDeposited',
    );
    expect(deposits).toHaveLength(1);
  });

  it('lets only one of many concurrent requests with the same key create', async () => {
    const before = (await orderStreams()).size;
    const answers = await Promise.all(
      Array.from({ length: 5 }, () => post('/v1/orders', order(), { 'idempotency-key': 'order-race' })),
    );
    const created = new Set(answers.filter((a) => a.statusCode === 202).map((a) => a.json().orderId));
    expect(created.size).toBe(1);
    for (const answer of answers) expect([202, 409]).toContain(answer.statusCode);
    expect((await orderStreams()).size).toBe(before + 1);
  });

  it('releases the key when the request was refused, so a corrected retry may use it', async () => {
    const refused = await post('/v1/orders', { ...order(), quantity: 150 }, { 'idempotency-key': 'order-3' });
    expect(refused.statusCode).toBe(422);
    const retried = await post('/v1/orders', { ...order(), quantity: 150 }, { 'idempotency-key': 'order-3' });
    expect(retried.statusCode).toBe(422);
    expect(retried.headers['idempotent-replayed']).toBeUndefined();
  });

  it('keeps a register’s password out of reach: its fingerprint is keyed, and the audit API hides it', async () => {
    const body = { username: 'fingerprinted', password: 'correct horse' };
    const registered = await api.app.inject({
      method: 'POST',
      url: '/v1/auth/register',
      payload: body,
      headers: { 'idempotency-key': 'reg-1' },
    });
    expect(registered.statusCode).toBe(201);
    const [claimed] = await api.broker.readStream('idempotency-anonymous-reg-1');
    // A plain digest of the request could be matched against guessed passwords offline.
    const plain = createHash('sha256')
      .update(
        `POST /v1/auth/register\n${JSON.stringify({ password: body.password, username: body.username })}`,
      )
      .digest('base64url');
    const { fingerprint } = (claimed?.data ?? {}) as { fingerprint?: string };
    expect(fingerprint).toMatch(/^[\w-]{43}$/);
    expect(fingerprint).not.toBe(plain);
    const audited = await api.app.inject({
      method: 'GET',
      url: '/v1/audit/streams/idempotency-anonymous-reg-1',
      headers: { authorization: `Bearer ${await api.adminToken()}` },
    });
    expect(audited.json().events[0].data).toEqual({
      key: 'reg-1',
      fingerprint: '[redacted]',
      derivedIds: true,
    });
  });

  it('refuses a malformed key', async () => {
    const response = await post('/v1/orders', order(), { 'idempotency-key': 'has spaces/and slashes' });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({ reason: 'INVALID_IDEMPOTENCY_KEY' });
  });

  it('says a key given twice was given twice, and places nothing', async () => {
    const before = await api.broker.headPosition();
    const response = await post('/v1/orders', order(), { 'idempotency-key': ['twice-1', 'twice-2'] });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({
      reason: 'INVALID_IDEMPOTENCY_KEY',
      detail: 'Idempotency-Key is given 2 times: give it once',
    });
    expect(await api.broker.headPosition()).toBe(before);
  });
});

describe('correlation ids', () => {
  it('carries the caller’s x-correlation-id into the response, every event’s metadata and the log lines', async () => {
    logLines.length = 0;
    const response = await post('/v1/orders', order(), { 'x-correlation-id': 'trace-me-123' });
    expect(response.statusCode).toBe(202);
    expect(response.headers['x-correlation-id']).toBe('trace-me-123');
    const [placed] = await api.broker.readStream(`order-${response.json().orderId}`);
    expect(placed?.metadata).toMatchObject({
      correlationId: 'trace-me-123',
      causationId: `http-${response.headers['x-request-id']}`,
      actor: trader.accountId,
    });
    const requestLines = logLines.filter((line) => line.reqId === response.headers['x-request-id']);
    expect(requestLines.length).toBeGreaterThan(0);
    for (const line of requestLines) expect(line.correlationId).toBe('trace-me-123');

    const admin = await api.adminToken();
    const trace = await api.app.inject({
      method: 'GET',
      url: '/v1/audit/trace/trace-me-123',
      headers: { authorization: `Bearer ${admin}` },
    });
    expect(trace.statusCode).toBe(200);
    expect(trace.json().events.map((event: { type: string }) => event.type)).toEqual(['OrderPlaced']);
  });

  it('generates one when the caller sends none (or an unusable one)', async () => {
    for (const headers of [{}, { 'x-correlation-id': 'bad id with spaces' }] as Array<
      Record<string, string>
    >) {
      const response = await post(`/v1/accounts/${trader.accountId}/deposits`, { amount: '1.00' }, headers);
      const correlationId = response.headers['x-correlation-id'];
      expect(correlationId).toMatch(/^[0-9a-f-]{36}$/);
      const [last] = await api.broker.readStream(`wallet-${trader.accountId}`, {
        direction: 'backwards',
        limit: 1,
      });
      expect(last?.metadata.correlationId).toBe(correlationId);
    }
  });

  it('logs an unknown route as a refused request, like any other 4xx', async () => {
    logLines.length = 0;
    const response = await api.app.inject({ method: 'GET', url: '/nope/x' });
    expect(response.statusCode).toBe(404);
    expect(logLines).toContainEqual(
      expect.objectContaining({
        reqId: response.headers['x-request-id'],
        msg: 'request refused',
        reason: 'ROUTE_NOT_FOUND',
        status: 404,
      }),
    );
  });

  it('keeps a refused id in the log lines of its request', async () => {
    logLines.length = 0;
    const response = await post(
      `/v1/accounts/${trader.accountId}/deposits`,
      { amount: '1.00' },
      {
        'x-correlation-id': 'bad id with spaces',
      },
    );
    const requestLines = logLines.filter((line) => line.reqId === response.headers['x-request-id']);
    expect(requestLines.length).toBeGreaterThan(0);
    for (const line of requestLines) {
      expect(line.refusedCorrelationId).toBe('bad id with spaces');
      expect(line.correlationId).toBe(response.headers['x-correlation-id']);
    }
  });

  it('puts the correlation id on problems too', async () => {
    const response = await post('/v1/orders', { nope: 1 }, { 'x-correlation-id': 'bad-request-1' });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({ correlationId: 'bad-request-1' });
  });
});
