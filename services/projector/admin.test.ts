import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProjectorStatus } from '../../projections/projector.ts';
import { TokenIssuer } from '../api/auth.ts';
import { brokerWithAccount } from '../api/testing.ts';
import type { OpsAuth } from '../shared/ops-admin.ts';
import { startOpsServer } from '../shared/ops-server.ts';
import type { ProjectionRegistry } from '../shared/read-models.ts';
import { projectionAdminRoutes } from './admin.ts';

const secret = 'a-test-secret-of-enough-length-0123456789';
const tokens = new TokenIssuer(secret, 3_600);
const status: ProjectorStatus = {
  projection: 'orders',
  store: 'mysql',
  state: 'failed',
  checkpoint: 7,
  head: 9,
  lagPositions: 2,
  error: 'cannot apply Poison',
};
const rebuilt: string[] = [];
const registry = {
  projectors: new Map([['orders', {}]]),
  status: async () => [status],
  rebuild: async (name: string) => void rebuilt.push(name),
} as unknown as ProjectionRegistry;

/** The projector's own port as `serve projector` starts it, listening on a free port. */
const serve = (options: { auth: OpsAuth | undefined }) =>
  startOpsServer({
    port: 0,
    host: '127.0.0.1',
    logger: pino({ level: 'silent' }),
    readiness: {},
    routes: (app) => projectionAdminRoutes(app, { projections: registry, ...options }),
  });

let ops: Awaited<ReturnType<typeof serve>>;
let accounts: Awaited<ReturnType<typeof brokerWithAccount>>;
beforeAll(async () => {
  accounts = await brokerWithAccount('acc-1', ['admin']);
  ops = await serve({ auth: { tokens, broker: accounts.broker } });
});
afterAll(async () => {
  await ops.close();
  await accounts.close();
});

/** `inject()`'s answer, from a real request to the listening port. */
const app = {
  async inject(request: {
    method?: string;
    url: string;
    headers?: Record<string, string>;
    payload?: string;
  }) {
    const response = await fetch(`${ops.url}${request.url}`, {
      method: request.method ?? 'GET',
      headers: request.headers,
      body: request.payload,
    });
    const body = await response.text();
    return {
      statusCode: response.status,
      headers: Object.fromEntries(response.headers),
      json: () => JSON.parse(body),
    };
  },
};

const bearer = async (roles: Array<'admin' | 'trader' | 'auditor'>) =>
  `Bearer ${(await tokens.issue({ accountId: 'acc-1', username: 'someone', roles })).token}`;

describe("the projector service's admin routes", () => {
  it('answer an admin: the status as this process runs it, and a rebuild', async () => {
    const listed = await app.inject({
      url: '/v1/admin/projections',
      headers: { authorization: await bearer(['admin']) },
    });
    expect(listed.statusCode).toBe(200);
    expect(listed.json()).toEqual({ projections: [status] });
    const rebuild = await app.inject({
      method: 'POST',
      url: '/v1/admin/projections/orders/rebuild',
      headers: { authorization: await bearer(['admin']) },
    });
    expect(rebuild.statusCode).toBe(202);
    expect(rebuilt).toEqual(['orders']);
    const unknown = await app.inject({
      method: 'POST',
      url: '/v1/admin/projections/nope/rebuild',
      headers: { authorization: await bearer(['admin']) },
    });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json()).toMatchObject({ reason: 'PROJECTION_NOT_FOUND' });
  });

  it('refuse anyone else', async () => {
    const anonymous = await app.inject({ url: '/v1/admin/projections' });
    expect(anonymous.statusCode).toBe(401);
    const forged = await app.inject({
      url: '/v1/admin/projections',
      headers: {
        authorization: `Bearer ${(await new TokenIssuer(`${secret}-other`, 60).issue({ accountId: 'a', username: 'x', roles: ['admin'] })).token}`,
      },
    });
    expect(forged.statusCode).toBe(401);
    const trader = await app.inject({
      url: '/v1/admin/projections',
      headers: { authorization: await bearer(['trader']) },
    });
    expect(trader.statusCode).toBe(403);
    expect(rebuilt).toEqual(['orders']);
  });

  it('are refused, saying why, without TRADECORE_JWT_SECRET', async () => {
    const bare = await serve({ auth: undefined });
    const answer = await fetch(`${bare.url}/v1/admin/projections`, {
      headers: { authorization: await bearer(['admin']) },
    });
    expect(answer.status).toBe(503);
    expect(((await answer.json()) as { detail: string }).detail).toContain('TRADECORE_JWT_SECRET');
    await bare.close();
  });

  it('answer every error as the API does: problem+json with its instance and correlation id', async () => {
    const unknownRoute = await app.inject({ url: '/v1/nope', headers: { 'x-correlation-id': 'corr-ops-1' } });
    expect(unknownRoute.statusCode).toBe(404);
    expect(unknownRoute.headers['content-type']).toContain('application/problem+json');
    expect(unknownRoute.headers['x-correlation-id']).toBe('corr-ops-1');
    expect(unknownRoute.json()).toMatchObject({
      status: 404,
      reason: 'ROUTE_NOT_FOUND',
      detail: 'no route GET /v1/nope',
      instance: '/v1/nope',
      correlationId: 'corr-ops-1',
    });

    const anonymous = await app.inject({ url: '/v1/admin/projections' });
    expect(anonymous.statusCode).toBe(401);
    expect(anonymous.headers['content-type']).toContain('application/problem+json');
    expect(anonymous.headers['www-authenticate']).toBe('Bearer');
    expect(anonymous.json()).toMatchObject({
      reason: 'UNAUTHENTICATED',
      instance: '/v1/admin/projections',
      correlationId: anonymous.headers['x-correlation-id'],
    });
    expect(anonymous.json().correlationId).toMatch(/^[0-9a-f-]{36}$/);

    const unknownProjection = await app.inject({
      method: 'POST',
      url: '/v1/admin/projections/nope/rebuild',
      headers: { authorization: await bearer(['admin']), 'x-correlation-id': 'corr-ops-2' },
    });
    expect(unknownProjection.json()).toMatchObject({
      reason: 'PROJECTION_NOT_FOUND',
      instance: '/v1/admin/projections/nope/rebuild',
      correlationId: 'corr-ops-2',
    });
  });

  it('take a strict body on a rebuild: none, or {}', async () => {
    const json = { authorization: await bearer(['admin']), 'content-type': 'application/json' };
    const unknownKey = await app.inject({
      method: 'POST',
      url: '/v1/admin/projections/all/rebuild',
      headers: json,
      payload: '{"x":1}',
    });
    expect(unknownKey.statusCode).toBe(400);
    expect(unknownKey.headers['content-type']).toContain('application/problem+json');
    expect(unknownKey.json()).toMatchObject({ reason: 'VALIDATION_FAILED' });
    expect(unknownKey.json().errors).toEqual([
      { field: 'body.x', message: expect.stringContaining('is not a field of this request') },
    ]);

    const text = await app.inject({
      method: 'POST',
      url: '/v1/admin/projections/all/rebuild',
      headers: { authorization: await bearer(['admin']), 'content-type': 'text/plain' },
      payload: 'rebuild',
    });
    expect(text.statusCode).toBe(415);
    expect(text.json()).toMatchObject({ reason: 'UNSUPPORTED_MEDIA_TYPE' });

    const empty = await app.inject({
      method: 'POST',
      url: '/v1/admin/projections/all/rebuild',
      headers: json,
      payload: '{}',
    });
    expect(empty.statusCode).toBe(202);
    expect(rebuilt).toEqual(['orders', 'all']);
  });
});
