import { connect } from 'node:net';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redactUrl } from './redact.ts';
import { MAX_STREAMS_PER_ACCOUNT, STREAM_BUFFER_LIMIT_BYTES } from './stream.ts';
import { answerWhileClosing, injectStream, startTestApi, type TestApi, tradeExecuted } from './testing.ts';

/** Log lines as the process would print them, parsed. */
const lines: Array<Record<string, unknown>> = [];
const sink = new Writable({
  write(chunk, _encoding, done) {
    for (const line of String(chunk).split('\n')) if (line.trim() !== '') lines.push(JSON.parse(line));
    done();
  },
});

let api: TestApi;
let alice: { accountId: string; token: string };
const auth = (token: string) => ({ authorization: `Bearer ${token}` });

async function until(condition: () => boolean | Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

beforeAll(async () => {
  api = await startTestApi({ readModels: false, logger: pino({ level: 'info' }, sink) });
  alice = await api.trader('edge-alice');
}, 180_000);
afterAll(async () => api?.close());

describe('a token in the query (?access_token=, for browser WebSockets)', () => {
  it('is never written to the logs, on the stream route or any other', async () => {
    lines.length = 0;
    for (const url of [
      `/v1/stream?symbols=PETR4&access_token=${alice.token}`,
      `/v1/orders?access_token=${alice.token}`,
      `/v1/orders?access%5Ftoken=${alice.token}&limit=5`,
    ])
      await api.app.inject({ method: 'GET', url });
    const incoming = lines.filter((line) => line.msg === 'incoming request');
    expect(incoming.map((line) => (line.req as { url: string }).url)).toEqual([
      '/v1/stream?symbols=PETR4&access_token=[redacted]',
      '/v1/orders?access_token=[redacted]',
      '/v1/orders?access%5Ftoken=[redacted]&limit=5',
    ]);
    const logged = lines.map((line) => JSON.stringify(line)).join('\n');
    // A JWT's signature: the part that makes it a credential.
    expect(logged).not.toContain(alice.token.split('.')[2]);
  });

  it('is not echoed in a problem either', async () => {
    const refused = await api.app.inject({ method: 'GET', url: '/v1/orders?access_token=forged-token' });
    expect(refused.statusCode).toBe(401);
    expect(refused.json().instance).toBe('/v1/orders?access_token=[redacted]');
  });

  it('leaves other query parameters and URLs without a query as they are', () => {
    expect(redactUrl('/v1/orders')).toBe('/v1/orders');
    expect(redactUrl('/v1/orders?limit=5&status=NEW')).toBe('/v1/orders?limit=5&status=NEW');
    expect(redactUrl('/v1/stream?ACCESS_TOKEN=x&symbols=PETR4')).toBe(
      '/v1/stream?ACCESS_TOKEN=[redacted]&symbols=PETR4',
    );
  });

  it('redacts a token after a `;` too, which the parser takes as part of the value before it', () => {
    expect(redactUrl('/v1/stream?symbols=PETR4;access_token=eyJ.x.y;b=1&limit=5')).toBe(
      '/v1/stream?symbols=PETR4;access_token=[redacted];b=1&limit=5',
    );
    expect(redactUrl('/v1/orders?status=NEW;x=1')).toBe('/v1/orders?status=NEW;x=1');
  });
});

describe('what the router refuses before any route runs', () => {
  it('answers a path parameter over 300 characters with a problem (414)', async () => {
    const response = await api.app.inject({
      method: 'GET',
      url: `/v1/orders/${'x'.repeat(400)}`,
      headers: { authorization: `Bearer ${alice.token}`, 'x-correlation-id': 'too-long-1' },
    });
    expect(response.statusCode).toBe(414);
    expect(response.headers['content-type']).toContain('application/problem+json');
    expect(response.headers['x-correlation-id']).toBe('too-long-1');
    expect(response.json()).toMatchObject({
      status: 414,
      title: 'URI Too Long',
      reason: 'PATH_PARAMETER_TOO_LONG',
      detail: 'a path parameter is over 300 characters',
      correlationId: 'too-long-1',
    });
  });

  it('answers a path that is not valid percent-encoding with a problem (400)', async () => {
    const response = await api.app.inject({ method: 'GET', url: '/v1/orders/%ZZ' });
    expect(response.statusCode).toBe(400);
    expect(response.headers['content-type']).toContain('application/problem+json');
    expect(response.json()).toMatchObject({
      status: 400,
      reason: 'INVALID_URL',
      instance: '/v1/orders/%ZZ',
      correlationId: expect.any(String),
    });
  });

  it('answers a method a route does not take with 405 and the methods it does (Allow)', async () => {
    const response = await api.app.inject({
      method: 'PUT',
      url: '/v1/orders/some-order?x=1',
      headers: { authorization: `Bearer ${alice.token}` },
    });
    expect(response.statusCode).toBe(405);
    expect(response.headers['content-type']).toContain('application/problem+json');
    expect(response.headers.allow).toBe('DELETE, GET, HEAD');
    expect(response.json()).toMatchObject({
      status: 405,
      title: 'Method Not Allowed',
      reason: 'METHOD_NOT_ALLOWED',
      detail: '/v1/orders/some-order takes DELETE, GET, HEAD, not PUT',
      allow: ['DELETE', 'GET', 'HEAD'],
    });
    // A POST-only route, and one that takes nothing but a WebSocket's GET.
    const login = await api.app.inject({ method: 'GET', url: '/v1/auth/login' });
    expect([login.statusCode, login.headers.allow]).toEqual([405, 'POST']);
    const stream = await api.app.inject({ method: 'DELETE', url: '/v1/stream' });
    expect([stream.statusCode, stream.headers.allow]).toEqual([405, 'GET, HEAD']);
  });

  it('answers a path no route has with 404, whatever the method', async () => {
    for (const method of ['GET', 'PUT'] as const) {
      const response = await api.app.inject({ method, url: '/v1/ordres/some-order' });
      expect(response.statusCode).toBe(404);
      expect(response.headers.allow).toBeUndefined();
      expect(response.json()).toMatchObject({
        reason: 'ROUTE_NOT_FOUND',
        detail: `no route ${method} /v1/ordres/some-order`,
      });
    }
  });
});

/** Sends `request` as raw bytes and reads the answer until the server closes the connection. */
async function raw(port: number, request: string): Promise<{ head: string[]; body: string }> {
  const socket = connect(port, '127.0.0.1');
  let answer = '';
  socket.on('data', (chunk) => {
    answer += chunk;
  });
  await new Promise<void>((resolve) => {
    socket.on('close', () => resolve());
    socket.on('error', () => resolve());
    socket.write(request);
  });
  const [head = '', body = ''] = answer.split('\r\n\r\n');
  return { head: head.split('\r\n'), body };
}

describe('what the HTTP parser refuses, on a real port', () => {
  let served: TestApi;
  let port: number;
  let held: Promise<void> = Promise.resolve();
  const servedLines: Array<Record<string, unknown>> = [];
  beforeAll(async () => {
    const servedSink = new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n'))
          if (line.trim() !== '') servedLines.push(JSON.parse(line));
        done();
      },
    });
    served = await startTestApi({ readModels: false, logger: pino({ level: 'info' }, servedSink) });
    // `?hold` requests wait for the test that holds them.
    served.app.addHook('onRequest', async (request) => {
      if (request.url === '/health/live?hold') await held;
    });
    await served.app.listen({ port: 0, host: '127.0.0.1' });
    port = (served.app.server.address() as { port: number }).port;
  }, 180_000);
  afterAll(async () => served?.close());

  it('answers a URL over 16 KiB with a problem (431) that says so', async () => {
    const { head, body } = await raw(
      port,
      `GET /v1/trades?symbol=${'A'.repeat(17 * 1024)} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n`,
    );
    expect(head[0]).toBe('HTTP/1.1 431 Request Header Fields Too Large');
    expect(JSON.parse(body).detail).toBe('the request line (its URL) and headers are over 16 KiB');
  });

  it('answers headers over 16 KiB with a problem (431)', async () => {
    const { head, body } = await raw(
      port,
      `GET /health/live HTTP/1.1\r\nhost: 127.0.0.1\r\nx-big: ${'a'.repeat(17 * 1024)}\r\n\r\n`,
    );
    expect(head[0]).toBe('HTTP/1.1 431 Request Header Fields Too Large');
    expect(head).toContain('content-type: application/problem+json');
    expect(JSON.parse(body)).toMatchObject({
      status: 431,
      reason: 'HEADERS_TOO_LARGE',
      correlationId: expect.any(String),
    });
  });

  it('answers an HTTP/1.1 request without Host, and an Expect it does not know, with problems', async () => {
    const noHost = await raw(port, 'GET /health/live HTTP/1.1\r\nconnection: close\r\n\r\n');
    expect(noHost.head[0]).toBe('HTTP/1.1 400 Bad Request');
    expect(noHost.head).toContain('content-type: application/problem+json; charset=utf-8');
    expect(JSON.parse(noHost.body)).toMatchObject({ status: 400, reason: 'HOST_REQUIRED' });
    const expectation = await raw(
      port,
      'GET /health/live HTTP/1.1\r\nhost: 127.0.0.1\r\nexpect: bogus\r\nconnection: close\r\n\r\n',
    );
    expect(expectation.head[0]).toBe('HTTP/1.1 417 Expectation Failed');
    expect(JSON.parse(expectation.body)).toMatchObject({
      status: 417,
      title: 'Expectation Failed',
      reason: 'EXPECTATION_FAILED',
      correlationId: expect.any(String),
    });
    // HTTP/1.0 has no Host to require.
    const old = await raw(port, 'GET /health/live HTTP/1.0\r\n\r\n');
    expect(old.head[0]).toMatch(/^HTTP\/1.1 200/);
  });

  it('answers a request that is not HTTP with a problem (400)', async () => {
    const { head, body } = await raw(port, 'NOT HTTP AT ALL\r\n\r\n');
    expect(head[0]).toBe('HTTP/1.1 400 Bad Request');
    expect(JSON.parse(body)).toMatchObject({ status: 400, reason: 'MALFORMED_REQUEST' });
  });

  it('answers a request that arrives while it shuts down with a problem (503)', async () => {
    let release = () => {};
    held = new Promise<void>((resolve) => {
      release = resolve;
    });
    // The first request is held open, so the connection is busy when the shutdown starts and the
    // second one, sent on it after that, reaches the server.
    const {
      statusLine,
      head,
      body: refusal,
    } = await answerWhileClosing(
      port,
      {
        first: 'GET /health/live?hold HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n',
        second: 'GET /health/live HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n',
      },
      () => served.app.close(),
      release,
    );
    expect(statusLine).toBe('HTTP/1.1 503 Service Unavailable');
    expect(head).toContain('content-type: application/problem+json');
    expect(refusal).toMatchObject({
      reason: 'SHUTTING_DOWN',
      correlationId: expect.stringMatching(/.+/),
    });
    // An expected refusal: logged at info like a 4xx, without a stack, never as an error.
    const logged = servedLines.filter((line) => line.correlationId === refusal.correlationId);
    expect(logged.find((line) => line.msg === 'request refused')).toMatchObject({
      level: 30,
      reason: 'SHUTTING_DOWN',
      status: 503,
    });
    expect(logged.filter((line) => Number(line.level) >= 40)).toEqual([]);
    expect(JSON.stringify(logged)).not.toContain('"stack"');
  });
});

describe('streams that misbehave', () => {
  it("ends a stream whose client sends a frame over 4 KiB with 1009, logged as the client's doing, not an error", async () => {
    lines.length = 0;
    const socket = await injectStream(api.app, '/v1/stream', alice.token);
    const closed = new Promise<number>((resolve) => socket.on('close', (code: number) => resolve(code)));
    socket.send('x'.repeat(5_000));
    expect(await closed).toBe(1009);
    await until(() => lines.some((line) => line.msg === 'stream ended by the client'));
    expect(lines.find((line) => line.msg === 'stream ended by the client')).toMatchObject({
      level: 30,
      code: 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH',
    });
    expect(lines.filter((line) => Number(line.level) >= 50)).toEqual([]);
  });

  it('ends with 1009 as the client sees it, even when the server still has messages on their way to it', async () => {
    const socket = await injectStream(api.app, '/v1/stream?symbols=PETR4', alice.token);
    const closed = new Promise<number>((resolve) => socket.on('close', (code: number) => resolve(code)));
    // A client that does not read for a while, with trades on their way to it: the close frame
    // queues behind them.
    socket.pause();
    const trades = Array.from({ length: 400 }, (_, index) =>
      tradeExecuted(`PETR4-edge-${index}`, 'PETR4', 3000),
    );
    await api.b3.append('trade-PETR4-edge', trades);
    await until(() => [...api.app.websocketServer.clients].some((server) => server.bufferedAmount > 0));
    socket.send('x'.repeat(1 << 20));
    await new Promise((resolve) => setTimeout(resolve, 200));
    socket.resume();
    expect(await closed).toBe(1009);
  });

  it('closes a stream whose client does not read (1013), holding no more than its limit for it', async () => {
    lines.length = 0;
    const slow = await api.trader('edge-slow');
    const paused = await injectStream(api.app, '/v1/stream?symbols=VALE3', slow.token);
    const closed = new Promise<{ code: number; reason: string }>((resolve) =>
      paused.on('close', (code: number, reason: Buffer) => resolve({ code, reason: String(reason) })),
    );
    paused.pause();
    let last = '';
    const reader = await injectStream(api.app, '/v1/stream?symbols=VALE3', alice.token, (socket) =>
      socket.on('message', (data: Buffer) => {
        last = String(JSON.parse(String(data)).tradeId);
      }),
    );
    // About 1.6 MB of trade messages (a long trade id pads each to over 1 KB), 50 at a time, the
    // next once the reader has them: it keeps up, the paused client does not.
    const count = 1_500;
    const padding = 'x'.repeat(1_000);
    const trade = (index: number) => tradeExecuted(`VALE3-${padding}-${index}`, 'VALE3', 5520);
    for (let first = 0; first < count; first += 50) {
      const batch = Array.from({ length: 50 }, (_, index) => trade(first + index));
      await api.b3.append(`trade-VALE3-slow-${first}`, batch);
      await until(() => last === `VALE3-${padding}-${first + 49}`);
    }
    // Every message has been sent: what the server holds for the paused client is at most its limit and a message.
    const held = Math.max(...[...api.app.websocketServer.clients].map((server) => server.bufferedAmount));
    expect(held).toBeLessThan(STREAM_BUFFER_LIMIT_BYTES + 2_000);
    paused.resume();
    expect(await closed).toEqual({
      code: 1013,
      reason: 'fell behind: the client did not read its messages in time',
    });
    const cut = lines.filter((line) => line.msg === 'stream closed: its client fell behind');
    expect(cut).toEqual([expect.objectContaining({ level: 30, accountId: slow.accountId })]);
    expect(reader.readyState).toBe(reader.OPEN);
    reader.terminate();
  }, 60_000);

  it(`refuses an account its ${MAX_STREAMS_PER_ACCOUNT + 1}th stream at once (429), and takes one again when one closes`, async () => {
    const bob = await api.trader('edge-bob');
    const streams = await Promise.all(
      Array.from({ length: MAX_STREAMS_PER_ACCOUNT }, () => injectStream(api.app, '/v1/stream', bob.token)),
    );
    const refused = await api.app.inject({
      method: 'GET',
      url: '/v1/stream',
      headers: auth(bob.token),
    });
    expect(refused.statusCode).toBe(429);
    expect(refused.json()).toMatchObject({ reason: 'TOO_MANY_STREAMS' });
    // Another account is not held back by bob's.
    expect(
      (await api.app.inject({ method: 'GET', url: '/v1/stream', headers: auth(alice.token) })).statusCode,
    ).toBe(426);
    streams[0]!.terminate();
    await until(
      async () =>
        (await api.app.inject({ method: 'GET', url: '/v1/stream', headers: auth(bob.token) })).statusCode ===
        426,
    );
    for (const stream of streams) stream.terminate();
  });
});
