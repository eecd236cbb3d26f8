import { randomUUID } from 'node:crypto';
import { type IncomingMessage, type ServerOptions, type ServerResponse, STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type {
  FastifyBaseLogger,
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
  FastifyServerOptions,
} from 'fastify';
import { serializerCompiler } from 'fastify-type-provider-zod';
import FindMyWay from 'find-my-way';
import { z } from 'zod';
import { ApiProblem, PROBLEM_CONTENT_TYPE, problem, sendProblem, toProblem } from './problem.ts';
import { redactUrl } from './redact.ts';
import { CORRELATION_ID } from './schemas.ts';
import { validatorCompiler } from './validation.ts';

/**
 * How a tradecore HTTP server answers what goes wrong, the same on the API and on a service's own
 * port (ops-server): every error a problem+json with its `instance` and `correlationId`, the
 * answer's `x-correlation-id`, fastify's and Node's own refusals (no route, bad JSON, an unknown
 * media type, a body too large, headers not HTTP) under the reasons docs/api.md lists, and bodies
 * checked by their zod schemas.
 */

function correlationIdOf(offered: unknown): string {
  return typeof offered === 'string' && CORRELATION_ID.test(offered) ? offered : randomUUID();
}

const NO_QUERY = z.strictObject({});

/** The longest path parameter the router takes (an id, a stream id, a symbol); longer answers 414. */
export const MAX_PARAM_LENGTH = 300;

/**
 * How long a request may take to arrive, headers and body (bodies are 16 KiB at most): one that
 * trickles in (a slowloris) answers `408 REQUEST_TIMEOUT` then, instead of holding its connection
 * for good. Node looks at open requests every `REQUEST_CHECK_EVERY_MS`.
 */
export const REQUEST_TIMEOUT_MS = 30_000;
const REQUEST_CHECK_EVERY_MS = 5_000;

/**
 * The options of `Fastify()` that answer with problems, log URLs redacted and time out requests
 * that do not arrive: give them to every tradecore server, with its logger.
 */
export function problemServerOptions(
  logger: FastifyBaseLogger,
  timing: { requestTimeoutMs?: number } = {},
): Pick<
  FastifyServerOptions,
  | 'loggerInstance'
  | 'requestTimeout'
  | 'genReqId'
  | 'childLoggerFactory'
  | 'routerOptions'
  | 'frameworkErrors'
  | 'clientErrorHandler'
> & { http: ServerOptions } {
  const requestTimeout = timing.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
  return {
    loggerInstance: redactingLogger(logger),
    requestTimeout,
    // Node enforces `requestTimeout` only while `headersTimeout` (60 s by default) is no longer.
    http: {
      headersTimeout: requestTimeout,
      connectionsCheckingInterval: Math.min(REQUEST_CHECK_EVERY_MS, requestTimeout),
      // Node answers a missing Host with an empty 400 of its own: `answerWithProblems` refuses it.
      requireHostHeader: false,
    },
    genReqId: () => randomUUID(),
    // The request's logger is made before any hook runs: decide the correlation id here, so that
    // even the "incoming request" line carries it.
    childLoggerFactory: (logger, bindings, options, rawRequest) => {
      const offered = rawRequest.headers['x-correlation-id'];
      const correlationId = correlationIdOf(offered);
      (rawRequest as { correlationId?: string }).correlationId = correlationId;
      // A caller's id that was not taken is kept in its log lines (cut short), so that a trace by it
      // that finds nothing can be explained.
      const refused =
        offered !== undefined && offered !== correlationId
          ? { refusedCorrelationId: String(offered).slice(0, 200) }
          : {};
      return logger.child({ ...bindings, correlationId, ...refused }, options);
    },
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    // The router's own refusals (a path parameter over MAX_PARAM_LENGTH, bad percent-encoding) and
    // what the HTTP parser refuses before there is a request (headers over 16 KiB, not HTTP) are
    // problems like every other error, not fastify's own JSON.
    frameworkErrors: (error, request, reply) => {
      identify(request, reply);
      const body = toProblem(error, request.url);
      request.log.info({ reason: body.reason, status: body.status }, 'request refused');
      return sendProblem(request, reply, body);
    },
    clientErrorHandler: answerClientError,
  };
}

/**
 * A server's logger: fastify's request serializer, but with credentials in the URL redacted (the
 * `incoming request` line logs `req.url`, which may hold an `access_token`). A logger given
 * serializers keeps them over fastify's.
 */
function redactingLogger(logger: FastifyBaseLogger): FastifyBaseLogger {
  return logger.child(
    {},
    {
      serializers: {
        req: (request: FastifyRequest) => ({
          method: request.method,
          url: redactUrl(request.url),
          host: request.host,
          remoteAddress: request.ip,
          remotePort: request.socket?.remotePort,
        }),
      },
    },
  );
}

/**
 * On a server made with `problemServerOptions()`: JSON bodies only, zod schemas, and every error
 * (thrown, fastify's, no route) answered as a problem. `identify` runs first on every request.
 */
export function answerWithProblems(app: FastifyInstance): void {
  // Bodies are JSON or nothing: text/plain answers 415 like any other type, and an empty body
  // sent as JSON (a DELETE from some clients) counts as none.
  app.removeContentTypeParser('text/plain');
  const json = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const charset = charsetOf(request.headers['content-type']);
    if (charset !== undefined && !/^utf-?8$/i.test(charset))
      return done(
        new ApiProblem(
          415,
          'UNSUPPORTED_MEDIA_TYPE',
          `the Content-Type says charset=${charset}, but JSON is UTF-8 (RFC 8259): send the body as UTF-8, with charset=utf-8 or none`,
        ),
      );
    if (body === '') return done(null, undefined);
    json(request, body as string, (error, parsed) => {
      // The parser refuses a key that would reach a prototype (`__proto__`, `constructor.prototype`)
      // under the same error as JSON that does not parse: say which it was.
      const forbidden = error ? forbiddenKeyOf(body as string) : undefined;
      if (forbidden) return done(forbiddenKeyProblem(forbidden));
      if (error) return done(invalidJsonProblem(body as string));
      // JSON.parse keeps the last of a key given twice: refuse it rather than guess which was meant.
      const duplicate = duplicateKeyOf(body as string);
      if (duplicate) return done(duplicateKeyProblem(duplicate));
      done(null, parsed);
    });
  });
  // Bodies are read as sent: a Content-Encoding this server does not decode would have the coded
  // bytes parsed (or, plain after all, applied) as if there were none.
  app.addHook('preParsing', async (request, reply, payload) => {
    const coding = request.headers['content-encoding'];
    if (coding === undefined || !hasBody(request)) return payload;
    const codings = coding
      .split(',')
      .map((name) => name.trim().toLowerCase())
      .filter((name) => name !== '' && name !== 'identity');
    if (codings.length === 0) return payload;
    // RFC 9110 §15.5.16: say which codings would have been taken.
    reply.header('accept-encoding', 'identity');
    throw new ApiProblem(
      415,
      'UNSUPPORTED_CONTENT_ENCODING',
      `the Content-Encoding header says ${JSON.stringify(coding)}, which this server does not decode: send the body uncompressed, without Content-Encoding`,
    );
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  // Every query is strict: a `/v1/` route with no query of its own takes none (a `?dryRun=true` on
  // a command would be dropped, and the command run).
  app.addHook('onRoute', (route) => {
    if (!route.url.startsWith('/v1/') || route.schema?.querystring !== undefined) return;
    route.schema = { ...route.schema, querystring: NO_QUERY };
  });
  const allowedMethods = methodsByPath(app);

  app.decorateRequest('correlationId', '');
  app.addHook('onRequest', async (request, reply) => {
    identify(request, reply);
    if (request.raw.httpVersion === '1.1' && request.headers.host === undefined)
      throw new ApiProblem(400, 'HOST_REQUIRED', 'an HTTP/1.1 request needs a Host header (RFC 9112)');
  });
  // An `Expect` other than 100-continue: Node would answer an empty 417 of its own.
  app.server.on('checkExpectation', (_request: IncomingMessage, response: ServerResponse) => {
    const { correlationId, body } = earlyRefusal(
      app.log,
      417,
      'EXPECTATION_FAILED',
      'only "Expect: 100-continue" is understood: send the request without it',
    );
    response.writeHead(417, {
      'content-type': PROBLEM_CONTENT_TYPE,
      'content-length': Buffer.byteLength(body),
      'x-correlation-id': correlationId,
    });
    response.end(body);
  });
  // A query parameter holds one value: one given twice (`limit=10&limit=20`) is refused as that,
  // not as whatever its schema makes of the list the query parser gives for it.
  app.addHook('preValidation', async (request) => {
    const query = (request.query ?? {}) as Record<string, unknown>;
    const repeated = Object.keys(query).filter((name) => Array.isArray(query[name]));
    if (repeated.length > 0)
      throw new ApiProblem(400, 'VALIDATION_FAILED', 'the request does not match its schema', {
        errors: repeated.map((name) => ({
          field: `querystring.${name}`,
          message: `is given ${(query[name] as unknown[]).length} times: give it once`,
        })),
      });
  });

  app.setErrorHandler(async (error, request, reply) => {
    const body = toProblem(error, request.url);
    // Only a failure nobody meant (INTERNAL_ERROR) is an error, with its stack; a refusal the code
    // decided on, a 503 included (SHUTTING_DOWN, READ_MODELS_UNAVAILABLE), is a line like any 4xx.
    if (body.reason === 'INTERNAL_ERROR') request.log.error({ err: error }, 'request failed');
    else if (body.reason === 'STORE_UNAVAILABLE') {
      // Not the caller's doing: the operator needs to see which store, and why.
      request.log.warn(
        { reason: body.reason, status: body.status, cause: (error as Error).message },
        'request refused',
      );
      reply.header('retry-after', '5');
    } else request.log.info({ reason: body.reason, status: body.status }, 'request refused');
    if (body.status === 401) reply.header('www-authenticate', 'Bearer');
    if (error instanceof ApiProblem) reply.headers(error.headers);
    return sendProblem(request, reply, body);
  });

  app.setNotFoundHandler(async (request, reply) => {
    const path = request.url.split('?')[0] ?? request.url;
    const allowed = allowedMethods(path);
    if (allowed.length > 0) {
      // RFC 9110 §15.5.6: the path is a resource, the method is not one it takes.
      request.log.info({ reason: 'METHOD_NOT_ALLOWED', status: 405 }, 'request refused');
      reply.header('allow', allowed.join(', '));
      return sendProblem(
        request,
        reply,
        problem(405, 'METHOD_NOT_ALLOWED', `${path} takes ${allowed.join(', ')}, not ${request.method}`, {
          allow: allowed,
        }),
      );
    }
    request.log.info({ reason: 'ROUTE_NOT_FOUND', status: 404 }, 'request refused');
    return sendProblem(request, reply, problem(404, 'ROUTE_NOT_FOUND', `no route ${request.method} ${path}`));
  });
}

/**
 * Records every route `app` gets from now on in a router of its own (find-my-way, the one fastify
 * routes with, so a path matches here exactly when it would there), and answers which methods a
 * path takes: none when no route has the path at all.
 */
function methodsByPath(app: FastifyInstance): (path: string) => string[] {
  const router = FindMyWay({ maxParamLength: MAX_PARAM_LENGTH });
  const methods = new Set<string>();
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) {
      router.on(method as FindMyWay.HTTPMethod, route.url, () => undefined);
      methods.add(method);
    }
  });
  return (path) =>
    [...methods].filter((method) => router.find(method as FindMyWay.HTTPMethod, path) !== null).sort();
}

/** Whether a body comes with the request (HTTP/1.1 message framing). */
function hasBody(request: FastifyRequest): boolean {
  const length = request.headers['content-length'];
  return request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/**
 * The first key of a JSON text that would reach a prototype, as a field (`body.__proto__`,
 * `body.order.constructor.prototype`); undefined when there is none, or the text is not JSON.
 */
export function forbiddenKeyOf(text: string): string | undefined {
  let root: unknown;
  try {
    root = JSON.parse(text);
  } catch {
    return undefined;
  }
  // JSON.parse makes `__proto__` an own key, harmless until the object is copied or merged.
  const pending: Array<{ value: unknown; path: string }> = [{ value: root, path: 'body' }];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    const { value, path } = next;
    if (value === null || typeof value !== 'object') continue;
    for (const [key, child] of Object.entries(value)) {
      if (key === '__proto__') return `${path}.__proto__`;
      if (
        key === 'constructor' &&
        child !== null &&
        typeof child === 'object' &&
        Object.hasOwn(child, 'prototype')
      )
        return `${path}.constructor.prototype`;
      pending.push({ value: child, path: `${path}.${key}` });
    }
  }
  return undefined;
}

function forbiddenKeyProblem(field: string): ApiProblem {
  const key = field.endsWith('.__proto__') ? '__proto__' : 'constructor.prototype';
  return new ApiProblem(400, 'VALIDATION_FAILED', `the body is JSON, but the key ${key} is not allowed`, {
    errors: [
      {
        field,
        message: `is not allowed: ${key} would reach an object's prototype (no body takes such a key)`,
      },
    ],
  });
}

/** The `charset` parameter of a Content-Type header, unquoted; undefined when it has none. */
function charsetOf(contentType: string | undefined): string | undefined {
  const match = /;\s*charset\s*=\s*(?:"([^"]*)"|([^;\s]*))/i.exec(contentType ?? '');
  return match ? (match[1] ?? match[2]) : undefined;
}

/**
 * The first key given twice in one object of a JSON text, as a field (`body.side`,
 * `body.items.0.price`); undefined when there is none. `text` is JSON that parsed.
 */
export function duplicateKeyOf(text: string): string | undefined {
  // The open objects and arrays, innermost last: an object's keys so far, an array's element index.
  const open: Array<{ path: string; keys?: Set<string>; lastKey?: string; index: number }> = [];
  for (let at = 0; at < text.length; at++) {
    const char = text[at];
    const inner = open.at(-1);
    if (char === '"') {
      let end = at + 1;
      while (text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      let next = end + 1;
      while (/\s/.test(text[next] ?? '')) next++;
      if (inner?.keys && text[next] === ':') {
        const key = JSON.parse(text.slice(at, end + 1)) as string;
        if (inner.keys.has(key)) return `${inner.path}.${key}`;
        inner.keys.add(key);
        inner.lastKey = key;
      }
      at = end;
    } else if (char === '{' || char === '[') {
      const path = inner === undefined ? 'body' : `${inner.path}.${inner.keys ? inner.lastKey : inner.index}`;
      open.push(char === '{' ? { path, keys: new Set(), index: 0 } : { path, index: 0 });
    } else if (char === '}' || char === ']') open.pop();
    else if (char === ',' && inner && !inner.keys) inner.index++;
  }
  return undefined;
}

/** A body that does not parse, in the API's words, with where the parser stopped. */
function invalidJsonProblem(text: string): ApiProblem {
  let why = 'it does not parse';
  try {
    JSON.parse(text);
  } catch (error) {
    if (error instanceof SyntaxError) why = error.message;
  }
  return new ApiProblem(400, 'INVALID_JSON', `the body is not valid JSON: ${why}`);
}

function duplicateKeyProblem(field: string): ApiProblem {
  return new ApiProblem(400, 'VALIDATION_FAILED', 'the body is JSON, but gives a key twice', {
    errors: [{ field, message: 'is given more than once in its object: give it once' }],
  });
}

/**
 * From the moment the server starts closing (the first step of a service's stop), a request that
 * still arrives on an open connection — a load balancer's `/health/ready` probe on a kept-alive one
 * — is answered 503 `SHUTTING_DOWN` with `connection: close` instead of being served, so that it
 * goes to another instance. Build the server with `return503OnClosing: false`, or fastify answers
 * these itself, with a body that is not a problem; on the API, add this after `websocketSupport`
 * (it refuses requests).
 */
export function refuseWhileClosing(app: FastifyInstance): void {
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onRequest', async (_request, reply) => {
    if (!closing) return;
    reply.header('connection', 'close');
    throw new ApiProblem(
      503,
      'SHUTTING_DOWN',
      'the server is shutting down; retry on another instance or later',
    );
  });
}

/**
 * The request's correlation id (the one its logger was made with) and the answer's
 * `x-correlation-id` and `x-request-id`: for every request, the router's refusals included.
 */
export function identify(request: FastifyRequest, reply: FastifyReply): void {
  request.correlationId =
    (request.raw as { correlationId?: string }).correlationId ??
    correlationIdOf(request.headers['x-correlation-id']);
  reply.header('x-correlation-id', request.correlationId);
  reply.header('x-request-id', request.id);
}

/**
 * A refusal answered before fastify has a request (so without `sendProblem`): its problem body
 * under a fresh correlation id, logged as any refusal is.
 */
function earlyRefusal(
  log: FastifyBaseLogger,
  status: number,
  reason: string,
  detail: string,
  fields: object = {},
): { correlationId: string; body: string } {
  const correlationId = randomUUID();
  log.info({ reason, status, correlationId, ...fields }, 'request refused');
  return { correlationId, body: JSON.stringify(problem(status, reason, detail, { correlationId })) };
}

/**
 * What the HTTP parser refuses before fastify has a request (Node's `clientError`): headers over
 * Node's 16 KiB limit, a request that is not HTTP, one that took too long to arrive. Answered as a
 * problem written on the raw socket, which is then closed.
 */
function answerClientError(
  this: { log: FastifyBaseLogger },
  error: Error & { code?: string },
  socket: Socket,
): void {
  // A reset connection has nobody to answer.
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, reason, detail] =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'HEADERS_TOO_LARGE', 'the request line (its URL) and headers are over 16 KiB']
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'REQUEST_TIMEOUT', 'the request did not arrive in time']
        : [400, 'MALFORMED_REQUEST', 'the request is not valid HTTP/1.1'];
  const { correlationId, body } = earlyRefusal(this.log, status, reason, detail, { code: error.code });
  if (socket.writable) {
    socket.write(
      [
        `HTTP/1.1 ${status} ${STATUS_CODES[status]}`,
        `content-type: ${PROBLEM_CONTENT_TYPE}`,
        `content-length: ${Buffer.byteLength(body)}`,
        `x-correlation-id: ${correlationId}`,
        'connection: close',
        '',
        body,
      ].join('\r\n'),
    );
  }
  socket.destroy();
}
