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
