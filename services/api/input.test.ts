import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { orderStreamId } from '../../domain/broker/order/order.ts';
import { eventually, startTestApi, type TestApi } from './testing.ts';

/**
 * What a caller gets for input the API refuses, as a new user meets it: one error per field and
 * problem, naming the field and saying what it must be.
 */
let api: TestApi;
let alice: { accountId: string; token: string };
const auth = (token: string) => ({ authorization: `Bearer ${token}` });

beforeAll(async () => {
  api = await startTestApi();
  alice = await api.trader('input-alice');
}, 180_000);
afterAll(async () => api?.close());

/** Alice buys 100 PETR4 at 32.50, but for what `fields` say; `query` goes on the URL. */
const order = (fields: Record<string, unknown>, query = '') =>
  api.app.inject({
    method: 'POST',
    url: `/v1/orders${query}`,
    headers: auth(alice.token),
    payload: {
      accountId: alice.accountId,
      symbol: 'PETR4',
      side: 'BUY',
      type: 'LIMIT',
      quantity: 100,
      price: '32.50',
      ...fields,
    },
  });

const gtdOrder = (expiresAt: unknown) => order({ timeInForce: 'GTD', expiresAt });

const get = (url: string) => api.app.inject({ method: 'GET', url, headers: auth(alice.token) });

describe('timestamps', () => {
  it('takes an offset as the same instant, in UTC', async () => {
    const placed = await gtdOrder('2099-01-01T10:00:00+05:00');
    expect(placed.statusCode, placed.body).toBe(202);
    const [event] = await api.broker.readStream(orderStreamId(placed.json().orderId));
    expect(event?.data).toMatchObject({ expiresAt: '2099-01-01T05:00:00.000Z' });
    const order = await eventually(async () => {
      const read = await get(`/v1/orders/${placed.json().orderId}`);
      return read.statusCode === 200 ? read.json() : undefined;
    });
    expect(order).toMatchObject({ expiresAt: '2099-01-01T05:00:00.000Z' });
  });

  it('describes the format in the OpenAPI document', async () => {
    const document = (await api.app.inject({ method: 'GET', url: '/docs/json' })).json();
    const body = document.paths['/v1/orders'].post.requestBody.content['application/json'].schema;
    expect(body.properties.expiresAt).toMatchObject({
      type: 'string',
      format: 'date-time',
      description: expect.stringContaining('time zone (Z or an offset such as -03:00)'),
    });
    const from = document.paths['/v1/market/{symbol}/candles'].get.parameters.find(
      (parameter: { name: string }) => parameter.name === 'from',
    );
    expect(from).toMatchObject({
      schema: { type: 'string', format: 'date-time' },
      description: expect.stringContaining('time zone (Z or an offset such as -03:00)'),
    });
  });

  it('takes an offset in a query, its + encoded or not (a bare + arrives as a space)', async () => {
    for (const from of [
      '2026-11-27T22:00:00%2B05:00',
      '2026-11-27T22:00:00+05:00',
      '2026-11-27T12:00:00-03:00',
    ]) {
      const candles = await get(`/v1/market/PETR4/candles?from=${from}&to=2026-11-28T00:00:00Z`);
      expect(candles.statusCode, `${from}: ${candles.body}`).toBe(200);
    }
    const state = await get(`/v1/audit/streams/wallet-${alice.accountId}/state?at=2099-01-01T00:00:00+05:00`);
    expect(state.statusCode, state.body).not.toBe(400);
  });

  it('says which end of a candles range is wrong', async () => {
    const reversed = await get('/v1/market/PETR4/candles?from=2026-11-28T00:00:00Z&to=2026-11-27T00:00:00Z');
    expect(reversed.json()).toMatchObject({
      reason: 'INVALID_RANGE',
      detail: '"from" must not be after "to"',
    });
    const future = await get('/v1/market/PETR4/candles?from=2099-01-01T00:00:00Z');
    expect(future.json()).toMatchObject({
      reason: 'INVALID_RANGE',
      detail: '"from" must not be in the future (without "to", it ends now)',
    });
  });

  it('refuses one that is not an ISO 8601 instant with one error naming the field and the format', async () => {
    const format = expect.stringMatching(/ISO 8601 .*time zone.*"2026-11-27T14:00:00Z"/);
    for (const expiresAt of ['tomorrow', '2026-11-27T22:00:00', '2026-11-27', '2026-11-27 22:00:00Z']) {
      const refused = await gtdOrder(expiresAt);
      expect(refused.statusCode, expiresAt).toBe(400);
      expect(refused.json().errors, expiresAt).toEqual([{ field: 'body.expiresAt', message: format }]);
    }
    for (const url of [
      '/v1/market/PETR4/candles?from=tomorrow',
      '/v1/market/PETR4/candles?to=2026-13-01T00:00:00Z',
    ]) {
      const refused = await get(url);
      expect(refused.statusCode, url).toBe(400);
      expect(refused.json().errors, url).toEqual([
        { field: `querystring.${url.includes('from') ? 'from' : 'to'}`, message: format },
      ]);
    }
    const state = await get(`/v1/audit/streams/wallet-${alice.accountId}/state?at=yesterday`);
    // alice is no auditor: the role is checked before the query.
    expect(state.statusCode).toBe(403);
    const admin = await api.adminToken();
    const audited = await api.app.inject({
      method: 'GET',
      url: `/v1/audit/streams/wallet-${alice.accountId}/state?at=yesterday`,
      headers: auth(admin),
    });
    expect(audited.json().errors).toEqual([{ field: 'querystring.at', message: format }]);
  });

  it('refuses an instant outside 1970 to 9999 with one error saying so', async () => {
    for (const expiresAt of ['1969-12-31T23:59:59Z', '9999-12-31T23:00:00-05:00']) {
      const refused = await gtdOrder(expiresAt);
      expect(refused.json().errors, expiresAt).toEqual([
        {
          field: 'body.expiresAt',
          message: 'must be between 1970-01-01T00:00:00Z and 9999-12-31T23:59:59Z',
        },
      ]);
    }
  });
});

describe('validation messages', () => {
  const errorsOf = async (response: Awaited<ReturnType<typeof get>>) => {
    expect(response.statusCode, response.body).toBe(400);
    expect(response.json()).toMatchObject({ reason: 'VALIDATION_FAILED' });
    return response.json().errors as Array<{ field: string; message: string }>;
  };

  it('gives one error per field and problem, however many checks the value fails', async () => {
    const errors = await errorsOf(await order({ quantity: 1e300 }));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ field: 'body.quantity' });
  });

  it('says an amount is not a decimal, or not above zero, once: the second only of a decimal', async () => {
    const decimal = 'must be a positive decimal with at most two decimals, e.g. "32.50"';
    const cases: Array<[string, string[]]> = [
      ['0', ['must be greater than zero']],
      ['0.00', ['must be greater than zero']],
      ['abc', [decimal]],
      ['', [decimal]],
      ['-0', [decimal]],
      ['0'.repeat(21), ['must be at most 20 characters']],
      ['x'.repeat(21), ['must be at most 20 characters', decimal]],
    ];
    for (const [price, messages] of cases)
      expect(await errorsOf(await order({ price })), JSON.stringify(price)).toEqual(
        messages.map((message) => ({ field: 'body.price', message })),
      );
    expect(await errorsOf(await order({ symbol: 'petr4' }))).toEqual([
      { field: 'body.symbol', message: 'must be a B3 ticker such as PETR4 or PETR4F' },
    ]);
  });

  it('says a query parameter was given more than once', async () => {
    expect(await errorsOf(await get('/v1/orders?limit=10&limit=20'))).toEqual([
      { field: 'querystring.limit', message: 'is given 2 times: give it once' },
    ]);
    expect(
      await errorsOf(await get('/v1/market/PETR4/candles?from=2026-11-27T10:00:00Z&interval=1m&interval=5m')),
    ).toEqual([{ field: 'querystring.interval', message: 'is given 2 times: give it once' }]);
  });

  it('says a number in the query is empty, or what it must be', async () => {
    expect(await errorsOf(await get('/v1/orders?limit='))).toEqual([
      { field: 'querystring.limit', message: 'is empty: give a whole number from 1 to 500, or leave it out' },
    ]);
    for (const limit of ['abc', '1.5', '0', '501', '-1', '1e2'])
      expect(await errorsOf(await get(`/v1/orders?limit=${limit}`)), limit).toEqual([
        { field: 'querystring.limit', message: 'must be a whole number from 1 to 500' },
      ]);
    expect(await errorsOf(await get('/v1/market/PETR4/book?depth='))).toEqual([
      { field: 'querystring.depth', message: 'is empty: give a whole number from 1 to 100, or leave it out' },
    ]);
    const page = await get('/v1/orders?limit=007');
    expect(page.statusCode, page.body).toBe(200);
    // The OpenAPI document still says what the parameter takes, and its default.
    const document = (await api.app.inject({ method: 'GET', url: '/docs/json' })).json();
    const limit = document.paths['/v1/orders'].get.parameters.find(
      (parameter: { name: string }) => parameter.name === 'limit',
    );
    expect(limit.schema).toMatchObject({ type: 'integer', minimum: 1, maximum: 500 });
    expect(limit.schema.default).toBe(50);
  });

  it('says in its own words what a field must be, naming each unknown field', async () => {
    expect(await errorsOf(await order({ side: 'HOLD', quantity: 1.5, bogus: 1 }))).toEqual([
      { field: 'body.side', message: 'must be one of "BUY", "SELL"' },
      { field: 'body.quantity', message: 'must be a whole number, not the fraction 1.5' },
      {
        field: 'body.bogus',
        message: 'is not a field of this request: remove it (bodies and queries take only their own fields)',
      },
    ]);
    expect(await errorsOf(await order({ quantity: '100', symbol: undefined }))).toEqual([
      { field: 'body.symbol', message: 'is required' },
      { field: 'body.quantity', message: 'must be a number, not a string' },
    ]);
    expect(await errorsOf(await order({ quantity: -1 }))).toEqual([
      { field: 'body.quantity', message: 'must be greater than 0' },
    ]);
    const register = await api.app.inject({
      method: 'POST',
      url: '/v1/auth/register',
      payload: { username: 'input-short', password: 'short' },
    });
    expect(await errorsOf(register)).toEqual([
      { field: 'body.password', message: 'must be at least 8 characters' },
    ]);
    expect(
      (await errorsOf(await get('/v1/orders?status=WHAT&bogus=1&other=2'))).map(({ field }) => field),
    ).toEqual(['querystring.status', 'querystring.bogus', 'querystring.other']);
  });

  it('refuses a query parameter on a route that takes none, and runs nothing', async () => {
    const before = await api.allEvents();
    expect(await errorsOf(await order({}, '?dryRun=true'))).toEqual([
      {
        field: 'querystring.dryRun',
        message: 'is not a field of this request: remove it (bodies and queries take only their own fields)',
      },
    ]);
    expect((await errorsOf(await get(`/v1/accounts/${alice.accountId}/wallet?x=1`)))[0]).toMatchObject({
      field: 'querystring.x',
    });
    expect(await api.allEvents()).toHaveLength(before.length);
  });

  it('says a field of the wrong type is that only, an empty string empty, and a missing body missing', async () => {
    const register = (payload: string) =>
      api.app.inject({
        method: 'POST',
        url: '/v1/auth/register',
        headers: { 'content-type': 'application/json' },
        payload,
      });
    expect(await errorsOf(await register('{"username":"wrong-type","password":[1]}'))).toEqual([
      { field: 'body.password', message: 'must be a string, not an array' },
    ]);
    const admin = await api.adminToken();
    const halt = await api.app.inject({
      method: 'POST',
      url: '/v1/admin/instruments/PETR4/halt',
      headers: auth(admin),
      payload: { reason: '' },
    });
    expect(await errorsOf(halt)).toEqual([{ field: 'body.reason', message: 'must not be empty' }]);
    for (const payload of [undefined, '']) {
      const deposit = await api.app.inject({
        method: 'POST',
        url: `/v1/accounts/${alice.accountId}/deposits`,
        headers: { ...auth(alice.token), 'content-type': 'application/json' },
        ...(payload === undefined ? {} : { payload }),
      });
      expect(await errorsOf(deposit)).toEqual([
        { field: 'body', message: 'is required: this request takes a JSON object' },
      ]);
    }
    const broken = await register('{"username":');
    expect(broken.json()).toMatchObject({
      status: 400,
      reason: 'INVALID_JSON',
      detail: expect.stringMatching(/^the body is not valid JSON: /),
    });
  });

  it("takes a list's cursor only with the filters it was given for", async () => {
    const cursor = (list: string) => Buffer.from(JSON.stringify({ l: list, a: [5] })).toString('base64url');
    const ownOrders = cursor(`orders?account_id=${alice.accountId}`);
    expect((await get(`/v1/orders?cursor=${ownOrders}`)).statusCode).toBe(200);
    for (const url of [
      `/v1/orders?status=FILLED&cursor=${ownOrders}`,
      `/v1/orders?symbol=PETR4&cursor=${ownOrders}`,
    ])
      expect((await get(url)).json(), url).toMatchObject({ status: 400, reason: 'INVALID_CURSOR' });
    const petr4 = cursor('trades?symbol=PETR4');
    expect((await get(`/v1/trades?symbol=PETR4&cursor=${petr4}`)).statusCode).toBe(200);
    for (const url of [`/v1/trades?symbol=VALE3&cursor=${petr4}`, `/v1/trades?cursor=${petr4}`])
      expect((await get(url)).json(), url).toMatchObject({ status: 400, reason: 'INVALID_CURSOR' });
  });

  it('refuses a bad catalogue query as every list does: limit, cursor, status, unknown keys', async () => {
    for (const limit of ['0', '501', 'abc'])
      expect(await errorsOf(await get(`/v1/instruments?limit=${limit}`)), limit).toEqual([
        { field: 'querystring.limit', message: 'must be a whole number from 1 to 500' },
      ]);
    expect(
      (await errorsOf(await get('/v1/instruments?status=CLOSED&bogus=1'))).map(({ field }) => field),
    ).toEqual(['querystring.status', 'querystring.bogus']);
    // A cursor it did not give out: another list's, edited, or made by hand.
    const cursor = (json: string) => Buffer.from(json).toString('base64url');
    for (const bogus of [
      'not-a-cursor',
      cursor('{"l":"orders","a":[1]}'),
      cursor('{"l":"instruments","a":[1]}'),
      cursor('{"l":"instruments","a":["petr4"]}'),
    ]) {
      const refused = await get(`/v1/instruments?cursor=${bogus}`);
      expect(refused.statusCode, bogus).toBe(400);
      expect(refused.headers['content-type']).toContain('application/problem+json');
      expect(refused.json()).toMatchObject({ reason: 'INVALID_CURSOR' });
    }
    const page = await get(`/v1/instruments?cursor=${cursor('{"l":"instruments","a":["ZZZZ3"]}')}`);
    expect(page.statusCode, page.body).toBe(200);
    expect(page.json()).toEqual({ items: [] });
    // The document says what the list takes.
    const document = (await api.app.inject({ method: 'GET', url: '/docs/json' })).json();
    const parameters = document.paths['/v1/instruments'].get.parameters as Array<{
      name: string;
      schema: Record<string, unknown>;
    }>;
    expect(parameters.find(({ name }) => name === 'limit')?.schema).toMatchObject({
      type: 'integer',
      minimum: 1,
      maximum: 500,
    });
    expect(parameters.find(({ name }) => name === 'status')?.schema).toMatchObject({
      enum: ['OPEN', 'HALTED'],
    });
  });

  it('says a path whose percent-encoding is not UTF-8 is that, and one with a bad % is that', async () => {
    const notUtf8 = await get('/v1/orders/%FF');
    expect(notUtf8.statusCode).toBe(400);
    expect(notUtf8.json()).toMatchObject({
      reason: 'INVALID_URL',
      detail: expect.stringMatching(/^the path's percent-encoded bytes %FF are not valid UTF-8/),
    });
    const badPercent = await get('/v1/orders/%ZZ');
    expect(badPercent.json()).toMatchObject({
      reason: 'INVALID_URL',
      detail: 'the path is not valid percent-encoding: a % needs two hex digits after it ("%ZZ")',
    });
  });
});

describe('usernames', () => {
  const register = (username: unknown) =>
    api.app.inject({
      method: 'POST',
      url: '/v1/auth/register',
      payload: { username, password: 'long-enough' },
    });
  const rule =
    'must be 3 to 32 characters of a–z, 0–9, ".", "-" and "_", starting with a letter or digit (capitals are taken as lower case)';

  it('refuses a username that breaks the rule as a field error, whatever part of the rule it breaks', async () => {
    // The Kelvin sign (U+212A), which JavaScript lower-cases to an ASCII "k", is no letter of the rule.
    for (const username of ['zed!', 'ze', 'z'.repeat(33), '.zed', 'zé', '\u212Aelvin']) {
      const refused = await register(username);
      expect(refused.statusCode, username).toBe(400);
      expect(refused.json(), username).toMatchObject({
        reason: 'VALIDATION_FAILED',
        errors: [{ field: 'body.username', message: rule }],
      });
      expect(refused.json().errors, username).toHaveLength(1);
    }
  });

  it('takes capitals as lower case', async () => {
    const registered = await register('Zed.Trader');
    expect(registered.statusCode, registered.body).toBe(201);
    const login = await api.app.inject({
      method: 'POST',
      url: '/v1/auth/login',
      payload: { username: 'zed.trader', password: 'long-enough' },
    });
    expect(login.statusCode, login.body).toBe(200);
  });
});

describe('bodies', () => {
  const deposit = (headers: Record<string, string>, payload: string) =>
    api.app.inject({
      method: 'POST',
      url: `/v1/accounts/${alice.accountId}/deposits`,
      headers: { ...auth(alice.token), 'content-type': 'application/json', ...headers },
      payload,
    });

  it('says a key that would reach a prototype is not allowed, not that the JSON does not parse', async () => {
    const before = await api.allEvents();
    for (const [payload, field, key] of [
      ['{"__proto__":{"a":1},"amount":"1.00"}', 'body.__proto__', '__proto__'],
      [
        '{"amount":"1.00","constructor":{"prototype":{"a":1}}}',
        'body.constructor.prototype',
        'constructor.prototype',
      ],
      ['{"amount":"1.00","x":[{"y":{"__proto__":null}}]}', 'body.x.0.y.__proto__', '__proto__'],
    ] as const) {
      const refused = await deposit({}, payload);
      expect(refused.statusCode, payload).toBe(400);
      expect(refused.headers['content-type']).toContain('application/problem+json');
      expect(refused.json(), payload).toMatchObject({
        reason: 'VALIDATION_FAILED',
        detail: `the body is JSON, but the key ${key} is not allowed`,
        errors: [
          {
            field,
            message: expect.stringMatching(new RegExp(`^is not allowed: ${key.replace('.', '\\.')}`)),
          },
        ],
      });
    }
    const broken = await deposit({}, '{"amount":');
    expect(broken.json()).toMatchObject({ status: 400, reason: 'INVALID_JSON' });
    // A key merely named constructor is only an unknown field.
    const namedConstructor = await deposit({}, '{"amount":"1.00","constructor":"x"}');
    expect(namedConstructor.json()).toMatchObject({
      reason: 'VALIDATION_FAILED',
      errors: [{ field: 'body.constructor' }],
    });
    expect(await api.allEvents()).toHaveLength(before.length);
  });

  it('refuses a body with a Content-Encoding it does not decode (415), and changes nothing', async () => {
    const before = await api.allEvents();
    for (const coding of ['gzip', 'br', 'identity, gzip']) {
      const refused = await deposit({ 'content-encoding': coding }, '{"amount":"1.00"}');
      expect(refused.statusCode, coding).toBe(415);
      expect(refused.headers['content-type']).toContain('application/problem+json');
      expect(refused.headers['accept-encoding']).toBe('identity');
      expect(refused.json()).toMatchObject({
        reason: 'UNSUPPORTED_CONTENT_ENCODING',
        detail: expect.stringContaining(`the Content-Encoding header says ${JSON.stringify(coding)}`),
      });
    }
    expect(await api.allEvents()).toHaveLength(before.length);
    // identity is no coding at all; and a request without a body has nothing to decode.
    const plain = await deposit({ 'content-encoding': 'identity' }, '{"amount":"1.00"}');
    expect(plain.statusCode, plain.body).toBe(201);
    const read = await api.app.inject({
      method: 'GET',
      url: `/v1/accounts/${alice.accountId}/wallet`,
      headers: { ...auth(alice.token), 'content-encoding': 'gzip' },
    });
    expect(read.statusCode, read.body).toBe(200);
  });
  it('refuses a key given twice in one object, rather than keep the last', async () => {
    const before = await api.allEvents();
    for (const [payload, field] of [
      ['{"amount":"1.00","amount":"1000.00"}', 'body.amount'],
      ['{"amount":"1.00","x":[{"a":1},{"a":1,"\\u0061":2}]}', 'body.x.1.a'],
    ] as const) {
      const refused = await deposit({}, payload);
      expect(refused.statusCode, payload).toBe(400);
      expect(refused.json(), payload).toMatchObject({
        reason: 'VALIDATION_FAILED',
        errors: [{ field, message: 'is given more than once in its object: give it once' }],
      });
    }
    // The same key in two objects, or as a value, is no duplicate: the body is only refused for
    // its unknown field.
    const separate = await deposit({}, '{"amount":"1.00","x":[{"amount":1},{"amount":"amount"}]}');
    expect(separate.json().errors).toEqual([expect.objectContaining({ field: 'body.x' })]);
    expect(await api.allEvents()).toHaveLength(before.length);
  });

  it('takes JSON in UTF-8 only, as RFC 8259 says', async () => {
    const before = await api.allEvents();
    const latin1 = await deposit({ 'content-type': 'application/json; charset=latin1' }, '{"amount":"1.00"}');
    expect(latin1.statusCode).toBe(415);
    expect(latin1.json()).toMatchObject({
      reason: 'UNSUPPORTED_MEDIA_TYPE',
      detail: expect.stringContaining('charset=latin1'),
    });
    expect(await api.allEvents()).toHaveLength(before.length);
    for (const contentType of ['application/json; charset=utf-8', 'application/json;charset="UTF-8"'])
      expect(
        (await deposit({ 'content-type': contentType }, '{"amount":"1.00"}')).statusCode,
        contentType,
      ).toBe(201);
  });
});

describe('text the stores cannot keep', () => {
  it('refuses a NUL or an unpaired surrogate in a text field as a field error, and changes nothing', async () => {
    const admin = await api.adminToken();
    const before = await api.allEvents();
    const asked = [
      ['/v1/auth/login', {}, '{"username":"ab\\u0000c","password":"correct horse"}', 'body.username'],
      ['/v1/admin/instruments/VALE3/halt', auth(admin), '{"reason":"bad\\u0000reason"}', 'body.reason'],
      ['/v1/admin/instruments/VALE3/halt', auth(admin), '{"reason":"bad\\ud800reason"}', 'body.reason'],
      [
        '/v1/admin/instruments',
        auth(admin),
        '{"symbol":"ZZZZ3","name":"x\\udc00y","lotSize":100,"tickSize":"0.01","fractional":true,"referencePrice":"10.00"}',
        'body.name',
      ],
    ] as const;
    for (const [url, headers, payload, field] of asked) {
      const refused = await api.app.inject({
        method: 'POST',
        url,
        headers: { ...headers, 'content-type': 'application/json' },
        payload,
      });
      expect(refused.statusCode, payload).toBe(400);
      expect(refused.json().errors, payload).toEqual([
        { field, message: expect.stringContaining('must not hold a NUL character or an unpaired surrogate') },
      ]);
    }
    expect(await api.allEvents()).toHaveLength(before.length);
    // A surrogate pair (an emoji) is text like any other.
    const halted = await api.app.inject({
      method: 'POST',
      url: '/v1/admin/instruments/VALE3/halt',
      headers: auth(admin),
      payload: { reason: 'news 📰' },
    });
    expect(halted.statusCode, halted.body).toBe(200);
    await api.app.inject({
      method: 'POST',
      url: '/v1/admin/instruments/VALE3/resume',
      headers: auth(admin),
      payload: {},
    });
  });

  it('refuses a correlation id to trace that no request could have had', async () => {
    const admin = await api.adminToken();
    const long = await api.app.inject({
      method: 'GET',
      url: `/v1/audit/trace/${'a'.repeat(129)}`,
      headers: auth(admin),
    });
    expect(long.statusCode).toBe(400);
    expect(long.json().errors).toEqual([
      { field: 'params.correlationId', message: expect.stringContaining('1 to 128') },
    ]);
    const most = await api.app.inject({
      method: 'GET',
      url: `/v1/audit/trace/${'a'.repeat(128)}`,
      headers: auth(admin),
    });
    expect(most.json()).toMatchObject({ status: 404, reason: 'TRACE_NOT_FOUND' });
  });
});

describe('what a refusal says', () => {
  it("gives a rejection's amounts in details as decimal strings, like the rest of the API", async () => {
    const trader = await api.trader('input-details');
    const headers = auth(trader.token);
    await api.app.inject({
      method: 'POST',
      url: `/v1/accounts/${trader.accountId}/deposits`,
      headers,
      payload: { amount: '100.00' },
    });
    const withdrawal = await api.app.inject({
      method: 'POST',
      url: `/v1/accounts/${trader.accountId}/withdrawals`,
      headers,
      payload: { amount: '100.01' },
    });
    expect(withdrawal.statusCode).toBe(422);
    expect(withdrawal.json()).toMatchObject({
      reason: 'INSUFFICIENT_FUNDS',
      details: { requested: '100.01', available: '100.00' },
    });
    // PETR4F's tick is 0.01 in the catalogue: list one with a coarser tick.
    const admin = await api.adminToken();
    const listed = await api.app.inject({
      method: 'POST',
      url: '/v1/admin/instruments',
      headers: auth(admin),
      payload: {
        symbol: 'TICK3',
        name: 'Tick ON',
        lotSize: 100,
        tickSize: '0.05',
        fractional: false,
        referencePrice: '10.00',
      },
    });
    expect(listed.statusCode, listed.body).toBe(201);
    const order = await api.app.inject({
      method: 'POST',
      url: '/v1/orders',
      headers,
      payload: {
        accountId: trader.accountId,
        symbol: 'TICK3',
        side: 'BUY',
        type: 'LIMIT',
        quantity: 100,
        price: '10.03',
      },
    });
    expect(order.statusCode).toBe(422);
    expect(order.json()).toMatchObject({
      reason: 'TICK_SIZE',
      details: { price: '10.03', tickSize: '0.05' },
    });
  });

  it('names the account an unknown account id does not find', async () => {
    const admin = await api.adminToken();
    for (const [method, url, payload] of [
      ['POST', '/v1/accounts/nobody-here/deposits', { amount: '1.00' }],
      ['GET', '/v1/accounts/nobody-here/wallet', undefined],
      ['POST', '/v1/admin/accounts/nobody-here/roles', { role: 'auditor' }],
    ] as const) {
      const missing = await api.app.inject({
        method,
        url,
        headers: auth(admin),
        ...(payload ? { payload } : {}),
      });
      expect(missing.statusCode, `${method} ${url}`).toBe(404);
      expect(missing.json(), `${method} ${url}`).toMatchObject({
        reason: 'ACCOUNT_NOT_FOUND',
        detail: 'no account has the id nobody-here',
        details: { accountId: 'nobody-here' },
      });
    }
  });

  it('says a path parameter is over 200 characters (400), and answers 414 over 300', async () => {
    const long = await get(`/v1/orders/${'x'.repeat(250)}`);
    expect(long.statusCode).toBe(400);
    expect(long.json().errors).toEqual([{ field: 'params.id', message: 'must be at most 200 characters' }]);
    const longer = await get(`/v1/orders/${'x'.repeat(301)}`);
    expect(longer.statusCode).toBe(414);
    expect(longer.json()).toMatchObject({ reason: 'PATH_PARAMETER_TOO_LONG' });
  });
});
