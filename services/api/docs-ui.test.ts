import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { CANDLE_INTERVAL_NAMES, DEFAULT_CANDLE_INTERVAL } from '../../projections/read-models/candles.ts';
import { startTestApi, type TestApi } from './testing.ts';

let api: TestApi;
beforeAll(async () => {
  api = await startTestApi({ readModels: false });
}, 180_000);
afterAll(async () => api?.close());

it('serves the Swagger UI page and its assets at /docs', async () => {
  const page = await api.app.inject({ method: 'GET', url: '/docs' });
  expect(page.statusCode).toBe(200);
  expect(page.body).toContain('swagger-ui');
  const asset = await api.app.inject({ method: 'GET', url: '/docs/static/swagger-ui.css' });
  expect(asset.statusCode).toBe(200);
  const spec = (await api.app.inject({ method: 'GET', url: '/docs/json' })).json();
  expect(spec.components.securitySchemes.bearerAuth).toMatchObject({ type: 'http', scheme: 'bearer' });
  const order = spec.paths['/v1/orders'].post;
  expect(order.requestBody.content['application/json'].schema.properties.price).toMatchObject({
    type: 'string',
  });
});

it('documents every route’s answers: its success, and problems as application/problem+json', async () => {
  const spec = (await api.app.inject({ method: 'GET', url: '/docs/json' })).json();
  const operations = Object.entries(
    spec.paths as Record<string, Record<string, { responses: Record<string, { content?: object }> }>>,
  ).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, operation]) => ({ path, method, operation })),
  );
  const v1 = operations.filter(({ path }) => path.startsWith('/v1/'));
  expect(v1.length).toBeGreaterThan(25);
  for (const { path, method, operation } of v1) {
    const codes = Object.keys(operation.responses);
    // The WebSocket upgrade succeeds with 101 Switching Protocols.
    expect(
      codes.some((code) => code.startsWith('2') || (path === '/v1/stream' && code === '101')),
      `${method} ${path}`,
    ).toBe(true);
    expect(operation.responses['400']?.content, `${method} ${path}`).toHaveProperty([
      'application/problem+json',
    ]);
    expect(operation.responses['500'], `${method} ${path}`).toBeDefined();
  }
  expect(Object.keys(spec.paths['/v1/orders'].post.responses)).toContain('202');
  expect(Object.keys(spec.paths['/health/ready'].get.responses)).toEqual(['200', '503']);
  expect(Object.keys(spec.paths['/v1/auth/register'].post.responses)).toEqual(
    expect.arrayContaining(['201', '429']),
  );
  // An order's account may not exist: 404 ACCOUNT_NOT_FOUND.
  expect(Object.keys(spec.paths['/v1/orders'].post.responses)).toContain('404');
  expect(Object.keys(spec.paths['/v1/accounts/{id}/wallet'].get.responses)).toEqual(
    expect.arrayContaining(['200', '401', '403', '404']),
  );
  // Every POST that creates takes an Idempotency-Key, and says so.
  for (const path of [
    '/v1/auth/register',
    '/v1/accounts/{id}/deposits',
    '/v1/orders',
    '/v1/admin/instruments',
  ]) {
    const headers = (spec.paths[path].post.parameters as Array<{ in: string; name: string }>).filter(
      (parameter) => parameter.in === 'header',
    );
    expect(
      headers.map((header) => header.name),
      path,
    ).toContain('idempotency-key');
  }
});

/** The API table of the architecture page (shared/design/ARCHITECTURE.md, "HTTP API (v1)"), and the stream of docs/api.md. */
const ARCHITECTURE_ROUTES = [
  'POST /v1/auth/register',
  'POST /v1/auth/login',
  'POST /v1/accounts/{id}/deposits',
  'POST /v1/accounts/{id}/withdrawals',
  'POST /v1/accounts/{id}/custody-transfers',
  'GET /v1/accounts/{id}/wallet',
  'POST /v1/orders',
  'DELETE /v1/orders/{id}',
  'GET /v1/orders/{id}',
  'GET /v1/orders',
  'GET /v1/trades',
  'GET /v1/market/{symbol}/book',
  'GET /v1/market/{symbol}/quote',
  'GET /v1/market/{symbol}/candles',
  'GET /v1/audit/streams/{streamId}',
  'GET /v1/audit/streams/{streamId}/state',
  'GET /v1/audit/trace/{correlationId}',
  'GET /v1/admin/projections',
  'POST /v1/admin/projections/{name}/rebuild',
  'GET /health/live',
  'GET /health/ready',
  'GET /metrics',
  'GET /v1/stream',
];

it('lists every route of the architecture’s API table, the WebSocket stream included', async () => {
  const spec = (await api.app.inject({ method: 'GET', url: '/docs/json' })).json();
  const listed = Object.entries(spec.paths as Record<string, object>).flatMap(([path, methods]) =>
    Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`),
  );
  expect(ARCHITECTURE_ROUTES.filter((route) => !listed.includes(route))).toEqual([]);
});

it('documents the stream as a WebSocket upgrade: its token, query, upgrade header and 101', async () => {
  const spec = (await api.app.inject({ method: 'GET', url: '/docs/json' })).json();
  const stream = spec.paths['/v1/stream'].get;
  expect(stream.security).toEqual([{ bearerAuth: [] }]);
  const parameters = stream.parameters as Array<{
    in: string;
    name: string;
    required?: boolean;
    description?: string;
  }>;
  expect(parameters.find((parameter) => parameter.name === 'symbols')?.description).toContain('tickers');
  expect(
    parameters.filter((parameter) => parameter.in === 'query').map((parameter) => parameter.name),
  ).toEqual(expect.arrayContaining(['symbols', 'access_token']));
  expect(parameters).toContainEqual(
    expect.objectContaining({
      in: 'header',
      name: 'upgrade',
      required: true,
      schema: { type: 'string', enum: ['websocket'] },
    }),
  );
  expect(stream.responses['101']).toEqual({ description: expect.stringContaining('Switching Protocols') });
  expect(Object.keys(stream.responses)).toEqual(['101', '400', '401', '403', '426', '500']);
  expect(stream.responses['426'].content).toHaveProperty(['application/problem+json']);
  expect(stream.responses['401'].content).toHaveProperty(['application/problem+json']);
});

it('describes the main answers with their fields, not as any object', async () => {
  const spec = (await api.app.inject({ method: 'GET', url: '/docs/json' })).json();
  const answer = (path: string, method: string, status: string) =>
    spec.paths[path][method].responses[status].content['application/json'].schema as {
      properties: Record<string, { type?: unknown; enum?: unknown; items?: { properties: object } }>;
      required: string[];
    };
  const login = answer('/v1/auth/login', 'post', '200');
  expect(login.required).toEqual(
    expect.arrayContaining(['token', 'tokenType', 'expiresAt', 'accountId', 'roles']),
  );
  const order = answer('/v1/orders/{id}', 'get', '200');
  expect(order.properties.status?.enum).toEqual([
    'PENDING_NEW',
    'NEW',
    'PARTIALLY_FILLED',
    'FILLED',
    'CANCELED',
    'REJECTED',
    'EXPIRED',
  ]);
  expect(Object.keys(order.properties.executions?.items?.properties ?? {})).toContain('executionId');
  expect(Object.keys(answer('/v1/accounts/{id}/wallet', 'get', '200').properties)).toEqual(
    expect.arrayContaining(['accountId', 'cash', 'positions']),
  );
  expect(Object.keys(answer('/v1/accounts/{id}/deposits', 'post', '201').properties)).toContain('version');
  expect(Object.keys(answer('/v1/trades', 'get', '200').properties)).toEqual(['items', 'nextCursor']);
  expect(answer('/v1/orders', 'post', '202').required).toEqual(['orderId', 'status']);
  // Open to fields an answer may gain: a client should not break on them.
  expect(JSON.stringify(spec.paths['/v1/orders/{id}'].get.responses['200'])).not.toContain(
    'additionalProperties',
  );
});

it('offers the candle intervals the read model projects, in the document and in the docs', async () => {
  const spec = (await api.app.inject({ method: 'GET', url: '/docs/json' })).json();
  const interval = (
    spec.paths['/v1/market/{symbol}/candles'].get.parameters as Array<{
      name: string;
      schema: { enum: string[]; default: string };
    }>
  ).find((parameter) => parameter.name === 'interval');
  expect(interval?.schema).toMatchObject({ enum: CANDLE_INTERVAL_NAMES, default: DEFAULT_CANDLE_INTERVAL });
  const doc = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');
  const candlesRow = doc('docs/api.md')
    .split('\n')
    .find((line) => line.startsWith('| `GET /v1/market/{symbol}/candles`'));
  expect(candlesRow).toContain(
    `\`${CANDLE_INTERVAL_NAMES.join(' ')}\`, default \`${DEFAULT_CANDLE_INTERVAL}\``,
  );
  expect(doc('docs/read-models.md')).toContain(
    `interval (${CANDLE_INTERVAL_NAMES.map((name) => `\`${name}\``).join(', ')}:`,
  );
});
