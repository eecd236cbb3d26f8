import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { CANDLE_INTERVAL_NAMES, DEFAULT_CANDLE_INTERVAL } from '../../projections/read-models/candles.ts';
import { ANSWERS } from './answers.ts';
import { NonNegativeDecimal, PositiveDecimal, StandardSymbolParam, Ticker } from './schemas.ts';
import { StreamQuery } from './stream.ts';
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
  // A disabled account's login: 403 ACCOUNT_DISABLED; its 401 is the credentials, not a token.
  const login = spec.paths['/v1/auth/login'].post.responses;
  expect(Object.keys(login)).toEqual(expect.arrayContaining(['200', '401', '403', '429']));
  expect(login['403'].description).toContain('ACCOUNT_DISABLED');
  expect(login['401'].description).toContain('INVALID_CREDENTIALS');
  // Any caller may ask who it is: no role to lack, nothing to find.
  const me = Object.keys(spec.paths['/v1/auth/me'].get.responses);
  expect(me).toContain('401');
  expect(me).not.toContain('403');
  expect(me).not.toContain('404');
  // Logging in changes nothing: no conflict, no business rule.
  expect(Object.keys(login)).not.toContain('409');
  expect(Object.keys(login)).not.toContain('422');
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
  expect(Object.keys(stream.responses)).toEqual(['101', '400', '401', '403', '426', '429', '500']);
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

/** An operation of the document, as the tests below walk it. */
interface Operation {
  route: string;
  parameters?: Array<{ in: string; name: string; schema: JsonSchema }>;
  requestBody?: { required: boolean; content: Record<string, { schema: JsonSchema }> };
  responses: Record<string, { description: string; content?: Record<string, { schema: JsonSchema }> }>;
}
interface JsonSchema {
  type?: string | string[];
  pattern?: string;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  default?: unknown;
  properties?: Record<string, JsonSchema>;
  allOf?: JsonSchema[];
  anyOf?: JsonSchema[];
  items?: JsonSchema;
}

const operationsOf = (spec: { paths: Record<string, Record<string, Omit<Operation, 'route'>>> }) =>
  Object.entries(spec.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, operation]) => ({
      ...operation,
      route: `${method.toUpperCase()} ${path}`,
    })),
  ) as Operation[];

/** Every field a request gives: its parameters, and the top-level properties of its JSON body. */
const fieldsOf = (operation: Operation) => [
  ...(operation.parameters ?? []).map(({ in: where, name, schema }) => ({ where, name, schema })),
  ...Object.entries(operation.requestBody?.content['application/json']?.schema.properties ?? {}).map(
    ([name, schema]) => ({ where: 'body', name, schema }),
  ),
];

/** A schema and every schema inside it. */
const schemasIn = (schema: JsonSchema): JsonSchema[] => [
  schema,
  ...Object.values(schema.properties ?? {}).flatMap(schemasIn),
  ...[...(schema.allOf ?? []), ...(schema.anyOf ?? []), ...(schema.items ? [schema.items] : [])].flatMap(
    schemasIn,
  ),
];

/** The patterns a string must match (`pattern`, and those of `allOf`), as the JavaScript the server runs. */
const patternsOf = (schema: JsonSchema) =>
  [schema.pattern, ...(schema.allOf ?? []).map((part) => part.pattern)]
    .filter((pattern) => pattern !== undefined)
    .map((pattern) => new RegExp(pattern, 'u'));

/** Whether the document lets `text` through as the value of a string field of `schema`. */
const documentTakes = (schema: JsonSchema, text: string) =>
  text.length <= (schema.maxLength ?? Number.POSITIVE_INFINITY) &&
  patternsOf(schema).every((pattern) => pattern.test(text));

/** The no-body commands of docs/api.md: "cancel, resume, rebuild, revoke" take no body or `{}`. */
const NO_BODY_ROUTES = [
  'DELETE /v1/orders/{id}',
  'POST /v1/admin/instruments/{symbol}/resume',
  'POST /v1/admin/projections/{name}/rebuild',
  'DELETE /v1/admin/accounts/{id}/roles/{role}',
];

/** Money fields that take zero: a cost can be nothing (docs/api.md, custody transfers). */
const ZERO_ALLOWED = new Set(['unitCost']);

describe('what the document says a route takes and answers, the server does', () => {
  let spec: Parameters<typeof operationsOf>[0];
  beforeAll(async () => {
    spec = (await api.app.inject({ method: 'GET', url: '/docs/json' })).json();
  });
  const operation = (route: string) => {
    const found = operationsOf(spec).find((candidate) => candidate.route === route);
    if (!found) throw new Error(`no ${route} in the document`);
    return found;
  };
  const field = (route: string, name: string) => {
    const found = fieldsOf(operation(route)).find((candidate) => candidate.name === name);
    if (!found) throw new Error(`no ${name} in ${route}`);
    return found.schema;
  };

  it('lists both answers of a cancel: 202 asked of B3, and 200 for an order canceled already', () => {
    const { responses } = operation('DELETE /v1/orders/{id}');
    const body = (status: string) => responses[status]?.content?.['application/json']?.schema;
    expect(body('202')).toMatchObject({
      required: ['orderId', 'status', 'cancelRequested'],
      properties: { status: { enum: ['PENDING_NEW', 'NEW', 'PARTIALLY_FILLED'] } },
    });
    expect(body('200')).toMatchObject({
      required: ['orderId', 'status', 'cancelRequested'],
      properties: { status: { enum: ['CANCELED'] }, cancelRequested: { enum: [true] } },
    });
    expect(responses['200']?.description).toContain('canceled already');
  });

  it('says a command that takes no body or {} does not require one', () => {
    for (const route of NO_BODY_ROUTES) expect(operation(route).requestBody?.required, route).toBe(false);
    expect(operation('POST /v1/orders').requestBody?.required).toBe(true);
    expect(operation('POST /v1/admin/instruments/{symbol}/halt').requestBody?.required).toBe(true);
  });

  it('gives every symbol the pattern of a B3 ticker, as the server checks it', () => {
    const samples = [
      'PETR4',
      'PETR4F',
      'BPAC11',
      'BPAC11F',
      'B3SA3',
      'petr4',
      'PETR',
      'PETR4FF',
      '4ETR4',
      '',
    ];
    const agrees = (schema: JsonSchema, server: z.ZodType, where: string) => {
      for (const sample of samples)
        expect(documentTakes(schema, sample), `${where}: ${sample}`).toBe(server.safeParse(sample).success);
    };
    agrees(field('POST /v1/orders', 'symbol'), Ticker, 'order');
    agrees(field('GET /v1/orders', 'symbol'), Ticker, 'orders');
    agrees(field('GET /v1/trades', 'symbol'), Ticker, 'trades');
    agrees(field('GET /v1/market/{symbol}/book', 'symbol'), Ticker, 'book');
    agrees(field('POST /v1/accounts/{id}/custody-transfers', 'symbol'), Ticker, 'custody');
    agrees(field('POST /v1/admin/instruments', 'symbol'), StandardSymbolParam, 'listing');
    agrees(field('POST /v1/admin/instruments/{symbol}/halt', 'symbol'), StandardSymbolParam, 'halt');
  });

  it("gives the stream's symbols the pattern of a list of tickers, as the server checks it", () => {
    const symbols = field('GET /v1/stream', 'symbols');
    expect(symbols.pattern).toBeDefined();
    const takes = (text: string) => StreamQuery.safeParse({ symbols: text }).success;
    for (const sample of [
      'PETR4',
      'PETR4,VALE3F,BPAC11',
      'PETR4,',
      'PETR4,,VALE3',
      '',
      'petr4',
      'PETR4,X',
      'PETR4 VALE3',
    ])
      expect(documentTakes(symbols, sample), sample).toBe(takes(sample));
    expect(takes('PETR4,VALE3') && !takes('PETR4;VALE3')).toBe(true);
  });

  it('gives every amount and price the pattern the server checks: above zero, or from zero for a cost', () => {
    const samples = [
      '0',
      '0.00',
      '00.00',
      '0.0',
      '0.01',
      '0.10',
      '00.5',
      '1',
      '32.50',
      '1.234',
      '-1',
      '1e5',
      '.5',
    ];
    const agrees = (schema: JsonSchema, server: z.ZodType, where: string) => {
      for (const sample of samples)
        expect(documentTakes(schema, sample), `${where}: ${sample}`).toBe(server.safeParse(sample).success);
    };
    agrees(field('POST /v1/orders', 'price'), PositiveDecimal, 'price');
    agrees(field('POST /v1/orders', 'stopPrice'), PositiveDecimal, 'stopPrice');
    agrees(field('POST /v1/accounts/{id}/deposits', 'amount'), PositiveDecimal, 'amount');
    agrees(field('POST /v1/admin/instruments', 'tickSize'), PositiveDecimal, 'tickSize');
    agrees(field('POST /v1/accounts/{id}/custody-transfers', 'unitCost'), NonNegativeDecimal, 'unitCost');
    // The largest amount kept exactly, which no pattern can say, in words.
    for (const [route, name] of [
      ['POST /v1/orders', 'price'],
      ['POST /v1/accounts/{id}/deposits', 'amount'],
      ['POST /v1/accounts/{id}/custody-transfers', 'unitCost'],
    ] as const)
      expect(JSON.stringify(field(route, name)), `${route} ${name}`).toContain(
        'at most \\"90071992547409.91\\"',
      );
  });

  it('gives the query numbers their defaults as numbers', () => {
    expect(field('GET /v1/orders', 'limit')).toMatchObject({ type: 'integer', default: 50 });
    expect(field('GET /v1/market/{symbol}/book', 'depth')).toMatchObject({ type: 'integer', default: 10 });
    expect(field('GET /v1/audit/streams/{streamId}', 'from')).toMatchObject({ type: 'integer', default: 0 });
    expect(field('GET /v1/audit/streams/{streamId}', 'limit')).toMatchObject({
      type: 'integer',
      default: 100,
    });
  });

  it('describes the answers of the audit trace and of liveness', () => {
    expect(operation('GET /v1/audit/trace/{correlationId}').responses['200']?.description).toContain(
      'correlationId',
    );
    expect(operation('GET /health/live').responses['200']?.description).toContain('The process is up');
    expect(operation('GET /metrics').responses['200']?.content).toHaveProperty(['text/plain']);
  });

  // The invariants behind the checks above, over every route, so that a new one cannot drift either.
  it('holds on every route: descriptions, bodies required or not, number defaults, tickers, amounts', () => {
    const operations = operationsOf(spec);
    const optionalBodies: string[] = [];
    for (const { route, parameters, requestBody, responses } of operations) {
      for (const [status, response] of Object.entries(responses))
        expect(response.description, `${route} ${status}`).not.toBe('Default Response');
      if (requestBody) {
        // A body schema that takes null (no body, or `{}`) is not required; any other is.
        const schema = requestBody.content['application/json']?.schema ?? {};
        const takesNone = (schema.anyOf ?? []).some((part) => part.type === 'null');
        expect(requestBody.required, route).toBe(!takesNone);
        if (takesNone) optionalBodies.push(route);
      }
      for (const { where, name, schema } of fieldsOf({ route, parameters, requestBody, responses })) {
        const at = `${route} ${where}.${name}`;
        for (const inner of schemasIn(schema)) {
          for (const pattern of [inner.pattern, ...(inner.allOf ?? []).map((part) => part.pattern)])
            if (pattern !== undefined) expect(() => new RegExp(pattern, 'u'), at).not.toThrow();
          if (inner.type === 'integer' && 'default' in inner) {
            expect(Number.isInteger(inner.default), `${at} default ${JSON.stringify(inner.default)}`).toBe(
              true,
            );
            expect(inner.default as number, at).toBeGreaterThanOrEqual(inner.minimum ?? 0);
            expect(inner.default as number, at).toBeLessThanOrEqual(inner.maximum ?? Number.MAX_SAFE_INTEGER);
          }
        }
        if (name === 'symbol') {
          expect(patternsOf(schema).length, `${at}: a pattern`).toBeGreaterThan(0);
          for (const refused of ['petr4', 'PETR', 'PETR4FF', 'PETR4 '])
            expect(documentTakes(schema, refused), `${at}: ${refused}`).toBe(false);
          expect(documentTakes(schema, 'PETR4'), `${at}: PETR4`).toBe(true);
        }
        // An amount of money: a decimal string the document checks. Above zero, but for a cost.
        if (schema.type === 'string' && documentTakes(schema, '32.50') && !documentTakes(schema, '1.234')) {
          for (const zero of ['0', '0.00'])
            expect(documentTakes(schema, zero), `${at}: ${zero}`).toBe(ZERO_ALLOWED.has(name));
          expect(documentTakes(schema, '0.01'), `${at}: 0.01`).toBe(true);
        }
      }
    }
    expect(optionalBodies.sort()).toEqual([...NO_BODY_ROUTES].sort());
    // The answers with a schema (answers.ts) are in the document with their fields, at their status.
    for (const [route, statuses] of Object.entries(ANSWERS))
      for (const status of Object.keys(statuses)) {
        const schema = operation(route).responses[status]?.content?.['application/json']?.schema;
        expect(schema?.properties, `${route} ${status}`).toBeDefined();
      }
  });
});
