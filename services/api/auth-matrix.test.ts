import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenIssuer } from './auth.ts';
import { ADMIN_PASSWORD, JWT_SECRET, startTestApi, type TestApi } from './testing.ts';

/**
 * Every route × every kind of caller. "allowed" means the guard let the request through (the answer
 * is then whatever the route says, never 401/403); "denied" means 403; anonymous callers get 401.
 */
type Caller = 'anonymous' | 'own' | 'other' | 'auditor' | 'admin';
type Expectation = Record<Caller, 'allowed' | 'denied' | 'unauthenticated'>;

const accountScoped: Expectation = {
  anonymous: 'unauthenticated',
  own: 'allowed',
  other: 'denied',
  auditor: 'denied',
  admin: 'allowed',
};
const market: Expectation = {
  anonymous: 'unauthenticated',
  own: 'allowed',
  other: 'allowed',
  auditor: 'denied',
  admin: 'allowed',
};
const audit: Expectation = {
  anonymous: 'unauthenticated',
  own: 'denied',
  other: 'denied',
  auditor: 'allowed',
  admin: 'allowed',
};
const adminOnly: Expectation = {
  anonymous: 'unauthenticated',
  own: 'denied',
  other: 'denied',
  auditor: 'denied',
  admin: 'allowed',
};
const open: Expectation = {
  anonymous: 'allowed',
  own: 'allowed',
  other: 'allowed',
  auditor: 'allowed',
  admin: 'allowed',
};

let api: TestApi;
const tokens: Partial<Record<Caller, string>> = {};
let owner: { accountId: string; token: string };
let orderId: string;
/** An account the admin-only account routes act on, so that disabling it leaves the callers' own. */
let spareId: string;

beforeAll(async () => {
  api = await startTestApi();
  owner = await api.trader('owner');
  tokens.own = owner.token;
  tokens.other = (await api.trader('stranger')).token;
  tokens.auditor = (await api.auditor('inspector')).token;
  tokens.admin = await api.adminToken();
  spareId = (await api.trader('spare')).accountId;
  const headers = { authorization: `Bearer ${owner.token}` };
  await api.app.inject({
    method: 'POST',
    url: `/v1/accounts/${owner.accountId}/deposits`,
    headers,
    payload: { amount: '100000.00' },
  });
  const placed = await api.app.inject({
    method: 'POST',
    url: '/v1/orders',
    headers,
    payload: {
      accountId: owner.accountId,
      symbol: 'VALE3',
      side: 'BUY',
      type: 'LIMIT',
      quantity: 100,
      price: '55.00',
    },
  });
  orderId = placed.json().orderId;
}, 180_000);
afterAll(async () => api?.close());

interface RouteCase {
  method: 'GET' | 'POST' | 'DELETE';
  url: () => string;
  payload?: () => object;
  expect: Expectation;
}

const signedIn: Expectation = { ...open, anonymous: 'unauthenticated' };

const id = () => owner.accountId;
const routes: RouteCase[] = [
  { method: 'GET', url: () => '/v1/auth/me', expect: signedIn },
  {
    method: 'POST',
    url: () => `/v1/accounts/${id()}/deposits`,
    payload: () => ({ amount: '1.00' }),
    expect: accountScoped,
  },
  {
    method: 'POST',
    url: () => `/v1/accounts/${id()}/withdrawals`,
    payload: () => ({ amount: '0.01' }),
    expect: accountScoped,
  },
  {
    method: 'POST',
    url: () => `/v1/accounts/${id()}/custody-transfers`,
    payload: () => ({ symbol: 'PETR4', quantity: 100 }),
    expect: accountScoped,
  },
  { method: 'GET', url: () => `/v1/accounts/${id()}/wallet`, expect: accountScoped },
  {
    method: 'POST',
    url: () => '/v1/orders',
    payload: () => ({
      accountId: id(),
      symbol: 'PETR4',
      side: 'BUY',
      type: 'LIMIT',
      quantity: 100,
      price: '1.00',
    }),
    expect: accountScoped,
  },
  { method: 'GET', url: () => `/v1/orders/${orderId}`, expect: accountScoped },
  { method: 'DELETE', url: () => `/v1/orders/${orderId}`, expect: accountScoped },
  { method: 'GET', url: () => `/v1/orders?accountId=${id()}`, expect: accountScoped },
  { method: 'GET', url: () => `/v1/trades?accountId=${id()}`, expect: accountScoped },
  { method: 'GET', url: () => '/v1/trades?symbol=PETR4', expect: market },
  { method: 'GET', url: () => '/v1/market/PETR4/book?depth=5', expect: market },
  { method: 'GET', url: () => '/v1/market/PETR4/quote', expect: market },
  { method: 'GET', url: () => '/v1/market/PETR4/quotes', expect: market },
  { method: 'GET', url: () => '/v1/market/PETR4/candles?interval=1m', expect: market },
  { method: 'GET', url: () => '/v1/instruments?status=OPEN&limit=5', expect: market },
  { method: 'GET', url: () => '/v1/instruments/PETR4', expect: market },
  { method: 'GET', url: () => `/v1/audit/streams/order-${orderId}?from=0&limit=10`, expect: audit },
  { method: 'GET', url: () => `/v1/audit/streams/wallet-${id()}/state?version=0`, expect: audit },
  { method: 'GET', url: () => '/v1/audit/trace/seed', expect: audit },
  { method: 'GET', url: () => '/v1/admin/projections', expect: adminOnly },
  { method: 'POST', url: () => '/v1/admin/projections/orders/rebuild', expect: adminOnly },
  {
    method: 'POST',
    url: () => `/v1/admin/accounts/${id()}/roles`,
    payload: () => ({ role: 'trader' }),
    expect: adminOnly,
  },
  { method: 'DELETE', url: () => `/v1/admin/accounts/${id()}/roles/auditor`, expect: adminOnly },
  {
    method: 'POST',
    url: () => `/v1/admin/accounts/${spareId}/disable`,
    payload: () => ({ reason: 'test' }),
    expect: adminOnly,
  },
  {
    method: 'POST',
    url: () => '/v1/admin/instruments',
    payload: () => ({
      symbol: 'CASH3',
      name: 'Méliuz ON',
      lotSize: 100,
      tickSize: '0.01',
      fractional: true,
      referencePrice: '5.00',
    }),
    expect: adminOnly,
  },
  {
    method: 'POST',
    url: () => '/v1/admin/instruments/PETR4/reference-price',
    payload: () => ({ referencePrice: '32.50' }),
    expect: adminOnly,
  },
  {
    method: 'POST',
    url: () => '/v1/admin/instruments/ABEV3/halt',
    payload: () => ({ reason: 'test' }),
    expect: adminOnly,
  },
  { method: 'POST', url: () => '/v1/admin/instruments/ABEV3/resume', payload: () => ({}), expect: adminOnly },
  {
    method: 'POST',
    url: () => '/v1/admin/market/quotes',
    payload: () => ({ enabled: false }),
    expect: adminOnly,
  },
  { method: 'GET', url: () => '/health/live', expect: open },
  { method: 'GET', url: () => '/health/ready', expect: open },
  { method: 'GET', url: () => '/metrics', expect: open },
  { method: 'GET', url: () => '/docs/json', expect: open },
  // Last: the admin's call resets the owner's password, which revokes the owner's token.
  {
    method: 'POST',
    url: () => `/v1/accounts/${id()}/password`,
    payload: () => ({ currentPassword: 'a-good-password', newPassword: 'a-better-password' }),
    expect: accountScoped,
  },
];

const callers: Caller[] = ['anonymous', 'own', 'other', 'auditor', 'admin'];

describe('the auth matrix', () => {
  for (const route of routes) {
    for (const caller of callers) {
      it(`${route.method} ${route.url.toString().replace(/^\(\) => /, '')} as ${caller}: ${route.expect[caller]}`, async () => {
        const token = tokens[caller];
        const response = await api.app.inject({
          method: route.method,
          url: route.url(),
          headers: token ? { authorization: `Bearer ${token}` } : {},
          ...(route.payload ? { payload: route.payload() } : {}),
        });
        const outcome = route.expect[caller];
        if (outcome === 'unauthenticated') expect(response.statusCode).toBe(401);
        else if (outcome === 'denied') expect(response.statusCode).toBe(403);
        else {
          expect([401, 403]).not.toContain(response.statusCode);
          expect(response.statusCode, response.body).toBeLessThan(500);
        }
        if (response.statusCode >= 400)
          expect(response.headers['content-type']).toContain('application/problem+json');
      });
    }
  }

  it('answers an anonymous or forged caller 401 before it looks at the request: the schema tells it nothing', async () => {
    const protectedRoutes = routes.filter((route) => route.expect.anonymous === 'unauthenticated');
    expect(protectedRoutes.length).toBeGreaterThan(20);
    for (const route of protectedRoutes)
      for (const headers of [{}, { authorization: 'Bearer not.a.token' }]) {
        const response = await api.app.inject({
          method: route.method,
          url: `${route.url()}${route.url().includes('?') ? '&' : '?'}bogus=1`,
          headers,
          ...(route.method === 'POST' ? { payload: { bogus: 1 } } : {}),
        });
        expect(response.statusCode, `${route.method} ${route.url()}: ${response.body}`).toBe(401);
      }
  });

  it('says so when the token comes in another scheme than Bearer', async () => {
    const response = await api.app.inject({
      method: 'GET',
      url: '/v1/auth/me',
      headers: { authorization: `Token ${tokens.own}` },
    });
    expect(response.statusCode).toBe(401);
    expect(response.json()).toMatchObject({
      reason: 'UNAUTHENTICATED',
      detail:
        'the Authorization header must be "Bearer <token>" (the token POST /v1/auth/login answers), not "Token …"',
    });
    const none = await api.app.inject({ method: 'GET', url: '/v1/auth/me' });
    expect(none.json()).toMatchObject({
      reason: 'UNAUTHENTICATED',
      detail: 'a valid bearer token is required',
    });
  });

  it('refuses a forged or expired token with 401', async () => {
    const forged = `${tokens.admin!.slice(0, -4)}AAAA`;
    const response = await api.app.inject({
      method: 'GET',
      url: '/v1/admin/projections',
      headers: { authorization: `Bearer ${forged}` },
    });
    expect(response.statusCode).toBe(401);
    expect(response.json()).toMatchObject({
      reason: 'INVALID_TOKEN',
      detail: 'the bearer token is malformed or forged: log in again',
    });
    // Signed by this server an hour and a minute ago, for an hour: genuine, and expired.
    const anHourAgo = new TokenIssuer(JWT_SECRET, 3600, () => new Date(Date.now() - 3_660_000));
    const { token: expired } = await anHourAgo.issue({
      accountId: 'admin',
      username: 'admin',
      roles: ['admin'],
    });
    const late = await api.app.inject({
      method: 'GET',
      url: '/v1/admin/projections',
      headers: { authorization: `Bearer ${expired}` },
    });
    expect(late.json()).toMatchObject({
      status: 401,
      reason: 'INVALID_TOKEN',
      detail: 'the bearer token has expired: log in again',
    });
  });

  it('serves the public routes as anonymous whatever token comes with them: a stale one does not keep a client from logging in again', async () => {
    const stale = { authorization: 'Bearer abc.def.ghi' };
    const login = await api.app.inject({
      method: 'POST',
      url: '/v1/auth/login',
      headers: stale,
      payload: { username: 'admin', password: ADMIN_PASSWORD },
    });
    expect(login.statusCode, login.body).toBe(200);
    const register = await api.app.inject({
      method: 'POST',
      url: '/v1/auth/register',
      headers: stale,
      payload: { username: 'stale-token-newcomer', password: 'a good password' },
    });
    expect(register.statusCode, register.body).toBe(201);
    for (const url of ['/health/live', '/health/ready', '/metrics', '/docs/json'])
      expect((await api.app.inject({ method: 'GET', url, headers: stale })).statusCode, url).toBe(200);
    // A route that needs a caller still says the token is the problem, not that none came.
    const me = await api.app.inject({ method: 'GET', url: '/v1/auth/me', headers: stale });
    expect(me.statusCode).toBe(401);
    expect(me.json()).toMatchObject({ reason: 'INVALID_TOKEN' });
  });
});
