import { randomUUID } from 'node:crypto';
import { connect } from 'node:net';
import type WebSocket from 'ws';
import { MemoryPriceCache } from '../../adapters/memory/price-cache.ts';
import { pgliteClient } from '../../adapters/pglite/client.ts';
import { SqlEventStore } from '../../adapters/postgres/event-store.ts';
import { SqlReadModelStore } from '../../adapters/postgres/read-model-store.ts';
import { accountDecider, accountStreamId } from '../../domain/broker/account/account.ts';
import type { Role as RoleName } from '../../domain/broker/account/events.ts';
import { defaultCatalogue } from '../../domain/broker/instrument/catalogue.ts';
import type { EventStore, RecordedEvent } from '../../domain/shared/event-store.ts';
import { createReadModels } from '../../projections/read-models/queries.ts';
import { MarketDataFeed } from '../market-data/feed.ts';
import { ReferencePriceFollower } from '../market-data/reference-prices.ts';
import { handleCommand } from '../shared/command-handler.ts';
import { startProjections } from '../shared/read-models.ts';
import { brokerStoreSchemas } from './api-events.ts';
import { buildApi } from './app.ts';
import { TokenIssuer } from './auth.ts';
import type { ApiDeps, App } from './context.ts';
import { ensureAdmin, seedInstruments } from './seed.ts';

export const ADMIN_PASSWORD = 'admin-test-password';
export const JWT_SECRET = 'a-test-signing-key-that-is-long-enough-for-hs256';

export interface TestApi {
  app: App;
  broker: EventStore;
  b3: EventStore;
  /** Registers (or logs in) a trader: its account id and bearer token. */
  trader(username: string, password?: string): Promise<{ accountId: string; token: string }>;
  /** A bearer token for the seeded admin. */
  adminToken(): Promise<string>;
  /** Registers an account and makes it an auditor (and nothing else). */
  auditor(username: string): Promise<{ accountId: string; token: string }>;
  /** The quote feed the admin market routes drive (no source: prices only from admins). */
  marketData: MarketDataFeed;
  /** Every event of both stores, for "nothing changed" assertions. */
  allEvents(): Promise<RecordedEvent[]>;
  close(): Promise<void>;
}

/**
 * An API on real stores: PGlite event stores (in memory unless given others), the real read
 * models projected into PGlite, the default catalogue and the admin seeded.
 */
export async function startTestApi(
  options: { broker?: EventStore; b3?: EventStore; readModels?: boolean } & Omit<
    Partial<ApiDeps>,
    'readModels'
  > = {},
): Promise<TestApi> {
  // One in-memory PGlite for everything (a schema each): starting PGlite is the slow part of a test.
  const client = await pgliteClient();
  const broker =
    options.broker ??
    (await SqlEventStore.open({ client, schema: 'broker', schemas: brokerStoreSchemas(), label: 'pglite' }));
  const b3 = options.b3 ?? (await SqlEventStore.open({ client, schema: 'b3', label: 'pglite' }));
  const { broker: _broker, b3: _b3, readModels: _readModels, ...overrides } = options;
  const closers: Array<() => Promise<void>> = [];
  let readModels: ApiDeps['readModels'];
  let projections: ApiDeps['projections'];
  if (options.readModels !== false) {
    const store = await SqlReadModelStore.open({ client, schema: 'readmodels', kind: 'pglite' });
    const stores = { mysql: store, postgres: store, mongo: store };
    readModels = createReadModels(stores);
    const registry = await startProjections({ eventStores: { broker, b3 }, readModelStores: stores });
    projections = registry;
    closers.push(
      () => registry.stop(),
      () => store.close(),
    );
  }
  const tokens = new TokenIssuer(JWT_SECRET, 3600);
  const marketData = new MarketDataFeed({
    store: b3,
    brokerPrices: new MemoryPriceCache(),
    marketPrices: new MemoryPriceCache(),
  });
  // As in `tradecore start`: the listings' and admins' prices reach the feed from the instrument events.
  const referencePrices = new ReferencePriceFollower({ broker, feed: marketData });
  await referencePrices.start();
  closers.push(() => referencePrices.stop());
  const app = await buildApi({
    broker,
    b3,
    tokens,
    readModels,
    projections,
    marketData,
    loginRateLimit: { max: 1000, timeWindowMs: 60_000 },
    ...overrides,
  });
  const context = { broker, b3, tokens, now: () => new Date() };
  await seedInstruments(broker, defaultCatalogue);
  await ensureAdmin(context, ADMIN_PASSWORD);

  const login = async (username: string, password: string) => {
    const response = await app.inject({
      method: 'POST',
      url: '/v1/auth/login',
      payload: { username, password },
    });
    if (response.statusCode !== 200)
      throw new Error(`login ${username}: ${response.statusCode} ${response.body}`);
    const body = response.json() as { token: string; accountId: string };
    return { token: body.token, accountId: body.accountId };
  };
  const trader = async (username: string, password = 'a-good-password') => {
    const response = await app.inject({
      method: 'POST',
      url: '/v1/auth/register',
      payload: { username, password },
    });
    if (response.statusCode !== 201 && response.statusCode !== 409)
      throw new Error(`register ${username}: ${response.statusCode} ${response.body}`);
    return login(username, password);
  };
  const adminToken = async () => (await login('admin', ADMIN_PASSWORD)).token;

  return {
    app,
    marketData,
    broker,
    b3,
    trader,
    adminToken,
    async auditor(username) {
      const { accountId } = await trader(username);
      const admin = await adminToken();
      const headers = { authorization: `Bearer ${admin}` };
      await app.inject({
        method: 'POST',
        url: `/v1/admin/accounts/${accountId}/roles`,
        headers,
        payload: { role: 'auditor' },
      });
      await app.inject({ method: 'DELETE', url: `/v1/admin/accounts/${accountId}/roles/trader`, headers });
      return login(username, 'a-good-password');
    },
    async allEvents() {
      return [...(await broker.readAll({ limit: 1_000_000 })), ...(await b3.readAll({ limit: 1_000_000 }))];
    },
    async close() {
      await app.close();
      for (const close of closers) await close();
      if (!options.broker) await broker.close();
      if (!options.b3) await b3.close();
      await client.close();
    },
  };
}

/**
 * A broker store (in-memory PGlite) holding one account with `roles`: what the services' own admin
 * ports (projector, market-data) check an admin's token against.
 */
export async function brokerWithAccount(
  accountId: string,
  roles: RoleName[],
): Promise<{ broker: EventStore; close(): Promise<void> }> {
  const client = await pgliteClient();
  const broker = await SqlEventStore.open({
    client,
    schema: 'broker',
    schemas: brokerStoreSchemas(),
    label: 'pglite',
  });
  await handleCommand(
    broker,
    accountStreamId(accountId),
    accountDecider,
    {
      type: 'RegisterAccount',
      accountId,
      username: accountId,
      passwordHash: 'unused',
      roles,
      at: new Date().toISOString(),
    },
    { correlationId: 'seed-account', causationId: 'seed-account', actor: 'admin' },
  );
  return {
    broker,
    async close() {
      await broker.close();
      await client.close();
    },
  };
}

/** Disables an account as the admin route does, without an admin's token: its tokens stay signed, its account says no. */
export async function disableAccount(broker: EventStore, accountId: string): Promise<void> {
  await handleCommand(
    broker,
    accountStreamId(accountId),
    accountDecider,
    { type: 'DisableAccount', reason: 'left the firm', disabledBy: 'admin', at: new Date().toISOString() },
    { correlationId: 'disable-account', causationId: 'disable-account', actor: 'admin' },
  );
}

/** Polls until `check` returns a value (read models are eventually consistent). */
export async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/**
 * What a request that arrives while a server closes gets: `first` is sent on a connection (the
 * server holds it until `release`, so the connection is busy, not idle, when the close begins),
 * then `close()` starts, then `second` goes out on the same connection. The second answer's
 * status line, head (lower-cased) and JSON body.
 */
export async function answerWhileClosing(
  port: number,
  requests: { first: string; second: string },
  close: () => Promise<unknown>,
  release: () => void,
): Promise<{ statusLine: string; head: string; body: Record<string, unknown> }> {
  const pause = () => new Promise((resolve) => setTimeout(resolve, 100));
  const socket = connect(port, '127.0.0.1');
  let answer = '';
  socket.on('data', (chunk) => {
    answer += chunk;
  });
  socket.write(requests.first);
  await pause();
  const closed = close();
  await pause();
  socket.write(requests.second);
  await pause();
  const ended = new Promise((resolve) => socket.on('close', resolve));
  release();
  await closed;
  await ended;
  const second = answer.slice(answer.indexOf('HTTP/1.1', 1));
  const end = second.indexOf('\r\n\r\n');
  const head = second.slice(0, end);
  return {
    statusLine: head.split('\r\n')[0]!,
    head: head.toLowerCase(),
    body: JSON.parse(second.slice(end + 4)),
  };
}

/**
 * Opens a WebSocket on `url` through `injectWS`, which sends no Host header of its own (a real
 * client always does, and the API refuses an HTTP/1.1 request without one). `listen` adds listeners
 * before the upgrade's answer is read: the server's first frames (hello, or a close) can arrive
 * with it, before the promise resolves and a listener added then.
 */
export function injectStream(app: App, url: string, token?: string, listen?: (socket: WebSocket) => void) {
  return app.injectWS(
    url,
    { headers: { host: 'localhost', ...(token ? { authorization: `Bearer ${token}` } : {}) } },
    { onInit: listen },
  );
}

/** A B3 trade event as the engine records it (100 shares, the buyer the aggressor), for stream tests. */
export function tradeExecuted(tradeId: string, symbol: string, price: number) {
  return {
    id: randomUUID(),
    type: 'TradeExecuted',
    data: { tradeId, symbol, price, quantity: 100, aggressorSide: 'BUY', at: Date.now() },
    metadata: {
      correlationId: 'c',
      causationId: 'c',
      actor: 'b3-engine',
      occurredAt: new Date().toISOString(),
    },
  };
}
