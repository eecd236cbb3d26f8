import { randomUUID } from 'node:crypto';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { pgliteClient } from '../../adapters/pglite/client.ts';
import { openPgliteEventStore } from '../../adapters/pglite/event-store.ts';
import { SqlEventStore } from '../../adapters/postgres/event-store.ts';
import { accountDecider, accountStreamId } from '../../domain/broker/account/account.ts';
import { handleCommand } from '../shared/command-handler.ts';
import { brokerStoreSchemas } from './api-events.ts';
import { closeGracefully } from './app.ts';
import { hashPassword, TokenIssuer } from './auth.ts';
import type { App } from './context.ts';
import {
  disableAccount,
  injectStream,
  JWT_SECRET,
  startTestApi,
  type TestApi,
  tradeExecuted,
} from './testing.ts';

let api: TestApi;
let alice: { accountId: string; token: string };
let bob: { accountId: string; token: string };

beforeAll(async () => {
  api = await startTestApi({ readModels: false });
  alice = await api.trader('streamer-a');
  bob = await api.trader('streamer-b');
}, 180_000);
afterAll(async () => api?.close());

/** Opens a socket on `app`: its messages as they come, and how it closed, from the upgrade on. */
async function openStream(app: App, url: string, token?: string) {
  const messages: Array<Record<string, unknown>> = [];
  let closed!: Promise<{ code: number; reason: string }>;
  const socket = await injectStream(app, url, token, (socket) => {
    socket.on('message', (data: Buffer) => messages.push(JSON.parse(String(data))));
    closed = new Promise((resolve) =>
      socket.on('close', (code: number, reason: Buffer) => resolve({ code, reason: String(reason) })),
    );
  });
  return { socket, messages, closed };
}

const open = (url: string, token?: string) => openStream(api.app, url, token);

/** How the stream closed, or 'still open' after `timeoutMs`. */
async function closing(stream: Awaited<ReturnType<typeof openStream>>, timeoutMs = 3_000) {
  let timer: NodeJS.Timeout | undefined;
  const open = new Promise<'still open'>((resolve) => {
    timer = setTimeout(() => resolve('still open'), timeoutMs);
  });
  const closed = await Promise.race([stream.closed, open]);
  clearTimeout(timer);
  return closed;
}

async function until(check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
}

describe('live updates over WebSocket', () => {
  it("sends a trader its own order updates, never another trader's", async () => {
    const a = await open('/v1/stream', alice.token);
    const b = await open('/v1/stream', bob.token);
    await api.app.inject({
      method: 'POST',
      url: `/v1/accounts/${alice.accountId}/deposits`,
      headers: { authorization: `Bearer ${alice.token}` },
      payload: { amount: '1000.00' },
    });
    const placed = await api.app.inject({
      method: 'POST',
      url: '/v1/orders',
      headers: { authorization: `Bearer ${alice.token}` },
      payload: {
        accountId: alice.accountId,
        symbol: 'PETR4',
        side: 'BUY',
        type: 'LIMIT',
        quantity: 100,
        price: '1.00',
      },
    });
    const { orderId } = placed.json();
    await until(() => a.messages.some((message) => message.channel === 'order'));
    expect(a.messages.find((message) => message.channel === 'order')).toMatchObject({
      orderId,
      accountId: alice.accountId,
      event: 'OrderPlaced',
      price: '1.00',
    });
    expect(b.messages.filter((message) => message.channel === 'order')).toEqual([]);
    a.socket.terminate();
    b.socket.terminate();
  });

  it('sends the trades of the symbols asked for', async () => {
    const client = await open('/v1/stream?symbols=PETR4', alice.token);
    await until(() => client.messages.length > 0);
    const trade = (symbol: string) => tradeExecuted(`${symbol}-1`, symbol, 3250);
    await api.b3.append('trade-VALE3-1', [trade('VALE3')]);
    await api.b3.append('trade-PETR4-1', [trade('PETR4')]);
    await until(() => client.messages.some((message) => message.channel === 'trade'));
    const trades = client.messages.filter((message) => message.channel === 'trade');
    expect(trades).toEqual([expect.objectContaining({ symbol: 'PETR4', price: '32.50', quantity: 100 })]);
    expect(trades[0]!.at).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    client.socket.terminate();
  });

  it('says hello with each symbol asked for once, however often it was named', async () => {
    const client = await open('/v1/stream?symbols=PETR4,VALE3,PETR4,,VALE3', alice.token);
    await until(() => client.messages.length > 0);
    expect(client.messages[0]).toEqual({
      channel: 'hello',
      symbols: ['PETR4', 'VALE3'],
      accountId: alice.accountId,
    });
    client.socket.terminate();
  });

  it("tells a book's subscribers once when an admin halts and resumes its instrument, with the book's sequence", async () => {
    const standard = await open('/v1/stream?symbols=BBSE3', alice.token);
    const fractional = await open('/v1/stream?symbols=BBSE3F', alice.token);
    const other = await open('/v1/stream?symbols=VALE3', alice.token);
    await until(() => [standard, fractional, other].every((client) => client.messages.length > 0));
    const admin = await api.adminToken();
    const admit = (action: 'halt' | 'resume', payload: object) =>
      api.app.inject({
        method: 'POST',
        url: `/v1/admin/instruments/BBSE3/${action}`,
        headers: { authorization: `Bearer ${admin}` },
        payload,
      });
    // This app runs no engine: the books' events are appended as the engine appends them when the
    // order process brings it the admin's halt and resume (one per book, the halt with its reason).
    const engine = (type: 'TradingHalted' | 'TradingResumed', sequence: number, data: object = {}) =>
      Promise.all(
        ['BBSE3', 'BBSE3F'].map((symbol) =>
          api.b3.append(`book-${symbol}`, [
            {
              id: randomUUID(),
              type,
              data: { sequence, at: Date.now(), ...data },
              metadata: {
                correlationId: 'c',
                causationId: 'c',
                actor: 'b3-engine',
                occurredAt: new Date().toISOString(),
              },
            },
          ]),
        ),
      );
    expect((await admit('halt', { reason: 'circuit breaker' })).statusCode).toBe(200);
    await engine('TradingHalted', 1, { reason: 'circuit breaker' });
    expect((await admit('resume', {})).statusCode).toBe(200);
    await engine('TradingResumed', 2);
    const books = (client: { messages: Array<Record<string, unknown>> }) =>
      client.messages.filter((message) => message.channel === 'book');
    // The books' resumes are the last events: once they are in, nothing else is on its way.
    const resumedAtB3 = (client: { messages: Array<Record<string, unknown>> }) =>
      books(client).some((message) => message.event === 'TradingResumed' && message.sequence !== undefined);
    await until(() => resumedAtB3(standard) && resumedAtB3(fractional));
    for (const [client, symbol] of [
      [standard, 'BBSE3'],
      [fractional, 'BBSE3F'],
    ] as const) {
      // One message per halt and per resume, each from the book itself: its sequence, and the reason.
      expect(books(client)).toEqual([
        {
          channel: 'book',
          symbol,
          event: 'TradingHalted',
          reason: 'circuit breaker',
          sequence: 1,
        },
        { channel: 'book', symbol, event: 'TradingResumed', sequence: 2 },
      ]);
    }
    expect(books(other)).toEqual([]);
    for (const client of [standard, fractional, other]) client.socket.terminate();
  });

  it('refuses anonymous callers and bad symbols', async () => {
    const anonymous = await api.app.inject({ method: 'GET', url: '/v1/stream' });
    expect(anonymous.statusCode).toBe(401);
    const bad = await api.app.inject({
      method: 'GET',
      url: '/v1/stream?symbols=nope',
      headers: { authorization: `Bearer ${alice.token}` },
    });
    expect(bad.statusCode).toBe(400);
  });

  it('refuses a token given both ways, whether either is good or bad', async () => {
    for (const [header, query] of [
      [alice.token, alice.token],
      ['forged', alice.token],
      [alice.token, 'forged'],
      [alice.token, bob.token],
    ]) {
      const both = await api.app.inject({
        method: 'GET',
        url: `/v1/stream?symbols=PETR4&access_token=${query}`,
        headers: { authorization: `Bearer ${header}` },
      });
      expect(both.statusCode).toBe(400);
      expect(both.json()).toMatchObject({
        reason: 'VALIDATION_FAILED',
        errors: [{ field: 'querystring.access_token', message: expect.stringContaining('not both') }],
      });
    }
  });

  it('answers a plain GET (no upgrade) with 426 Upgrade Required, naming what it takes', async () => {
    for (const url of ['/v1/stream', '/v1/stream?symbols=PETR4', `/v1/stream?access_token=${alice.token}`]) {
      const plain = await api.app.inject({
        method: 'GET',
        url,
        headers: url.includes('access_token') ? {} : { authorization: `Bearer ${alice.token}` },
      });
      expect(plain.statusCode, url).toBe(426);
      expect(plain.headers['content-type']).toContain('application/problem+json');
      expect(plain.headers.upgrade).toBe('websocket');
      expect(plain.json()).toMatchObject({
        status: 426,
        title: 'Upgrade Required',
        reason: 'UPGRADE_REQUIRED',
        detail: expect.stringContaining('Upgrade: websocket'),
      });
    }
    // Without a token it is a 401 first, as on every protected route, upgrade or not.
    const anonymous = await api.app.inject({ method: 'GET', url: '/v1/stream' });
    expect(anonymous.statusCode).toBe(401);
    expect(anonymous.headers['content-type']).toContain('application/problem+json');
    expect(anonymous.json()).toMatchObject({ reason: 'UNAUTHENTICATED' });
  });

  it('refuses a ticker that is not listed, naming it, and takes the fractional market of a listed one', async () => {
    const refused = await api.app.inject({
      method: 'GET',
      url: '/v1/stream?symbols=PETR4,ZZZZ3',
      headers: { authorization: `Bearer ${alice.token}` },
    });
    expect(refused.statusCode).toBe(400);
    expect(refused.headers['content-type']).toContain('application/problem+json');
    expect(refused.json()).toMatchObject({
      reason: 'INSTRUMENT_NOT_FOUND',
      detail: 'ZZZZ3 is not listed',
      errors: [{ field: 'querystring.symbols', message: 'ZZZZ3 is not listed' }],
    });
    const fractional = await open('/v1/stream?symbols=PETR4F', alice.token);
    expect(fractional.socket.readyState).toBe(WebSocket.OPEN);
    fractional.socket.terminate();
  });
});

/**
 * Asks for an upgrade over a raw TCP socket: the status line, and whether the server ended the
 * connection by itself within `waitMs` (the client then leaves, as a browser would).
 */
async function upgrade(port: number, path: string, headers: string[] = [], waitMs = 1_000) {
  const socket = connect(port, '127.0.0.1');
  let answer = '';
  socket.on('data', (chunk) => {
    answer += chunk;
  });
  const endedByServer = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), waitMs);
    socket.on('end', () => {
      clearTimeout(timer);
      resolve(true);
    });
    socket.write(
      [
        `GET ${path} HTTP/1.1`,
        'host: 127.0.0.1',
        'connection: Upgrade',
        'upgrade: websocket',
        'sec-websocket-version: 13',
        `sec-websocket-key: ${randomUUID().slice(0, 22)}==`,
        ...headers,
        '',
        '',
      ].join('\r\n'),
    );
  });
  socket.end();
  return { status: answer.split('\r\n', 1)[0], endedByServer };
}

const connections = (api: TestApi) =>
  new Promise<number>((resolve, reject) =>
    api.app.server.getConnections((error, count) => (error ? reject(error) : resolve(count))),
  );

describe('a WebSocket server shutting down', () => {
  it('closes every stream with 1001 (going away) and a reason', async () => {
    const served = await startTestApi({ readModels: false });
    try {
      const { token } = await served.trader('streamer-d');
      await served.app.listen({ port: 0, host: '127.0.0.1' });
      const { port } = served.app.server.address() as { port: number };
      const socket = new WebSocket(`ws://127.0.0.1:${port}/v1/stream?symbols=PETR4&access_token=${token}`);
      await new Promise((resolve) => socket.on('message', resolve));
      const closed = new Promise<{ code: number; reason: string }>((resolve) =>
        socket.on('close', (code, reason) => resolve({ code, reason: String(reason) })),
      );
      const started = Date.now();
      // A grace period longer than the test: the client answers the close, nothing is cut.
      await closeGracefully(served.app, 60_000);
      expect(await closed).toEqual({ code: 1001, reason: 'server shutting down' });
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      await served.close();
    }
  });
});

describe('a WebSocket server on a real port', () => {
  let served: TestApi;
  let port: number;
  let token: string;
  beforeAll(async () => {
    served = await startTestApi({ readModels: false });
    token = (await served.trader('streamer-c')).token;
    await served.app.listen({ port: 0, host: '127.0.0.1' });
    port = (served.app.server.address() as { port: number }).port;
  }, 180_000);
  afterAll(async () => served?.close());

  it('closes the socket of every upgrade it refuses, so it can stop at once', async () => {
    const refused = [
      await upgrade(port, '/v1/stream?symbols=PETR4', ['authorization: Bearer forged']),
      await upgrade(port, '/v1/stream?symbols=PETR4&access_token=forged'),
      await upgrade(port, '/v1/stream?symbols=PETR4'),
      await upgrade(port, '/v1/stream?symbols=nope', [`authorization: Bearer ${token}`]),
    ];
    expect(refused).toEqual([
      { status: 'HTTP/1.1 401 Unauthorized', endedByServer: true },
      { status: 'HTTP/1.1 401 Unauthorized', endedByServer: true },
      { status: 'HTTP/1.1 401 Unauthorized', endedByServer: true },
      { status: 'HTTP/1.1 400 Bad Request', endedByServer: true },
    ]);
    await vi.waitFor(async () => expect(await connections(served)).toBe(0), { timeout: 1_000 });
    // A plain HTTP GET over the wire: 426 with its Upgrade header, and the connection stays usable.
    const plain = await fetch(`http://127.0.0.1:${port}/v1/stream?symbols=PETR4`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(plain.status).toBe(426);
    expect(plain.headers.get('upgrade')).toBe('websocket');
    expect(await plain.json()).toMatchObject({ reason: 'UPGRADE_REQUIRED' });
    const started = Date.now();
    // A grace period longer than the test: only a server with nothing open closes in time.
    await closeGracefully(served.app, 60_000);
    expect(Date.now() - started).toBeLessThan(2_000);
  });
});

describe('streams on a server none has opened yet', () => {
  let served: TestApi;
  let client: Awaited<ReturnType<typeof pgliteClient>>;
  beforeAll(async () => {
    client = await pgliteClient();
    const b3 = await SqlEventStore.open({ client, schema: 'b3', label: 'pglite' });
    // A store slow to tell its head, as a server under load is: streams opened meanwhile all find
    // the hub starting.
    const slowHead = new Proxy(b3, {
      get(target, property) {
        if (property === 'headPosition')
          return async () => {
            await new Promise((resolve) => setTimeout(resolve, 200));
            return target.headPosition();
          };
        const value = Reflect.get(target, property, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    served = await startTestApi({ readModels: false, b3: slowHead });
  }, 180_000);
  afterAll(async () => {
    await served?.close();
    await client?.close();
  });

  const trade = (tradeId: string) => tradeExecuted(tradeId, 'VALE3', 5520);

  const openOn = (url: string, token: string) => openStream(served.app, url, token);

  it('sends each event once to each of several streams opened at the same moment, and to one opened later', async () => {
    const { token } = await served.trader('stream-rush');
    const rush = await Promise.all(
      Array.from({ length: 5 }, () => openOn('/v1/stream?symbols=VALE3', token)),
    );
    // Each stream follows from its hello on.
    await until(() => rush.every((client) => client.messages.length > 0));
    await served.b3.append('trade-VALE3-1', [trade('VALE3-1')]);
    const later = await openOn('/v1/stream?symbols=VALE3', token);
    await until(() => later.messages.length > 0);
    await served.b3.append('trade-VALE3-2', [trade('VALE3-2')]);
    const trades = (client: { messages: Array<Record<string, unknown>> }) =>
      client.messages.filter((message) => message.channel === 'trade').map((message) => message.tradeId);
    await until(() => [...rush, later].every((client) => trades(client).includes('VALE3-2')));
    // Anything sent twice has arrived by now: the second trade came after the first on every stream.
    await new Promise((resolve) => setTimeout(resolve, 100));
    for (const client of rush) expect(trades(client)).toEqual(['VALE3-1', 'VALE3-2']);
    expect(trades(later)).toEqual(['VALE3-2']);
    for (const client of [...rush, later]) client.socket.terminate();
  });

  it('closes a stream with 1008 when its token expires', async () => {
    const { accountId } = await served.trader('stream-expiring');
    const shortLived = new TokenIssuer(JWT_SECRET, 1);
    const { token } = await shortLived.issue({ accountId, username: 'stream-expiring', roles: ['trader'] });
    const client = await openOn('/v1/stream', token);
    expect(await client.closed).toEqual({ code: 1008, reason: 'token expired' });
  });

  it("closes an admin's stream when the account loses the role that opened it, and a disabled account's", async () => {
    const admin = await served.adminToken();
    const grant = async (accountId: string, role: string) =>
      served.app.inject({
        method: 'POST',
        url: `/v1/admin/accounts/${accountId}/roles`,
        headers: { authorization: `Bearer ${admin}` },
        payload: { role },
      });
    const { accountId } = await served.trader('stream-admin');
    expect((await grant(accountId, 'admin')).statusCode).toBe(200);
    const promoted = await served.trader('stream-admin');
    const client = await openOn('/v1/stream', promoted.token);
    await until(() => client.messages.length > 0);
    const revoke = async (role: string) =>
      served.app.inject({
        method: 'DELETE',
        url: `/v1/admin/accounts/${accountId}/roles/${role}`,
        headers: { authorization: `Bearer ${admin}` },
      });
    // Without admin, it is a trader's stream; without trader too, it is none.
    expect((await revoke('admin')).statusCode).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(client.socket.readyState).toBe(WebSocket.OPEN);
    expect((await grant(accountId, 'auditor')).statusCode).toBe(200);
    expect((await revoke('trader')).statusCode).toBe(200);
    expect(await client.closed).toEqual({ code: 1008, reason: 'role revoked' });

    const other = await served.trader('stream-disabled');
    const disabled = await openOn('/v1/stream', other.token);
    await until(() => disabled.messages.length > 0);
    await disableAccount(served.broker, other.accountId);
    expect(await disabled.closed).toEqual({ code: 1008, reason: 'account disabled' });
    // Nor can the same token open another, by either way of giving it.
    const refused = await served.app.inject({
      method: 'GET',
      url: `/v1/stream?access_token=${other.token}`,
    });
    expect(refused.json()).toMatchObject({ status: 401, reason: 'INVALID_TOKEN' });
    const byHeader = await served.app.inject({
      method: 'GET',
      url: '/v1/stream',
      headers: { authorization: `Bearer ${other.token}` },
    });
    expect(byHeader.json()).toMatchObject({ status: 401, reason: 'INVALID_TOKEN' });
  });

  it('closes a stream opened with a token issued before its password changed', async () => {
    const { accountId, token } = await served.trader('stream-password');
    const client = await openOn('/v1/stream', token);
    await until(() => client.messages.length > 0);
    await handleCommand(
      served.broker,
      accountStreamId(accountId),
      accountDecider,
      {
        type: 'ChangePassword',
        passwordHash: await hashPassword('a-new-password'),
        at: new Date().toISOString(),
      },
      { correlationId: 'change-password', causationId: 'change-password', actor: accountId },
    );
    expect(await client.closed).toEqual({ code: 1008, reason: 'password changed' });
  });
});

describe('streams whose account changes while they open', () => {
  let served: TestApi;
  let client: Awaited<ReturnType<typeof pgliteClient>>;
  /** While set, reads of ITUB4's listing wait for it: the stream's look-up of its symbols holds. */
  let held: { reached: () => void; release: Promise<void> } | undefined;
  beforeAll(async () => {
    client = await pgliteClient();
    const broker = await SqlEventStore.open({
      client,
      schema: 'broker',
      schemas: brokerStoreSchemas(),
      label: 'pglite',
    });
    const listing = 'instrument-ITUB4';
    const holding = new Proxy(broker, {
      get(target, property) {
        // Not told the version it wrote: the listing is read from the store, where it is held.
        if (property === 'knownVersion')
          return (streamId: string) =>
            held && streamId === listing ? undefined : target.knownVersion(streamId);
        if (property === 'readStream')
          return async (streamId: string, options?: object) => {
            const hold = streamId === listing ? held : undefined;
            if (hold) {
              hold.reached();
              await hold.release;
            }
            return target.readStream(streamId, options);
          };
        const value = Reflect.get(target, property, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    served = await startTestApi({ readModels: false, broker: holding });
  }, 180_000);
  afterAll(async () => {
    await served?.close();
    await client?.close();
  });

  /** Opens a stream whose token was verified, and runs `change` before it joins the hub. */
  async function openAround(token: string, change: () => Promise<unknown>) {
    let release!: () => void;
    let reached!: () => void;
    const atLookUp = new Promise<void>((resolve) => {
      reached = resolve;
    });
    held = { reached, release: new Promise((resolve) => (release = resolve)) };
    const opening = openStream(served.app, '/v1/stream?symbols=ITUB4', token);
    await atLookUp;
    held = undefined;
    await change();
    release();
    return opening;
  }

  it('closes a stream whose account is disabled after its token was checked, on a hub not started yet', async () => {
    const { accountId, token } = await served.trader('stream-late-disable');
    const stream = await openAround(token, () => disableAccount(served.broker, accountId));
    expect(await closing(stream)).toEqual({ code: 1008, reason: 'account disabled' });
    expect(stream.messages).toEqual([]);
  });

  it('closes a stream whose password changes, or whose last stream role is revoked, after its token was checked', async () => {
    const other = await served.trader('stream-bystander');
    const bystander = await openStream(served.app, '/v1/stream', other.token);
    await until(() => bystander.messages.length > 0);
    const changer = await served.trader('stream-late-password');
    const changed = await openAround(changer.token, () =>
      handleCommand(
        served.broker,
        accountStreamId(changer.accountId),
        accountDecider,
        {
          type: 'ChangePassword',
          passwordHash: 'unused',
          at: new Date().toISOString(),
        },
        { correlationId: 'change-password', causationId: 'change-password', actor: changer.accountId },
      ),
    );
    expect(await closing(changed)).toEqual({ code: 1008, reason: 'password changed' });

    const admin = await served.adminToken();
    const revoked = await served.trader('stream-late-revoke');
    const headers = { authorization: `Bearer ${admin}` };
    const revoking = await openAround(revoked.token, async () => {
      await served.app.inject({
        method: 'POST',
        url: `/v1/admin/accounts/${revoked.accountId}/roles`,
        headers,
        payload: { role: 'auditor' },
      });
      await served.app.inject({
        method: 'DELETE',
        url: `/v1/admin/accounts/${revoked.accountId}/roles/trader`,
        headers,
      });
    });
    expect(await closing(revoking)).toEqual({ code: 1008, reason: 'role revoked' });
    // The hub was running all along, and the streams the changes did not concern stay open.
    expect(bystander.socket.readyState).toBe(WebSocket.OPEN);
    bystander.socket.terminate();
  });
});

describe('streams while a read model lags', () => {
  let served: TestApi;
  /** The read models held back: a message's wait for one ends when it is let go. */
  const stuck = new Map<string, { applied: Promise<void>; release: () => void }>();
  const hold = (name: string) => {
    let release!: () => void;
    const applied = new Promise<void>((resolve) => {
      release = resolve;
    });
    stuck.set(name, { applied, release });
  };
  const letGo = (name: string) => {
    stuck.get(name)?.release();
    stuck.delete(name);
  };
  beforeAll(async () => {
    // As a projector blocked on its store tells it: still running, its events not applied.
    const projections = {
      status: () => ({}),
      rebuild: async () => ({}),
      stop: async () => {},
      applied: (name: string) => stuck.get(name)?.applied,
    };
    served = await startTestApi({ readModels: false, projections });
  }, 180_000);
  afterAll(async () => served?.close());

  const place = async (trader: { accountId: string; token: string }) => {
    const placed = await served.app.inject({
      method: 'POST',
      url: '/v1/orders',
      headers: { authorization: `Bearer ${trader.token}` },
      payload: {
        accountId: trader.accountId,
        symbol: 'PETR4',
        side: 'BUY',
        type: 'LIMIT',
        quantity: 100,
        price: '1.00',
      },
    });
    expect(placed.statusCode, placed.body).toBe(202);
  };
  const trade = (tradeId: string) => tradeExecuted(tradeId, 'PETR4', 3000);

  it('holds the orders and the trades back by one wait for a stuck read model, not by one a message', async () => {
    const trader = await served.trader('stream-lagging');
    const stream = await openStream(served.app, '/v1/stream?symbols=PETR4', trader.token);
    await until(() => stream.messages.length > 0);
    hold('orders');
    hold('trades');
    const count = 10;
    const started = Date.now();
    for (let order = 0; order < count; order += 1) await place(trader);
    for (let index = 0; index < count; index += 1)
      await served.b3.append(`trade-PETR4-lag-${index}`, [trade(`PETR4-lag-${index}`)]);
    const of = (channel: string) => stream.messages.filter((message) => message.channel === channel);
    await until(() => of('order').length === count && of('trade').length === count, 3 * count * 1_000);
    // Waited for one at a time, each stuck model would take 2 s a message: 20 s each. One wait
    // each is about 2 s; the bound leaves a busy machine room.
    expect([of('order').length, of('trade').length]).toEqual([count, count]);
    expect(Date.now() - started).toBeLessThan(10_000);
    letGo('orders');
    letGo('trades');
    stream.socket.terminate();
  });

  it("closes a disabled account's stream at once while its order messages wait for a stuck read model", async () => {
    const trader = await served.trader('stream-lagging-disabled');
    const stream = await openStream(served.app, '/v1/stream', trader.token);
    await until(() => stream.messages.length > 0);
    hold('orders');
    await place(trader);
    await disableAccount(served.broker, trader.accountId);
    // The order's message is still waiting (2 s): the disable does not queue behind it.
    expect(await closing(stream, 1_500)).toEqual({ code: 1008, reason: 'account disabled' });
    expect(stream.messages.filter((message) => message.channel === 'order')).toEqual([]);
    letGo('orders');
  });
});

describe('streams on the embedded event store (it tells its followers of an append first)', () => {
  it('closes the streams of the tokens a password change through the API revokes, and keeps the new one', async () => {
    const broker = await openPgliteEventStore({ schema: 'broker', schemas: brokerStoreSchemas() });
    const embedded = await startTestApi({ readModels: false, broker });
    try {
      const { accountId, token } = await embedded.trader('stream-embedded');
      const bearer = { authorization: `Bearer ${token}` };
      // The account is in the API's cache, as after any request.
      expect(
        (await embedded.app.inject({ method: 'GET', url: '/v1/auth/me', headers: bearer })).statusCode,
      ).toBe(200);
      const old = await injectStream(embedded.app, '/v1/stream', token);
      const closed = new Promise<{ code: number; reason: string }>((resolve) =>
        old.on('close', (code: number, reason: Buffer) => resolve({ code, reason: String(reason) })),
      );
      const changed = await embedded.app.inject({
        method: 'POST',
        url: `/v1/accounts/${accountId}/password`,
        headers: bearer,
        payload: { currentPassword: 'a-good-password', newPassword: 'a-new-password' },
      });
      expect(changed.statusCode, changed.body).toBe(200);
      const fresh = await injectStream(embedded.app, '/v1/stream', changed.json().token);
      let freshClosed = false;
      fresh.on('close', () => {
        freshClosed = true;
      });
      expect(await closed).toEqual({ code: 1008, reason: 'password changed' });
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(freshClosed).toBe(false);
      fresh.terminate();
    } finally {
      await embedded.close();
      await broker.close();
    }
  });
});
