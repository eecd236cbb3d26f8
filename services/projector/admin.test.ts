import Fastify from 'fastify';
import { afterAll, describe, expect, it } from 'vitest';
import type { ProjectorStatus } from '../../projections/projector.ts';
import { TokenIssuer } from '../api/auth.ts';
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

const app = Fastify();
projectionAdminRoutes(app, { projections: registry, tokens });
afterAll(() => app.close());

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
    const bare = Fastify();
    projectionAdminRoutes(bare, { projections: registry, tokens: undefined });
    const answer = await bare.inject({
      url: '/v1/admin/projections',
      headers: { authorization: await bearer(['admin']) },
    });
    expect(answer.statusCode).toBe(503);
    expect(answer.json().detail).toContain('TRADECORE_JWT_SECRET');
    await bare.close();
  });
});
