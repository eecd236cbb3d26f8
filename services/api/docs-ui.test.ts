import { afterAll, beforeAll, expect, it } from 'vitest';
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
    expect(
      codes.some((code) => code.startsWith('2')),
      `${method} ${path}`,
    ).toBe(true);
    expect(operation.responses['400']?.content, `${method} ${path}`).toHaveProperty([
      'application/problem+json',
    ]);
    expect(operation.responses['500'], `${method} ${path}`).toBeDefined();
  }
  expect(Object.keys(spec.paths['/v1/orders'].post.responses)).toContain('202');
  expect(Object.keys(spec.paths['/health/ready'].get.responses)).toEqual(['200', '503']);
  expect(Object.keys(spec.paths['/v1/auth/register'].post.responses)).toContain('201');
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
