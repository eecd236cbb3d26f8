import type { SwaggerTransformObject } from '@fastify/swagger';
import { jsonSchemaTransform } from 'fastify-type-provider-zod';
import { ZodType } from 'zod';
import { ANSWERS, answerSchema } from './answers.ts';

/**
 * What the OpenAPI document says each route answers: its success, and the problems
 * (application/problem+json) it can give. Documentation only: answers are not serialized through
 * these. The main answers have a schema (`answers.ts`), the others are described in words.
 */

/** Each route's successes, by status, where they are not a single 200 "The answer". */
const SUCCESS: Record<string, Record<number, string>> = {
  'POST /v1/auth/register': { 201: 'The account was created: {accountId}' },
  'POST /v1/accounts/{id}/deposits': { 201: 'The wallet after the deposit' },
  'POST /v1/accounts/{id}/withdrawals': { 201: 'The wallet after the withdrawal' },
  'POST /v1/accounts/{id}/custody-transfers': { 201: 'The wallet after the transfer' },
  'POST /v1/orders': {
    202: 'Taken: {orderId, status: "PENDING_NEW"}; follow it with GET /v1/orders/{id}',
  },
  'DELETE /v1/orders/{id}': {
    202: 'The cancel is asked of B3: {orderId, status, cancelRequested: true}',
    200: 'The order was canceled already: {orderId, status: "CANCELED", cancelRequested: true}; nothing changes',
  },
  'GET /v1/audit/trace/{correlationId}': {
    200: 'The events of the request, in order: {correlationId, events, nextCursor?}',
  },
  'POST /v1/admin/projections/{name}/rebuild': {
    202: 'The rebuild started: {projection, status: "REBUILDING"}',
  },
  'POST /v1/admin/instruments': { 201: 'The instrument was listed' },
};

/** The POSTs that create, and so take an `Idempotency-Key` (see docs/api.md). */
const CREATES = new Set([
  'POST /v1/auth/register',
  'POST /v1/accounts/{id}/deposits',
  'POST /v1/accounts/{id}/withdrawals',
  'POST /v1/accounts/{id}/custody-transfers',
  'POST /v1/orders',
  'POST /v1/admin/instruments',
]);

const PROBLEMS: Record<number, string> = {
  400: 'The request does not match its schema (errors lists the fields), or a bad cursor or key',
  401: 'No valid bearer token',
  403: 'The token may not do this',
  404: 'No such resource',
  409: 'A conflict: taken, already listed, or a key still in progress',
  413: 'The body is over 16 KiB',
  414: 'A path parameter is over 300 characters',
  415: 'The body is not JSON, or has a Content-Encoding other than identity (send it uncompressed)',
  422: 'A business rule refused the command (reason and details say which), or a key reused with another request',
  429: 'Too many attempts; retry after the time given',
  500: 'Failed on our side; logged under the correlation id',
  503: 'A dependency or read side is not available, or the server is shutting down',
};

const problem = {
  type: 'object',
  required: ['type', 'title', 'status', 'reason'],
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    status: { type: 'integer' },
    reason: { type: 'string', description: 'Stable: switch on it' },
    detail: { type: 'string' },
    errors: {
      type: 'array',
      items: {
        type: 'object',
        properties: { field: { type: 'string' }, message: { type: 'string' } },
      },
    },
    details: { type: 'object' },
    instance: { type: 'string' },
    correlationId: { type: 'string' },
  },
};

const idempotencyKey = {
  type: 'string',
  pattern: '^[A-Za-z0-9_.:-]{1,100}$',
  description:
    'The same key and body answer the first answer again and create nothing; the same key with another body is 422; while the first request with the key runs, 409 IDEMPOTENCY_KEY_IN_PROGRESS with retry-after. A request that crashed holds the key 30 s, then a retry runs it again and answers what it created, or creates it, once',
};

/** A create's 409: a key in progress says when to retry. */
const keyInProgress = {
  description:
    'A conflict: taken, already listed, or IDEMPOTENCY_KEY_IN_PROGRESS (the first request with the key is still running, or crashed within 30 s of claiming it: retry after retry-after seconds)',
  headers: {
    'retry-after': {
      type: 'integer',
      minimum: 1,
      description: 'With IDEMPOTENCY_KEY_IN_PROGRESS: seconds to wait before retrying',
    },
  },
  content: { 'application/problem+json': { schema: problem } },
};

/** What a problem means on a route where it means something else than in `PROBLEMS`. */
const ROUTE_PROBLEMS: Record<string, Record<number, string>> = {
  'POST /v1/auth/login': {
    401: 'INVALID_CREDENTIALS: unknown username or wrong password',
    403: 'ACCOUNT_DISABLED: the account is disabled',
  },
  'POST /v1/accounts/{id}/password': {
    403: 'WRONG_PASSWORD: the current password is wrong; NOT_YOUR_ACCOUNT: another account, and not an admin',
    409: "ADMIN_PASSWORD_FROM_CONFIG: the built-in admin's password is its configuration's",
  },
  'POST /v1/admin/accounts/{id}/disable': {
    409: 'BUILT_IN_ADMIN or OWN_ACCOUNT: that account may not be disabled',
  },
  'DELETE /v1/admin/accounts/{id}/roles/{role}': {
    409: 'BUILT_IN_ADMIN or OWN_ACCOUNT: that account keeps its admin role',
  },
};

/** A create's success: whether it is a replay, and, where one is made, where the new thing is read. */
const REPLAYED = {
  'idempotent-replayed': {
    type: 'string',
    enum: ['true'],
    description: 'Present on an answer replayed for a repeated Idempotency-Key: nothing new was created',
  },
};
const LOCATED = new Set(['POST /v1/auth/register', 'POST /v1/orders']);
const LOCATION = { location: { type: 'string', description: 'Where the new account or order is read' } };

/** The seconds a rate-limited or unavailable answer says to wait. */
const RETRY_AFTER = {
  'retry-after': { type: 'integer', minimum: 1, description: 'Where given: seconds to wait before retrying' },
};

/** The problems a route can give, from what it takes: a token, a body, a path. */
function problemsOf(method: string, url: string, schema: Record<string, unknown>): number[] {
  const secured = Array.isArray(schema.security) && schema.security.length > 0;
  const statuses = [400];
  // Any caller may ask who it is: `me` has no role to lack and nothing to find.
  const me = url === '/v1/auth/me';
  if (secured) statuses.push(...(me ? [401] : [401, 403]));
  // An order's body names its account, which may not exist (an admin placing for another).
  if (!me && (url.includes('{') || method === 'GET' || url === '/v1/orders')) statuses.push(404);
  if (url.includes('{')) statuses.push(414);
  if (method !== 'GET') statuses.push(413, 415);
  // Logging in changes nothing: nothing to conflict with, no rule to refuse.
  if (method !== 'GET' && url !== '/v1/auth/login') statuses.push(409, 422);
  if (url === '/v1/auth/login' || url === '/v1/accounts/{id}/password') statuses.push(401, 403, 429);
  if (url === '/v1/auth/register') statuses.push(429);
  statuses.push(500, 503);
  return [...new Set(statuses)].sort((a, b) => a - b);
}

/**
 * `GET /v1/stream`: a WebSocket upgrade. @fastify/websocket hides its routes from the document;
 * this one is part of the API, so it is shown, with the upgrade it needs and what it answers.
 */
function documentUpgrade(schema: Record<string, unknown>): void {
  schema.security = [{ bearerAuth: [] }];
  schema.description =
    'Send `Authorization: Bearer …`, or, where a browser cannot set headers, the token as `access_token`. After a `{"channel":"hello"}` message, JSON messages: `{channel:"trade", symbol, tradeId, price, quantity, aggressorSide, at}` for the symbols asked for, `{channel:"book", symbol, event, sequence}` for each event of a book (a `TradingHalted` with its `reason`: an admin\'s halt or resume reaches both books of the instrument, each telling its subscribers once), `{channel:"order", orderId, accountId, event, …}` for the caller\'s own orders (every order for an admin). On shutdown the server closes the stream with 1001 (going away); when the token expires, the account is disabled or loses the trader and admin roles, with 1008 (policy violation), and when its password changes after the token was issued. An account may hold 64 streams at once (429 TOO_MANY_STREAMS). See docs/api.md.';
  schema.headers = {
    type: 'object',
    properties: {
      upgrade: { type: 'string', enum: ['websocket'] },
      connection: { type: 'string', example: 'Upgrade' },
    },
    required: ['upgrade', 'connection'],
  };
  const response: Record<string, unknown> = {
    // `type: 'null'`: no body (the swagger plugin then lists no content).
    101: { description: 'Switching Protocols: the WebSocket is open', type: 'null' },
  };
  const descriptions: Record<number, string> = {
    400: 'A symbol that is not a B3 ticker (VALIDATION_FAILED) or not listed (INSTRUMENT_NOT_FOUND), or an unknown query parameter',
    426: 'Upgrade Required (UPGRADE_REQUIRED): a plain GET, without `Upgrade: websocket`; the answer carries `Upgrade: websocket`',
    429: 'TOO_MANY_STREAMS: the account holds 64 streams already; close one first',
  };
  for (const code of [400, 401, 403, 426, 429, 500])
    response[code] = {
      description: descriptions[code] ?? PROBLEMS[code],
      content: { 'application/problem+json': { schema: problem } },
    };
  schema.response = response;
}

type TransformInput = Parameters<typeof jsonSchemaTransform>[0];

/**
 * Marks an operation whose body may be left out: @fastify/swagger writes `requestBody.required: true`
 * for every route with a body schema, and `documentRequestBodies` puts that right.
 */
const OPTIONAL_BODY = 'x-tradecore-optional-body';

/** `jsonSchemaTransform`, then each route's answers and, on a create, its `Idempotency-Key`. */
export function documentAnswers(input: TransformInput): ReturnType<typeof jsonSchemaTransform> {
  const upgrade = (input.route as { websocket?: boolean }).websocket === true && input.schema !== undefined;
  const output = jsonSchemaTransform(
    upgrade ? { ...input, schema: { ...input.schema, hide: false } } : input,
  );
  const schema = output.schema as Record<string, unknown> | undefined;
  if (upgrade && schema) {
    documentUpgrade(schema);
    return output;
  }
  if (schema) {
    // A body schema that takes no body (`NoBody`: cancel, resume, rebuild, revoke) does not require one.
    const body = input.schema?.body;
    if (body instanceof ZodType && body.safeParse(undefined).success) schema[OPTIONAL_BODY] = true;
    // Query numbers arrive as text, and their defaults are the text they stand for (schemas.ts,
    // `queryInteger`): the document, which types them as integers, gives the number.
    numberDefaults(schema.querystring);
  }
  const method = [input.route.method].flat()[0]?.toUpperCase() ?? 'GET';
  // Once a stop begins, every request on an open connection is refused (problem-answers.ts).
  const shuttingDown = {
    description: 'SHUTTING_DOWN: the server is stopping (with connection: close); ask another instance',
    content: { 'application/problem+json': { schema: problem } },
  };
  if (schema && output.url === '/metrics')
    schema.response = {
      200: {
        description: 'Prometheus text: every metric the process registers',
        content: { 'text/plain': { schema: { type: 'string' } } },
      },
      503: shuttingDown,
    };
  if (schema && output.url === '/health/live')
    schema.response = {
      200: { description: 'The process is up: {status: "ok"}', type: 'object' },
      503: shuttingDown,
    };
  if (schema && output.url === '/health/ready')
    schema.response = {
      200: { description: 'Every dependency answers', type: 'object' },
      503: {
        description:
          'A dependency does not answer (the body names it), or SHUTTING_DOWN (a problem): the server is stopping',
        type: 'object',
      },
    };
  if (!schema || schema.hide || !output.url.startsWith('/v1/')) return output;
  // The document names path parameters `{id}`; fastify routes write `:id`.
  const url = output.url.replace(/:(\w+)/g, '{$1}');
  const route = `${method} ${url}`;
  // A route that declares its answer's schema keeps it, with the description of its status.
  const declared = (schema.response ?? {}) as Record<string, Record<string, unknown>>;
  const response: Record<string, unknown> = {};
  for (const [status, description] of Object.entries(SUCCESS[route] ?? { 200: 'The answer' })) {
    const answer = ANSWERS[route]?.[Number(status)];
    response[status] = { description, ...(answer ? answerSchema(answer) : { type: 'object' }) };
  }
  for (const code of problemsOf(method, url, schema))
    response[code] = {
      description: ROUTE_PROBLEMS[route]?.[code] ?? PROBLEMS[code],
      ...(code === 429 || code === 503 ? { headers: RETRY_AFTER } : {}),
      content: { 'application/problem+json': { schema: problem } },
    };
  if (CREATES.has(route)) {
    response[409] = keyInProgress;
    for (const status of Object.keys(SUCCESS[route] ?? {}))
      (response[status] as Record<string, unknown>).headers = {
        ...REPLAYED,
        ...(LOCATED.has(route) ? LOCATION : {}),
      };
  }
  for (const [status, answer] of Object.entries(declared))
    response[status] = {
      description: (response[status] as { description?: string } | undefined)?.description,
      ...answer,
    };
  schema.response = response;
  if (CREATES.has(route)) {
    const headers = (schema.headers ?? { type: 'object', properties: {} }) as {
      properties: Record<string, unknown>;
    };
    headers.properties['idempotency-key'] = idempotencyKey;
    schema.headers = headers;
  }
  return output;
}

/** A query's integer parameters with their defaults as numbers (`"50"` → `50`). */
function numberDefaults(querystring: unknown): void {
  const properties = (querystring as { properties?: Record<string, Record<string, unknown>> } | undefined)
    ?.properties;
  for (const parameter of Object.values(properties ?? {}))
    if (parameter.type === 'integer' && typeof parameter.default === 'string')
      parameter.default = Number(parameter.default);
}

/**
 * The whole document, once @fastify/swagger built it: a body `documentAnswers` marked as optional
 * gets `requestBody.required: false` (the plugin writes `true` for every body schema, since fastify
 * asks for one unless the schema takes none, as `NoBody` does).
 */
export const documentRequestBodies: SwaggerTransformObject = (document) => {
  if (!('openapiObject' in document)) return document.swaggerObject;
  for (const methods of Object.values(document.openapiObject.paths ?? {}))
    for (const operation of Object.values(methods ?? {}) as Array<Record<string, unknown>>) {
      if (typeof operation !== 'object' || operation === null || !(OPTIONAL_BODY in operation)) continue;
      delete operation[OPTIONAL_BODY];
      const body = operation.requestBody as { required?: boolean } | undefined;
      if (body) body.required = false;
    }
  return document.openapiObject;
};
