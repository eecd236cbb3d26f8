import { jsonSchemaTransform } from 'fastify-type-provider-zod';
import { ANSWERS, answerSchema } from './answers.ts';

/**
 * What the OpenAPI document says each route answers: its success, and the problems
 * (application/problem+json) it can give. Documentation only: answers are not serialized through
 * these. The main answers have a schema (`answers.ts`), the others are described in words.
 */

/** Successes other than 200, by route. */
const SUCCESS: Record<string, [status: number, description: string]> = {
  'POST /v1/auth/register': [201, 'The account was created: {accountId}'],
  'POST /v1/accounts/{id}/deposits': [201, 'The wallet after the deposit'],
  'POST /v1/accounts/{id}/withdrawals': [201, 'The wallet after the withdrawal'],
  'POST /v1/accounts/{id}/custody-transfers': [201, 'The wallet after the transfer'],
  'POST /v1/orders': [202, 'Taken: {orderId, status: "PENDING_NEW"}; follow it with GET /v1/orders/{id}'],
  'DELETE /v1/orders/{id}': [
    202,
    'The cancel is asked of B3: {orderId, status, cancelRequested}; an order canceled already answers 200 with status CANCELED and changes nothing',
  ],
  'POST /v1/admin/projections/{name}/rebuild': [
    202,
    'The rebuild started: {projection, status: "REBUILDING"}',
  ],
  'POST /v1/admin/instruments': [201, 'The instrument was listed'],
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

/** The problems a route can give, from what it takes: a token, a body, a path. */
function problemsOf(method: string, url: string, schema: Record<string, unknown>): number[] {
  const secured = Array.isArray(schema.security) && schema.security.length > 0;
  const statuses = [400];
  if (secured) statuses.push(401, 403);
  // An order's body names its account, which may not exist (an admin placing for another).
  if (url.includes('{') || method === 'GET' || url === '/v1/orders') statuses.push(404);
  if (url.includes('{')) statuses.push(414);
  if (method !== 'GET') statuses.push(409, 413, 415, 422);
  if (url === '/v1/auth/login') statuses.push(401, 429);
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
    'Send `Authorization: Bearer …`, or, where a browser cannot set headers, the token as `access_token`. After a `{"channel":"hello"}` message, JSON messages: `{channel:"trade", symbol, tradeId, price, quantity, aggressorSide, at}` for the symbols asked for, `{channel:"book", symbol, event, sequence}` for each event of a book (a `TradingHalted` with its `reason`: an admin\'s halt or resume reaches both books of the instrument, each telling its subscribers once), `{channel:"order", orderId, accountId, event, …}` for the caller\'s own orders (every order for an admin). On shutdown the server closes the stream with 1001 (going away). See docs/api.md.';
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
  };
  for (const code of [400, 401, 403, 426, 500])
    response[code] = {
      description: descriptions[code] ?? PROBLEMS[code],
      content: { 'application/problem+json': { schema: problem } },
    };
  schema.response = response;
}

type TransformInput = Parameters<typeof jsonSchemaTransform>[0];

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
  const method = [input.route.method].flat()[0]?.toUpperCase() ?? 'GET';
  if (schema && output.url === '/health/ready')
    schema.response = {
      200: { description: 'Every dependency answers', type: 'object' },
      503: { description: 'A dependency does not answer: the body names it', type: 'object' },
    };
  if (!schema || schema.hide || !output.url.startsWith('/v1/')) return output;
  // The document names path parameters `{id}`; fastify routes write `:id`.
  const url = output.url.replace(/:(\w+)/g, '{$1}');
  const route = `${method} ${url}`;
  // A route that declares its answer's schema keeps it.
  const declared = (schema.response ?? {}) as Record<string, unknown>;
  const [status, description] = SUCCESS[route] ?? [200, 'The answer'];
  const answer = ANSWERS[route];
  const response: Record<string, unknown> = {
    [status]: { description, ...(answer ? answerSchema(answer) : { type: 'object' }) },
  };
  for (const code of problemsOf(method, url, schema))
    response[code] = {
      description: PROBLEMS[code],
      content: { 'application/problem+json': { schema: problem } },
    };
  if (CREATES.has(route)) response[409] = keyInProgress;
  schema.response = { ...response, ...declared };
  if (CREATES.has(route)) {
    const headers = (schema.headers ?? { type: 'object', properties: {} }) as {
      properties: Record<string, unknown>;
    };
    headers.properties['idempotency-key'] = idempotencyKey;
    schema.headers = headers;
  }
  return output;
}
