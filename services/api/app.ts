import fastifyRateLimit from '@fastify/rate-limit';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import Fastify from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import pino from 'pino';
import { register } from 'prom-client';
import { AggregateCache } from '../../domain/shared/aggregate.ts';
import { withTimeout } from '../../projections/deadline.ts';
import { KeyedLanes } from '../shared/keyed-lanes.ts';
import {
  type ApiDeps,
  type App,
  bearerTokenOf,
  checkedSession,
  READ_MODEL_DEADLINE_MS,
  type RouteContext,
  readsWithDeadline,
} from './context.ts';
import { ensureDefaultMetrics, httpDuration } from './metrics.ts';
import { documentAnswers, documentRequestBodies } from './openapi.ts';
import { ApiProblem, BODY_LIMIT_BYTES } from './problem.ts';
import { answerWithProblems, problemServerOptions, refuseWhileClosing } from './problem-answers.ts';
import { adminRoutes } from './routes-admin.ts';
import { auditRoutes } from './routes-audit.ts';
import { authRoutes } from './routes-auth.ts';
import { tradingRoutes } from './routes-trading.ts';
import { streamRoutes, websocketSupport } from './stream.ts';

export type { ApiDeps } from './context.ts';

/**
 * The tradecore HTTP API (docs/api.md): every route of the architecture page, zod-validated,
 * problem+json errors, JWT auth by role and account, idempotent creates, correlation ids into
 * every event and log line, OpenAPI at /docs, health and Prometheus metrics. Test it with `inject()`.
 */
export async function buildApi(deps: ApiDeps): Promise<App> {
  const context: RouteContext = {
    ...deps,
    readModels:
      deps.readModels &&
      readsWithDeadline(deps.readModels, deps.readModelDeadlineMs ?? READ_MODEL_DEADLINE_MS),
    now: deps.now ?? (() => new Date()),
    walletLanes: deps.walletLanes ?? new KeyedLanes(),
    caches: {
      accounts: new AggregateCache(),
      instruments: new AggregateCache(),
      wallets: new AggregateCache(),
    },
  };
  const app = Fastify({
    bodyLimit: deps.bodyLimit ?? BODY_LIMIT_BYTES,
    ...problemServerOptions(deps.logger ?? pino({ level: 'silent' }), {
      requestTimeoutMs: deps.requestTimeoutMs,
    }),
    // While closing, new requests get a problem (SHUTTING_DOWN) from `refuseWhileClosing` instead.
    return503OnClosing: false,
  }).withTypeProvider<ZodTypeProvider>() as App;
  answerWithProblems(app);

  ensureDefaultMetrics();
  const duration = httpDuration();

  app.decorateRequest('principal', undefined);
  // Before the hooks below, which refuse requests (see `websocketSupport`).
  await websocketSupport(app);

  refuseWhileClosing(app);
  app.addHook('onRequest', async (request) => {
    const token = bearerTokenOf(request);
    if (token !== undefined) {
      const checked = await checkedSession(context, token);
      if ('session' in checked) {
        request.principal = checked.session.principal;
        request.tokenLife = checked.session;
      }
      // Refused by the routes that need a caller (`principalOf`): a client whose saved token went
      // stale can still log in, and a probe that sends one still reads /health.
      else request.invalidToken = checked.refusal;
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
    transformObject: documentRequestBodies,
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
