import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { z } from 'zod';
import {
  AmountBody,
  Credentials,
  CustodyTransferBody,
  HaltBody,
  InstrumentBody,
  PlaceOrderBody,
  ReferencePriceBody,
  RegisterBody,
  RoleBody,
} from './schemas.ts';
import { startTestApi, type TestApi } from './testing.ts';

/**
 * Bad input, generated: every POST body mutated one way or another (a field missing, an extra
 * field, a wrong type, a huge or negative number, a bad decimal, an unknown symbol), and random
 * query strings on every GET. Always a 4xx problem+json, never a 5xx, and the event store unchanged.
 */
let api: TestApi;
let trader: { accountId: string; token: string };
let admin: string;

beforeAll(async () => {
  api = await startTestApi();
  trader = await api.trader('fuzzy');
  admin = await api.adminToken();
}, 180_000);
afterAll(async () => api?.close());

const badValue = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer(),
  fc.double(),
  fc.constantFrom(-1, 0, -100, 1e308, Number.MAX_SAFE_INTEGER + 2, 2 ** 63, 0.5, -0.01),
  fc.string({ maxLength: 30 }),
  fc.constantFrom(
    '',
    '-1.00',
    '1.001',
    '1e5',
    '١٢',
    '12,50',
    ' 1.00',
    'NaN',
    '99999999999999999999',
    '0.00',
    'abc',
  ),
  fc.constantFrom('ZZZZ3', 'petr4', 'PETR', 'PETR4FF', 'A'.repeat(300)),
  fc.array(fc.integer(), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 5 }), fc.integer(), { maxKeys: 2 }),
);

type Mutation = { kind: 'drop' | 'replace' | 'extra'; field: string; value: unknown };

/**
 * A valid body with one thing wrong with it, kept only when the schema refuses it, or when the
 * catalogue does (an unknown symbol, for the routes that need a listed one).
 */
function invalidBodies(valid: Record<string, unknown>, schema: z.ZodType, symbolMustBeListed: boolean) {
  const fields = Object.keys(valid);
  const mutation: fc.Arbitrary<Mutation> = fc.record({
    kind: fc.constantFrom('drop', 'replace', 'extra'),
    field: fc.oneof(fc.constantFrom(...fields), fc.string({ minLength: 1, maxLength: 10 })),
    value: badValue,
  });
  return fc
    .oneof(
      { weight: 8, arbitrary: fc.array(mutation, { minLength: 1, maxLength: 3 }) },
      { weight: 1, arbitrary: fc.constant([] as Mutation[]) },
    )
    .map((mutations) => {
      if (mutations.length === 0) return { raw: true as const, body: '{"not json' };
      const body: Record<string, unknown> = { ...valid };
      for (const { kind, field, value } of mutations) {
        if (kind === 'drop') delete body[field];
        else if (kind === 'replace') body[fields.includes(field) ? field : fields[0]!] = value;
        else body[fields.includes(field) ? `${field}_extra` : field] = value;
      }
      // What goes on the wire, which the filter below checks: a field named `__proto__` (fast-check
      // tries it) set the object's prototype instead of a key, and left a valid body to be sent.
      return { raw: false as const, body: JSON.parse(JSON.stringify(body)) as Record<string, unknown> };
    })
    .filter(
      ({ raw, body }) =>
        raw || !schema.safeParse(body).success || (symbolMustBeListed && hasUnknownSymbol(body)),
    );
}

const hasUnknownSymbol = (body: unknown) => (body as { symbol?: unknown }).symbol === 'ZZZZ3';

interface PostCase {
  name: string;
  url: () => string;
  token: () => string | undefined;
  valid: () => Record<string, unknown>;
  schema: z.ZodType;
  /** Listing an instrument is the one route where an unknown symbol is the valid case. */
  listsNewSymbol?: true;
}

const posts: PostCase[] = [
  {
    name: 'register',
    url: () => '/v1/auth/register',
    token: () => undefined,
    valid: () => ({ username: 'someone', password: 'long-enough' }),
    schema: RegisterBody,
  },
  {
    name: 'login',
    url: () => '/v1/auth/login',
    token: () => undefined,
    valid: () => ({ username: 'fuzzy', password: 'a-good-password' }),
    schema: Credentials,
  },
  {
    name: 'deposit',
    url: () => `/v1/accounts/${trader.accountId}/deposits`,
    token: () => trader.token,
    valid: () => ({ amount: '10.00' }),
    schema: AmountBody,
  },
  {
    name: 'withdrawal',
    url: () => `/v1/accounts/${trader.accountId}/withdrawals`,
    token: () => trader.token,
    valid: () => ({ amount: '10.00' }),
    schema: AmountBody,
  },
  {
    name: 'custody transfer',
    url: () => `/v1/accounts/${trader.accountId}/custody-transfers`,
    token: () => trader.token,
    valid: () => ({ symbol: 'PETR4', quantity: 100 }),
    schema: CustodyTransferBody,
  },
  {
    name: 'order',
    url: () => '/v1/orders',
    token: () => trader.token,
    valid: () => ({
      accountId: trader.accountId,
      symbol: 'PETR4',
      side: 'BUY',
      type: 'LIMIT',
      quantity: 100,
      price: '32.50',
    }),
    schema: PlaceOrderBody,
  },
  {
    name: 'grant role',
    url: () => `/v1/admin/accounts/${trader.accountId}/roles`,
    token: () => admin,
    valid: () => ({ role: 'auditor' }),
    schema: RoleBody,
  },
  {
    name: 'list instrument',
    url: () => '/v1/admin/instruments',
    token: () => admin,
    valid: () => ({
      symbol: 'NEWS3',
      name: 'New ON',
      lotSize: 100,
      tickSize: '0.01',
      fractional: true,
      referencePrice: '10.00',
    }),
    schema: InstrumentBody,
    listsNewSymbol: true,
  },
  {
    name: 'reference price',
    url: () => '/v1/admin/instruments/PETR4/reference-price',
    token: () => admin,
    valid: () => ({ referencePrice: '33.00' }),
    schema: ReferencePriceBody,
  },
  {
    name: 'halt',
    url: () => '/v1/admin/instruments/PETR4/halt',
    token: () => admin,
    valid: () => ({ reason: 'test' }),
    schema: HaltBody,
  },
];

async function eventCount(): Promise<number> {
  return (await api.allEvents()).filter(
    // A claimed-then-released idempotency key is bookkeeping; no fuzzed request sends a key.
    (event) => !event.streamId.startsWith('idempotency-'),
  ).length;
}

describe('fuzzed POST bodies', () => {
  for (const post of posts) {
    it(`${post.name}: bad bodies answer 4xx problem+json and change nothing`, async () => {
      const before = await eventCount();
      await fc.assert(
        fc.asyncProperty(
          invalidBodies(post.valid(), post.schema, !post.listsNewSymbol),
          async ({ raw, body }) => {
            const token = post.token();
            const response = await api.app.inject({
              method: 'POST',
              url: post.url(),
              headers: {
                'content-type': 'application/json',
                ...(token ? { authorization: `Bearer ${token}` } : {}),
              },
              payload: raw ? body : JSON.stringify(body),
            });
            expect(response.statusCode, response.body).toBeGreaterThanOrEqual(400);
            expect(response.statusCode, response.body).toBeLessThan(500);
            expect(response.headers['content-type']).toContain('application/problem+json');
            expect(response.body).not.toMatch(/\.ts:\d+/);
          },
        ),
        { numRuns: post.name === 'login' || post.name === 'register' ? 25 : 60 },
      );
      expect(await eventCount()).toBe(before);
    });
  }
});

const queryValue = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.integer().map(String),
  fc.constantFrom(
    '-1',
    '0',
    '1e9',
    '99999999999999999999',
    'PETR4',
    'ZZZZ3',
    'FILLED',
    'HALTED',
    '2025-01-01T00:00:00Z',
    '',
  ),
);
const queryString = fc
  .dictionary(
    fc.oneof(
      fc.constantFrom(
        'limit',
        'cursor',
        'symbol',
        'accountId',
        'status',
        'depth',
        'interval',
        'from',
        'to',
        'version',
        'at',
      ),
      fc.string({ minLength: 1, maxLength: 6 }),
    ),
    queryValue,
    { maxKeys: 4 },
  )
  .map((query) => new URLSearchParams(query).toString());

describe('fuzzed queries', () => {
  const gets = [
    { path: () => '/v1/orders', token: () => trader.token },
    { path: () => '/v1/trades', token: () => trader.token },
    { path: () => '/v1/market/PETR4/book', token: () => trader.token },
    { path: () => '/v1/market/PETR4/candles', token: () => trader.token },
    { path: () => '/v1/market/PETR4/quotes', token: () => trader.token },
    { path: () => '/v1/instruments', token: () => trader.token },
    { name: 'audit stream', path: () => `/v1/audit/streams/wallet-${trader.accountId}`, token: () => admin },
    {
      name: 'audit state',
      path: () => `/v1/audit/streams/wallet-${trader.accountId}/state`,
      token: () => admin,
    },
  ];
  for (const get of gets) {
    it(`${'name' in get ? get.name : get.path()}: any query answers without a 5xx, problems as problem+json`, async () => {
      const before = await eventCount();
      await fc.assert(
        fc.asyncProperty(queryString, async (query) => {
          const response = await api.app.inject({
            method: 'GET',
            url: `${get.path()}?${query}`,
            headers: { authorization: `Bearer ${get.token()}` },
          });
          expect(response.statusCode, `${query} → ${response.body}`).toBeLessThan(500);
          if (response.statusCode >= 400)
            expect(response.headers['content-type']).toContain('application/problem+json');
        }),
        { numRuns: 60 },
      );
      expect(await eventCount()).toBe(before);
    });
  }
});

/**
 * A cursor is the caller's text: base64url JSON that names a list and its keyset values. Made by
 * hand, with values of any type and size, it is a page or `400 INVALID_CURSOR` (`VALIDATION_FAILED`
 * over 500 characters), never a store's error (a string or 1.5 where a bigint position goes
 * answered 500).
 */
describe('hand-made cursors', () => {
  const jsonValueText = fc.oneof(
    fc.integer().map(String),
    fc.double().map((value) => (Number.isFinite(value) ? JSON.stringify(value) : '1e999')),
    fc.constantFrom(
      '"x"',
      // Tickers: the catalogue's keyset (a page after PETR4 or after the last one), and one in lower case.
      '"PETR4"',
      '"ZZZZ3"',
      '"petr4"',
      '1.5',
      '1e308',
      '-1e308',
      '99999999999999999999',
      '9007199254740993',
      '-1',
      '-0',
      '0',
      '253402300800000',
      'null',
      'true',
      '{}',
      '[]',
      '""',
      `"${'a'.repeat(400)}"`,
    ),
    fc.string({ maxLength: 20 }).map((text) => JSON.stringify(text)),
  );
  const cursorFor = (list: string) =>
    fc
      .record({
        list: fc.oneof(
          { weight: 4, arbitrary: fc.constant(list) },
          {
            weight: 1,
            arbitrary: fc.constantFrom('orders', 'trades', 'quotes:PETR4', 'instruments', 'trace:x'),
          },
          { weight: 1, arbitrary: fc.string({ maxLength: 8 }) },
        ),
        values: fc.array(jsonValueText, { minLength: 0, maxLength: 5 }),
      })
      .map(({ list, values }) =>
        Buffer.from(`{"l":${JSON.stringify(list)},"a":[${values.join(',')}]}`).toString('base64url'),
      );
  // A list's name in its cursors carries the filters it was asked with (a trader's orders are its own).
  const lists = [
    {
      name: '/v1/orders',
      url: () => '/v1/orders',
      list: () => `orders?account_id=${trader.accountId}`,
      token: () => trader.token,
    },
    {
      name: "/v1/orders (an admin's: every account)",
      url: () => '/v1/orders',
      list: () => 'orders',
      token: () => admin,
    },
    { name: '/v1/trades', url: () => '/v1/trades', list: () => 'trades', token: () => trader.token },
    {
      name: '/v1/trades?accountId (its parties)',
      url: () => `/v1/trades?accountId=${trader.accountId}`,
      list: () => `trades?account_id=${trader.accountId}`,
      token: () => trader.token,
    },
    {
      name: '/v1/market/PETR4/quotes',
      url: () => '/v1/market/PETR4/quotes',
      list: () => 'quotes:PETR4',
      token: () => trader.token,
    },
    {
      name: '/v1/instruments (its keyset: a ticker)',
      url: () => '/v1/instruments',
      list: () => 'instruments',
      token: () => trader.token,
    },
    {
      name: '/v1/audit/trace/{correlationId}',
      url: () => '/v1/audit/trace/fuzzed-trace',
      list: () => 'trace:fuzzed-trace',
      token: () => admin,
    },
  ];
  const read = (url: string, cursor: string, token: string) =>
    api.app.inject({
      method: 'GET',
      url: `${url}${url.includes('?') ? '&' : '?'}limit=1&cursor=${cursor}`,
      headers: { authorization: `Bearer ${token}` },
    });

  for (const { name, url, list, token } of lists) {
    it(`${name}: any cursor is a page or 400 INVALID_CURSOR, never a 5xx`, async () => {
      await fc.assert(
        fc.asyncProperty(cursorFor(list()), async (cursor) => {
          const response = await read(url(), cursor, token());
          const text = Buffer.from(cursor, 'base64url').toString();
          expect(response.statusCode, `${text} → ${response.body}`).toBeLessThan(500);
          if (response.statusCode !== 200) {
            expect(response.statusCode, `${text} → ${response.body}`).toBe(400);
            expect(response.headers['content-type']).toContain('application/problem+json');
            // Over 500 characters, the query's schema refuses it first.
            expect(response.json()).toMatchObject(
              cursor.length > 500
                ? { reason: 'VALIDATION_FAILED', errors: [{ field: 'querystring.cursor' }] }
                : { reason: 'INVALID_CURSOR' },
            );
          }
        }),
        { numRuns: 40 },
      );
      // The cases a new user tried, one keyset value each.
      const width = list().startsWith('trace:') ? 4 : 1;
      for (const value of ['"x"', '1.5', '1e308', '99999999999999999999']) {
        const values = Array.from({ length: width }, () => value).join(',');
        const cursor = Buffer.from(`{"l":${JSON.stringify(list())},"a":[${values}]}`).toString('base64url');
        const response = await read(url(), cursor, token());
        expect(response.statusCode, `${value} → ${response.body}`).toBe(400);
        expect(response.json()).toMatchObject({ reason: 'INVALID_CURSOR' });
      }
    });
  }
});
