import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPostgresEventStore } from '../../adapters/postgres/index.ts';
import type { EventStore } from '../../domain/shared/event-store.ts';
import { isolatedName, testUrls } from '../../infra/test-infra/isolation.ts';
import { client } from '../all-in-one/testing.ts';
import { brokerStoreSchemas } from './api-events.ts';
import { startTestApi, type TestApi } from './testing.ts';

/**
 * The API on the real Postgres event stores (isolated schemas), through a real listening server:
 * HTTP over a socket, with fetch, as a client would.
 */
const { databaseUrl } = testUrls();
const schemas = { broker: isolatedName('api_broker'), b3: isolatedName('api_b3') };
let broker: EventStore;
let b3: EventStore;
let api: TestApi;
let baseUrl: string;

beforeAll(async () => {
  broker = await openPostgresEventStore({
    url: databaseUrl,
    schema: schemas.broker,
    schemas: brokerStoreSchemas(),
  });
  b3 = await openPostgresEventStore({ url: databaseUrl, schema: schemas.b3 });
  api = await startTestApi({ broker, b3 });
  baseUrl = await api.app.listen({ port: 0, host: '127.0.0.1' });
}, 180_000);

afterAll(async () => {
  await api?.close();
  await broker?.close();
  await b3?.close();
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  for (const schema of Object.values(schemas)) await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await client.end();
});

/** A user's HTTP client of the server this file starts. */
const call: ReturnType<typeof client> = (...args) => client(baseUrl)(...args);

describe('the API over HTTP on Postgres', () => {
  it('registers, logs in, funds, places an order and audits it', async () => {
    const registered = await call('POST', '/v1/auth/register', {
      body: { username: 'pgtrader', password: 'pg-password-1' },
    });
    expect(registered.status).toBe(201);
    const login = await call('POST', '/v1/auth/login', {
      body: { username: 'pgtrader', password: 'pg-password-1' },
    });
    expect(login.status).toBe(200);
    const token: string = login.body.token;
    const { accountId } = registered.body;

    const deposit = await call('POST', `/v1/accounts/${accountId}/deposits`, {
      token,
      body: { amount: '5000.00' },
    });
    expect(deposit.status).toBe(201);

    const placed = await call('POST', '/v1/orders', {
      token,
      headers: { 'idempotency-key': 'pg-order-1', 'x-correlation-id': 'pg-corr-1' },
      body: { accountId, symbol: 'PETR4F', side: 'BUY', type: 'LIMIT', quantity: 10, price: '32.00' },
    });
    expect(placed.status).toBe(202);
    expect(placed.headers.get('x-correlation-id')).toBe('pg-corr-1');
    const replay = await call('POST', '/v1/orders', {
      token,
      headers: { 'idempotency-key': 'pg-order-1' },
      body: { accountId, symbol: 'PETR4F', side: 'BUY', type: 'LIMIT', quantity: 10, price: '32.00' },
    });
    expect(replay.body).toEqual(placed.body);

    const [event] = await broker.readStream(`order-${placed.body.orderId}`);
    expect(event).toMatchObject({
      type: 'OrderPlaced',
      data: { symbol: 'PETR4F', market: 'FRACTIONAL', price: 3200 },
    });
    expect(event?.metadata.correlationId).toBe('pg-corr-1');

    const admin = await call('POST', '/v1/auth/login', {
      body: { username: 'admin', password: 'admin-test-password' },
    });
    const trace = await call('GET', '/v1/audit/trace/pg-corr-1', { token: admin.body.token });
    expect(trace.status).toBe(200);
    // The order, and the idempotency key's bookkeeping around it, all under the request's correlation id.
    expect(trace.body.events.map((item: { type: string }) => item.type)).toEqual([
      'IdempotencyKeyClaimed',
      'OrderPlaced',
      'IdempotencyKeyCompleted',
    ]);
  });

  it('answers problems as problem+json over the wire', async () => {
    const response = await fetch(`${baseUrl}/v1/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"broken',
    });
    expect(response.status).toBe(401);
    expect(response.headers.get('content-type')).toContain('application/problem+json');
    const ready = await call('GET', '/health/ready');
    expect(ready.status).toBe(200);
  });
});
