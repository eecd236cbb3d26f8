import Fastify from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Logger } from 'pino';
import { register } from 'prom-client';
import { withDeadline, withTimeout } from '../../projections/deadline.ts';
import type { App } from '../api/context.ts';
import { ensureDefaultMetrics } from '../api/metrics.ts';
import { BODY_LIMIT_BYTES } from '../api/problem.ts';
import { answerWithProblems, problemServerOptions, refuseWhileClosing } from '../api/problem-answers.ts';
import { listenError } from './listen.ts';

/** One dependency `/health/ready` checks: resolves when reachable, throws (or rejects) when not. */
export type ReadinessCheck = () => Promise<unknown>;

export interface OpsServerOptions {
  port: number;
  host: string;
  /** Every dependency the service uses, by name. */
  readiness: Record<string, ReadinessCheck>;
  logger: Logger;
  /** Routes of its own beside the operational ones (the projector's admin routes), zod-validated. */
  routes?: (app: App) => void;
  /** Largest accepted request body in bytes (default 16 KiB, as the API's). */
  bodyLimit?: number;
  /** How long a request may take to arrive before `408` (default REQUEST_TIMEOUT_MS, 30 s). */
  requestTimeoutMs?: number;
}

/**
 * The HTTP face of a service without an API (b3-engine, market-data, projector): `/health/live`,
 * `/health/ready` (each dependency, 503 when one is down) and `/metrics` for Prometheus, and its
 * errors answered as the API answers them (problem+json, correlation ids, strict bodies, 503
 * `SHUTTING_DOWN` once it starts closing: the first step of each service's stop).
 */
export async function startOpsServer(
  options: OpsServerOptions,
): Promise<{ url: string; close(): Promise<void> }> {
  const app = buildOpsServer(options);
  const address = await app
    .listen({ port: options.port, host: options.host })
    .catch(async (error: unknown) => {
      await app.close();
      throw listenError(error, options.host, options.port) ?? error;
    });
  const url = address.replace('://0.0.0.0', '://127.0.0.1').replace('://[::]', '://127.0.0.1');
  return { url, close: () => app.close() };
}

/** The ops server, not listening yet: test it with `inject()`. */
export function buildOpsServer(options: Omit<OpsServerOptions, 'port' | 'host'>): App {
  ensureDefaultMetrics();
  const app = Fastify({
    bodyLimit: options.bodyLimit ?? BODY_LIMIT_BYTES,
    ...problemServerOptions(options.logger, { requestTimeoutMs: options.requestTimeoutMs }),
    // While closing, requests get a problem (SHUTTING_DOWN) from `refuseWhileClosing` instead.
    return503OnClosing: false,
    // pino's Logger and fastify's base logger differ only in their types.
  }).withTypeProvider<ZodTypeProvider>() as unknown as App;
  answerWithProblems(app);
  refuseWhileClosing(app);
  app.get('/health/live', async () => ({ status: 'ok' }));
  app.get('/health/ready', async (_request, reply) => {
    const results = await Promise.all(
      Object.entries(options.readiness).map(async ([name, check]) => {
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
  });
  app.get('/metrics', async (_request, reply) =>
    reply.type(register.contentType).send(await register.metrics()),
  );
  options.routes?.(app);
  return app;
}

/** A service started by `tradecore serve`: where it listens, what to tell its operator, how to stop it. */
export interface RunningService {
  url: string;
  banner: string[];
  /** Stops taking work, drains, saves checkpoints, closes connections: the reverse of the start. */
  stop(): Promise<void>;
}

/** How long each step of a stop is waited for before the next one goes on without it. */
export const STOP_STEP_DEADLINE_MS = 10_000;

/**
 * What a composition root opened, closed in reverse order; one failure does not keep the rest open,
 * nor does one that hangs (a store that no longer answers): each step is given
 * `STOP_STEP_DEADLINE_MS`, then left to the process's exit.
 */
export class ShutdownStack {
  private readonly entries: Array<{ name: string; stop: () => Promise<unknown> }> = [];
  constructor(
    private readonly logger: Pick<Logger, 'warn' | 'error'>,
    private readonly stepDeadlineMs = STOP_STEP_DEADLINE_MS,
  ) {}

  push(name: string, stop: () => Promise<unknown>): void {
    this.entries.push({ name, stop });
  }

  async stop(): Promise<void> {
    for (const { name, stop } of this.entries.splice(0).reverse())
      await withDeadline(
        stop().catch((error: unknown) => this.logger.warn({ err: error, component: name }, 'stop failed')),
        this.stepDeadlineMs,
        () =>
          this.logger.error(
            { component: name, deadlineMs: this.stepDeadlineMs },
            `${name} not stopped within ${this.stepDeadlineMs} ms: left to the exit`,
          ),
      );
  }
}
