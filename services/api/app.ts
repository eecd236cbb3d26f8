import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import fastifyRateLimit from '@fastify/rate-limit';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import pino from 'pino';
import { register } from 'prom-client';
import { AggregateCache } from '../../domain/shared/aggregate.ts';
import { KeyedLanes } from '../shared/keyed-lanes.ts';
import type { ApiDeps, App, RouteContext } from './context.ts';
import { ensureDefaultMetrics, httpDuration } from './metrics.ts';
import { documentAnswers } from './openapi.ts';
import { ApiProblem, PROBLEM_CONTENT_TYPE, problem, sendProblem, toProblem } from './problem.ts';
import { redactUrl } from './redact.ts';
import { adminRoutes } from './routes-admin.ts';
import { auditRoutes } from './routes-audit.ts';
import { authRoutes } from './routes-auth.ts';
import { tradingRoutes } from './routes-trading.ts';
import { streamRoutes, websocketSupport } from './stream.ts';

export type { ApiDeps } from './context.ts';

/** What a caller may send as `x-correlation-id`; anything else is replaced by a fresh id. */
const CORRELATION_ID = /^[A-Za-z0-9_.:-]{1,128}$/;

function correlationIdOf(offered: unknown): string {
  return typeof offered === 'string' && CORRELATION_ID.test(offered) ? offered : randomUUID();
}

/**
 * The API's logger: fastify's request serializer, but with credentials in the URL redacted (the
 * `incoming request` line logs `req.url`). A logger given serializers keeps them over fastify's.
 */
function apiLogger(logger: FastifyBaseLogger): FastifyBaseLogger {
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
 * The tradecore HTTP API (docs/api.md): every route of the architecture page, zod-validated,
 * problem+json errors, JWT auth by role and account, idempotent creates, correlation ids into
 * every event and log line, OpenAPI at /docs, health and Prometheus metrics. Test it with `inject()`.
 */
export async function buildApi(deps: ApiDeps): Promise<App> {
  const context: RouteContext = {
    ...deps,
    now: deps.now ?? (() => new Date()),
    walletLanes: deps.walletLanes ?? new KeyedLanes(),
    caches: { accounts: new AggregateCache(), instruments: new AggregateCache() },
  };
  const app = Fastify({
    loggerInstance: apiLogger(deps.logger ?? pino({ level: 'silent' })),
    bodyLimit: deps.bodyLimit ?? 16 * 1024,
    genReqId: () => randomUUID(),
    // The request's logger is made before any hook runs: decide the correlation id here, so that
    // even the "incoming request" line carries it.
    childLoggerFactory: (logger, bindings, options, rawRequest) => {
      const correlationId = correlationIdOf(rawRequest.headers['x-correlation-id']);
      (rawRequest as { correlationId?: string }).correlationId = correlationId;
      return logger.child({ ...bindings, correlationId }, options);
    },
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    // The router's own refusals (a path parameter over MAX_PARAM_LENGTH, bad percent-encoding) and
    // what the HTTP parser refuses before there is a request (headers over 16 KiB, not HTTP) are
    // problems like every other error, not fastify's own JSON.
    frameworkErrors: (error, request, reply) => {
      identify(request, reply);
      const body = toProblem(error);
      request.log.info({ reason: body.reason, status: body.status }, 'request refused');
      return sendProblem(request, reply, body);
    },
    clientErrorHandler: answerClientError,
    // While closing, new requests get a problem (SHUTTING_DOWN) from the hook below instead.
    return503OnClosing: false,
  }).withTypeProvider<ZodTypeProvider>() as App;
  // Bodies are JSON or nothing: text/plain answers 415 like any other type, and an empty body
  // sent as JSON (a DELETE from some clients) counts as none.
  app.removeContentTypeParser('text/plain');
  const json = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) =>
    body === '' ? done(null, undefined) : json(request, body as string, done),
  );
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);

  ensureDefaultMetrics();
  const duration = httpDuration();

  app.decorateRequest('correlationId', '');
  app.decorateRequest('principal', undefined);
  // Before the hooks below, which refuse requests (see `websocketSupport`).
  await websocketSupport(app);

  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onRequest', async (request, reply) => {
    identify(request, reply);
    if (closing) {
      reply.header('connection', 'close');
      throw new ApiProblem(
        503,
        'SHUTTING_DOWN',
        'the server is shutting down; retry on another instance or later',
      );
    }
    const authorization = request.headers.authorization;
    const [scheme, token] = authorization?.trim().split(/\s+/, 2) ?? [];
    // The scheme is case-insensitive (RFC 9110).
    if (scheme?.toLowerCase() === 'bearer') {
      request.principal = await context.tokens.verify(token ?? '');
      if (!request.principal)
        throw new ApiProblem(401, 'INVALID_TOKEN', 'the bearer token is malformed, forged or expired');
    }
  });

  app.addHook('onResponse', async (request, reply) => {
    duration.observe(
      {
        method: request.method,
        route: request.routeOptions.url ?? 'unmatched',
        status_code: String(reply.statusCode),
      },
      reply.elapsedTime / 1000,
    );
  });

  app.setErrorHandler(async (error, request, reply) => {
    const body = toProblem(error);
    if (body.status >= 500) request.log.error({ err: error }, 'request failed');
    else request.log.info({ reason: body.reason, status: body.status }, 'request refused');
    if (body.status === 401) reply.header('www-authenticate', 'Bearer');
    return sendProblem(request, reply, body);
  });

  app.setNotFoundHandler(async (request, reply) =>
    sendProblem(
      request,
      reply,
      problem(404, 'ROUTE_NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`),
    ),
  );

  await app.register(fastifyRateLimit, {
    global: false,
    errorResponseBuilder: (_request, context) =>
      Object.assign(
        new ApiProblem(429, 'RATE_LIMITED', `too many attempts; retry in ${Math.ceil(context.ttl / 1000)} s`),
        { statusCode: 429 },
      ),
  });

  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'tradecore',
        version: '1',
        description:
          'Event-sourced brokerage and simulated B3 exchange. Amounts and prices are decimal strings ("32.50"). Errors are application/problem+json (RFC 9457). See docs/api.md.',
      },
      components: {
        securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
      },
      tags: [
        { name: 'auth' },
        { name: 'accounts' },
        { name: 'orders' },
        { name: 'market' },
        { name: 'audit' },
        { name: 'admin' },
        { name: 'operations' },
      ],
    },
    transform: documentAnswers,
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/docs' });

  authRoutes(app, context);
  tradingRoutes(app, context);
  auditRoutes(app, context);
  adminRoutes(app, context);
  await streamRoutes(app, context);
  operationsRoutes(app, context);
  return app;
}

/**
 * The request's correlation id (the one its logger was made with) and the answer's
 * `x-correlation-id` and `x-request-id`: for every request, the router's refusals included.
 */
function identify(request: FastifyRequest, reply: FastifyReply): void {
  request.correlationId =
    (request.raw as { correlationId?: string }).correlationId ??
    correlationIdOf(request.headers['x-correlation-id']);
  reply.header('x-correlation-id', request.correlationId);
  reply.header('x-request-id', request.id);
}

/** The longest path parameter the router takes (an id, a stream id, a symbol); longer answers 414. */
export const MAX_PARAM_LENGTH = 300;

/**
 * What the HTTP parser refuses before fastify has a request (Node's `clientError`): headers over
 * Node's 16 KiB limit, a request that is not HTTP, one that took too long to arrive. Answered as a
 * problem written on the raw socket, which is then closed.
 */
function answerClientError(this: FastifyInstance, error: Error & { code?: string }, socket: Socket): void {
  // A reset connection has nobody to answer.
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, reason, detail] =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'HEADERS_TOO_LARGE', 'the request headers are over 16 KiB']
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'REQUEST_TIMEOUT', 'the request did not arrive in time']
        : [400, 'MALFORMED_REQUEST', 'the request is not valid HTTP/1.1'];
  const correlationId = randomUUID();
  this.log.info({ reason, status, correlationId, code: error.code }, 'request refused');
  if (socket.writable) {
    const body = JSON.stringify(problem(status, reason, detail, { correlationId }));
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

/** How long `closeGracefully` lets open connections finish before it cuts them. */
export const SHUTDOWN_GRACE_MS = 5_000;

/**
 * `app.close()` with a deadline: no new connections, the open ones get `graceMs` to finish, then
 * what is left is cut (a client that never completed its request, a WebSocket that does not answer
 * the close), so the rest of a shutdown always runs.
 */
export async function closeGracefully(app: App, graceMs = SHUTDOWN_GRACE_MS): Promise<void> {
  const deadline = setTimeout(() => {
    app.log.warn({ graceMs }, 'closing the connections still open after the grace period');
    app.server.closeAllConnections();
    for (const socket of app.websocketServer.clients) socket.terminate();
  }, graceMs);
  try {
    await app.close();
  } finally {
    clearTimeout(deadline);
  }
}

function operationsRoutes(app: App, context: RouteContext): void {
  app.get('/health/live', { schema: { tags: ['operations'], summary: 'The process is up' } }, async () => ({
    status: 'ok',
  }));

  app.get(
    '/health/ready',
    { schema: { tags: ['operations'], summary: 'Every dependency answers (event stores, read models, …)' } },
    async (_request, reply) => {
      const checks: Record<string, () => Promise<unknown>> = {
        'broker-event-store': () => context.broker.headPosition(),
        'b3-event-store': () => context.b3.headPosition(),
        ...context.readiness,
      };
      const results = await Promise.all(
        Object.entries(checks).map(async ([name, check]) => {
          try {
            await withTimeout(check(), 2_000);
            return [name, { status: 'up' }] as const;
          } catch (error) {
            return [
              name,
              { status: 'down', error: error instanceof Error ? error.message : String(error) },
            ] as const;
          }
        }),
      );
      const ready = results.every(([, result]) => result.status === 'up');
      return reply
        .code(ready ? 200 : 503)
        .send({ status: ready ? 'ready' : 'not ready', checks: Object.fromEntries(results) });
    },
  );

  app.get(
    '/metrics',
    { schema: { tags: ['operations'], summary: 'Prometheus metrics' } },
    async (_request, reply) => reply.type(register.contentType).send(await register.metrics()),
  );
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
