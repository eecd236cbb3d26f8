import { randomUUID } from 'node:crypto';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pgliteClient } from '../../adapters/pglite/client.ts';
import { SqlEventStore } from '../../adapters/postgres/event-store.ts';
import { instrumentDecider, instrumentStreamId } from '../../domain/broker/instrument/instrument.ts';
import { orderDecider, orderStreamId } from '../../domain/broker/order/order.ts';
import { loadAggregate } from '../../domain/shared/aggregate.ts';
import type { AppendResult, EventStore, ExpectedVersion, NewEvent } from '../../domain/shared/event-store.ts';
import { aggregateOf, handleCommand } from '../shared/command-handler.ts';
import { brokerStoreSchemas, idempotencyStreamId } from './api-events.ts';
import { buildApi } from './app.ts';
import { TokenIssuer } from './auth.ts';
import type { App } from './context.ts';
import { fingerprintOf, IDEMPOTENCY_CLAIM_LEASE_MS } from './idempotency.ts';
import { PlaceOrderBody } from './schemas.ts';
import { eventually, JWT_SECRET, startTestApi, type TestApi } from './testing.ts';

/**
 * A request that crashed (`kill -9`) between claiming its Idempotency-Key and recording its answer
 * leaves the claim alone in `idempotency-{actor}-{key}`. The crash is a second API process on the
 * same store whose appends of one event type never return (and are not written) until the test
 * lets them fail (the process died) or go through (the process was only slow).
 */

let client: Awaited<ReturnType<typeof pgliteClient>>;
let broker: SqlEventStore;
let api: TestApi;
let clock = Date.now();
const now = () => new Date(clock);

beforeAll(async () => {
  client = await pgliteClient();
  broker = await SqlEventStore.open({
    client,
    schema: 'broker',
    schemas: brokerStoreSchemas(),
    label: 'pglite',
  });
  api = await startTestApi({ broker, readModels: false, now });
}, 180_000);
afterAll(async () => {
  await api?.close();
  await broker?.close();
  await client?.close();
});

/** `store`, but its appends of `type` wait for `resume` (then are written) or `fail`. */
function stalledAt(store: EventStore, type: string) {
  const held: Array<{ resume: () => void; fail: () => void }> = [];
  const stalled = new Proxy(store, {
    get(target, property) {
      if (property === 'append')
        return (streamId: string, events: NewEvent[], options?: { expectedVersion?: ExpectedVersion }) =>
          events.some((event) => event.type === type)
            ? new Promise<AppendResult>((resolve, reject) =>
                held.push({
                  resume: () => resolve(target.append(streamId, events, options)),
                  fail: () => reject(new Error('the process died')),
                }),
              )
            : target.append(streamId, events, options);
      const value = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return {
    store: stalled,
    held: () => held.length,
    resume: () => {
      for (const append of held.splice(0)) append.resume();
    },
    fail: () => {
      for (const append of held.splice(0)) append.fail();
    },
  };
}

/** `store`, but its appends of `type` lose their answer: written, then a failure (a connection lost). */
function answerLostAt(store: EventStore, type: string): EventStore {
  return new Proxy(store, {
    get(target, property) {
      if (property === 'append')
        return async (
          streamId: string,
          events: NewEvent[],
          options?: { expectedVersion?: ExpectedVersion },
        ) => {
          const appended = await target.append(streamId, events, options);
          if (events.some((event) => event.type === type)) throw new Error('connection lost');
          return appended;
        };
      const value = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/** An API process that stalls at the append of `type`: the request in flight there is the crashed one. */
async function crashingProcess(type: string) {
  const appends = stalledAt(broker, type);
  const app = await buildApi({
    broker: appends.store,
    b3: api.b3,
    tokens: new TokenIssuer(JWT_SECRET, 3600),
    now,
  });
  return {
    app,
    appends,
    /** Sends a request, and waits until it stopped at the stalled append: its answer is to come. */
    async crashDuring(request: () => Promise<LightMyRequestResponse>) {
      const before = appends.held();
      const answer = request();
      await eventually(async () => (appends.held() > before ? true : undefined));
      return { answer };
    },
    async close() {
      appends.fail();
      await app.close();
    },
  };
}

const post = (
  app: App,
  url: string,
  payload: object,
  headers: Record<string, string>,
): Promise<LightMyRequestResponse> => app.inject({ method: 'POST', url, payload, headers });

const order = (accountId: string) => ({
  accountId,
  symbol: 'ITUB4',
  side: 'BUY',
  type: 'LIMIT',
  quantity: 100,
  price: '35.10',
});

async function placedOrderIds(accountId: string): Promise<string[]> {
  return (await broker.readAll({ limit: 1_000_000 }))
    .filter((event) => event.type === 'OrderPlaced')
    .map((event) => event.data as { orderId: string; accountId: string })
    .filter((data) => data.accountId === accountId)
    .map((data) => data.orderId);
}

async function keyEvents(actor: string, key: string): Promise<string[]> {
  return (await broker.readStream(idempotencyStreamId(actor, key))).map((event) => event.type);
}

/** Moves the API's clock on to the moment the claims made so far may be taken over. */
const leasePasses = () => {
  clock += IDEMPOTENCY_CLAIM_LEASE_MS;
};

describe('an Idempotency-Key whose request crashed', () => {
  it('answers 409 with retry-after within the lease, then the order the crashed request placed, and places none again', async () => {
    const trader = await api.trader('crash-after-place');
    const headers = { authorization: `Bearer ${trader.token}`, 'idempotency-key': 'order-1' };
    const crashed = await crashingProcess('IdempotencyKeyCompleted');
    try {
      const inFlight = await crashed.crashDuring(() =>
        post(crashed.app, '/v1/orders', order(trader.accountId), headers),
      );
      const placed = await placedOrderIds(trader.accountId);
      expect(placed).toHaveLength(1);

      const early = await post(api.app, '/v1/orders', order(trader.accountId), headers);
      expect(early.statusCode).toBe(409);
      expect(early.json()).toMatchObject({ reason: 'IDEMPOTENCY_KEY_IN_PROGRESS' });
      expect(early.headers['retry-after']).toBe('1');
      clock += 10_000;
      const later = await post(api.app, '/v1/orders', order(trader.accountId), headers);
      expect(later.statusCode).toBe(409);
      // As long as the claim is old, and never past its lease.
      expect(later.headers['retry-after']).toBe('10');
      clock += 19_000;
      expect(
        (await post(api.app, '/v1/orders', order(trader.accountId), headers)).headers['retry-after'],
      ).toBe('1');

      clock += 1_000;
      const retried = await post(api.app, '/v1/orders', order(trader.accountId), headers);
      expect(retried.statusCode).toBe(202);
      expect(retried.json()).toEqual({ orderId: placed[0], status: 'PENDING_NEW' });
      expect(retried.headers.location).toBe(`/v1/orders/${placed[0]}`);
      expect(retried.headers['idempotent-replayed']).toBe('true');
      expect(await placedOrderIds(trader.accountId)).toEqual(placed);
      expect(await keyEvents(trader.accountId, 'order-1')).toEqual([
        'IdempotencyKeyClaimed',
        'IdempotencyKeyClaimed',
        'IdempotencyKeyCompleted',
      ]);

      // The crashed request's process is gone: nothing of it changes the key.
      crashed.appends.fail();
      expect((await inFlight.answer).statusCode).toBe(500);
      const again = await post(api.app, '/v1/orders', order(trader.accountId), headers);
      expect(again.statusCode).toBe(202);
      expect(again.json()).toEqual(retried.json());
      expect(await keyEvents(trader.accountId, 'order-1')).toHaveLength(3);
    } finally {
      await crashed.close();
    }
  });

  it('places the order once when the crashed request had not, even if that request wakes up after the lease', async () => {
    const trader = await api.trader('crash-before-place');
    const headers = { authorization: `Bearer ${trader.token}`, 'idempotency-key': 'order-1' };
    const stalled = await crashingProcess('OrderPlaced');
    try {
      const inFlight = await stalled.crashDuring(() =>
        post(stalled.app, '/v1/orders', order(trader.accountId), headers),
      );
      expect(await placedOrderIds(trader.accountId)).toEqual([]);

      leasePasses();
      const retried = await post(api.app, '/v1/orders', order(trader.accountId), headers);
      expect(retried.statusCode).toBe(202);
      expect(retried.headers['idempotent-replayed']).toBeUndefined();
      const { orderId } = retried.json() as { orderId: string };
      expect(await placedOrderIds(trader.accountId)).toEqual([orderId]);

      // Not dead, only slow: its OrderPlaced has the id the retry's has, so the store writes nothing.
      stalled.appends.resume();
      const late = await inFlight.answer;
      expect(late.statusCode).toBe(202);
      expect(late.json()).toEqual({ orderId, status: 'PENDING_NEW' });
      expect(await placedOrderIds(trader.accountId)).toEqual([orderId]);
      expect(await keyEvents(trader.accountId, 'order-1')).toEqual([
        'IdempotencyKeyClaimed',
        'IdempotencyKeyClaimed',
        'IdempotencyKeyCompleted',
      ]);
    } finally {
      await stalled.close();
    }
  });

  it('lets one of several concurrent retries take an abandoned claim over, and places the order once', async () => {
    const trader = await api.trader('crash-then-race');
    const headers = { authorization: `Bearer ${trader.token}`, 'idempotency-key': 'order-1' };
    const crashed = await crashingProcess('OrderPlaced');
    try {
      await crashed.crashDuring(() => post(crashed.app, '/v1/orders', order(trader.accountId), headers));

      leasePasses();
      const answers = await Promise.all(
        Array.from({ length: 4 }, () => post(api.app, '/v1/orders', order(trader.accountId), headers)),
      );
      const placed = await placedOrderIds(trader.accountId);
      expect(placed).toHaveLength(1);
      // The winner placed it; the others met the winner's claim (409) or its answer (202).
      expect(answers.filter((answer) => answer.statusCode === 202).length).toBeGreaterThanOrEqual(1);
      for (const answer of answers) {
        if (answer.statusCode === 202) expect(answer.json().orderId).toBe(placed[0]);
        else expect(answer.json()).toMatchObject({ status: 409, reason: 'IDEMPOTENCY_KEY_IN_PROGRESS' });
      }
      expect(await keyEvents(trader.accountId, 'order-1')).toEqual([
        'IdempotencyKeyClaimed',
        'IdempotencyKeyClaimed',
        'IdempotencyKeyCompleted',
      ]);
    } finally {
      await crashed.close();
    }
  });

  it('answers a deposit with the wallet the crashed request left, however the wallet moved since', async () => {
    const trader = await api.trader('crash-deposit');
    const auth = { authorization: `Bearer ${trader.token}` };
    const headers = { ...auth, 'idempotency-key': 'deposit-1' };
    const url = `/v1/accounts/${trader.accountId}/deposits`;
    const crashed = await crashingProcess('IdempotencyKeyCompleted');
    try {
      await crashed.crashDuring(() => post(crashed.app, url, { amount: '100.00' }, headers));
      expect((await post(api.app, url, { amount: '5.00' }, auth)).statusCode).toBe(201);

      leasePasses();
      const retried = await post(api.app, url, { amount: '100.00' }, headers);
      expect(retried.statusCode).toBe(201);
      expect(retried.headers['idempotent-replayed']).toBe('true');
      expect(retried.json()).toEqual({
        accountId: trader.accountId,
        version: 0,
        cash: { available: '100.00', reserved: '0.00' },
        positions: [],
      });
      const deposits = (await broker.readStream(`wallet-${trader.accountId}`)).filter(
        (event) => event.type === 'CashDeposited',
      );
      expect(deposits.map((event) => event.data)).toEqual([{ amount: 10_000 }, { amount: 500 }]);
    } finally {
      await crashed.close();
    }
  });

  it('answers a withdrawal the crashed request made, which the wallet could no longer pay again', async () => {
    const trader = await api.trader('crash-withdrawal');
    const auth = { authorization: `Bearer ${trader.token}` };
    const headers = { ...auth, 'idempotency-key': 'withdrawal-1' };
    await post(api.app, `/v1/accounts/${trader.accountId}/deposits`, { amount: '50.00' }, auth);
    const url = `/v1/accounts/${trader.accountId}/withdrawals`;
    const crashed = await crashingProcess('IdempotencyKeyCompleted');
    try {
      await crashed.crashDuring(() => post(crashed.app, url, { amount: '50.00' }, headers));

      leasePasses();
      const retried = await post(api.app, url, { amount: '50.00' }, headers);
      expect(retried.statusCode).toBe(201);
      expect(retried.json()).toMatchObject({ version: 1, cash: { available: '0.00', reserved: '0.00' } });
      const withdrawals = (await broker.readStream(`wallet-${trader.accountId}`)).filter(
        (event) => event.type === 'CashWithdrawn',
      );
      expect(withdrawals).toHaveLength(1);
    } finally {
      await crashed.close();
    }
  });

  it('answers from what a failed request wrote before failing, and lets another request use the released key afresh', async () => {
    const trader = await api.trader('lost-answer');
    const auth = { authorization: `Bearer ${trader.token}` };
    const url = `/v1/accounts/${trader.accountId}/deposits`;
    const lossy = await buildApi({
      broker: answerLostAt(broker, 'CashDeposited'),
      b3: api.b3,
      tokens: new TokenIssuer(JWT_SECRET, 3600),
      now,
    });
    try {
      const lost = await post(lossy, url, { amount: '100.00' }, { ...auth, 'idempotency-key': 'deposit-1' });
      expect(lost.statusCode).toBe(500);
      expect(await keyEvents(trader.accountId, 'deposit-1')).toEqual([
        'IdempotencyKeyClaimed',
        'IdempotencyKeyReleased',
      ]);
      // The deposit was made: its retry answers it, and makes none again.
      const retried = await post(
        api.app,
        url,
        { amount: '100.00' },
        { ...auth, 'idempotency-key': 'deposit-1' },
      );
      expect(retried.statusCode).toBe(201);
      expect(retried.headers['idempotent-replayed']).toBe('true');
      expect(retried.json()).toMatchObject({ version: 0, cash: { available: '100.00' } });

      // A released key taken by another request: that request's deposit is its own.
      await post(lossy, url, { amount: '100.00' }, { ...auth, 'idempotency-key': 'deposit-2' });
      const other = await post(
        api.app,
        url,
        { amount: '30.00' },
        { ...auth, 'idempotency-key': 'deposit-2' },
      );
      expect(other.statusCode).toBe(201);
      expect(other.headers['idempotent-replayed']).toBeUndefined();
      expect(other.json()).toMatchObject({ version: 2, cash: { available: '230.00' } });
      const deposits = (await broker.readStream(`wallet-${trader.accountId}`)).filter(
        (event) => event.type === 'CashDeposited',
      );
      expect(deposits.map((event) => event.data)).toEqual([
        { amount: 10_000 },
        { amount: 10_000 },
        { amount: 3_000 },
      ]);
    } finally {
      await lossy.close();
    }
  });

  it('registers the account a register crashed between claiming the username and writing the account', async () => {
    const headers = { 'idempotency-key': 'register-1' };
    const credentials = { username: 'crash-register', password: 'a-good-password' };
    const crashed = await crashingProcess('AccountRegistered');
    try {
      await crashed.crashDuring(() => post(crashed.app, '/v1/auth/register', credentials, headers));
      const [claim] = await broker.readStream('username-crash-register');
      const { accountId } = (claim?.data ?? {}) as { accountId?: string };
      expect(accountId).toBeDefined();

      leasePasses();
      const retried = await post(api.app, '/v1/auth/register', credentials, headers);
      // The username is its own claim (the same event id), not someone else's: not USERNAME_TAKEN.
      expect(retried.statusCode).toBe(201);
      expect(retried.json()).toEqual({ accountId });
      expect(await broker.readStream('username-crash-register')).toHaveLength(1);
      expect((await api.trader('crash-register')).accountId).toBe(accountId);
      expect(await broker.readStream(`account-${accountId}`)).toHaveLength(1);
    } finally {
      await crashed.close();
    }
  });

  it('registers the account of a username whose registration crashed without a key, once', async () => {
    const credentials = { username: 'crash-keyless', password: 'a-good-password' };
    const crashed = await crashingProcess('AccountRegistered');
    try {
      await crashed.crashDuring(() => post(crashed.app, '/v1/auth/register', credentials, {}));
    } finally {
      await crashed.close();
    }
    const [claim] = await broker.readStream('username-crash-keyless');
    const claimed = String((claim?.data as { accountId?: string } | undefined)?.accountId);
    expect(claimed).not.toBe('undefined');
    expect(await broker.readStream(`account-${claimed}`)).toHaveLength(0);

    // Two registrations of the orphaned username at once: one gets the claim's account.
    const answers = await Promise.all([
      post(api.app, '/v1/auth/register', credentials, {}),
      post(api.app, '/v1/auth/register', { ...credentials, password: 'another-password' }, {}),
    ]);
    expect(answers.map((answer) => answer.statusCode).sort()).toEqual([201, 409]);
    const won = answers.find((answer) => answer.statusCode === 201);
    const lost = answers.find((answer) => answer.statusCode === 409);
    expect(won?.json()).toEqual({ accountId: claimed });
    expect(lost?.json()).toMatchObject({ reason: 'USERNAME_TAKEN' });
    const [registered] = await broker.readStream(`account-${claimed}`);
    expect(registered?.metadata.actor).toBe(claimed);
    expect(await broker.readStream('username-crash-keyless')).toHaveLength(1);

    const password = won === answers[0] ? credentials.password : 'another-password';
    const login = await post(api.app, '/v1/auth/login', { ...credentials, password }, {});
    expect(login.statusCode).toBe(200);
    const again = await post(api.app, '/v1/auth/register', credentials, {});
    expect(again.json()).toMatchObject({ reason: 'USERNAME_TAKEN' });
  });

  it('finds the order of a claim made before ids were derived (v1) by its request, and places none again', async () => {
    const trader = await api.trader('crash-v1');
    const headers = { authorization: `Bearer ${trader.token}`, 'idempotency-key': 'order-v1' };
    // What a v1 process left: its claim, and the order it placed under a random id, both stamped
    // with the request's causation id.
    const metadata = { correlationId: 'v1-request', causationId: 'http-v1-request', actor: trader.accountId };
    const raw = await SqlEventStore.open({ client, schema: 'broker', label: 'pglite' });
    try {
      await raw.append(idempotencyStreamId(trader.accountId, 'order-v1'), [
        {
          id: randomUUID(),
          type: 'IdempotencyKeyClaimed',
          data: {
            key: 'order-v1',
            fingerprint: fingerprintOf(
              new TokenIssuer(JWT_SECRET, 3600).fingerprintKey,
              'POST',
              '/v1/orders',
              PlaceOrderBody.parse(order(trader.accountId)),
            ),
          },
          metadata: { ...metadata, occurredAt: now().toISOString(), schemaVersion: 1 },
        },
      ]);
    } finally {
      await raw.close();
    }
    const { state: instrument } = await loadAggregate(
      broker,
      instrumentStreamId('ITUB4'),
      aggregateOf(instrumentDecider),
    );
    const orderId = randomUUID();
    await handleCommand(
      broker,
      orderStreamId(orderId),
      orderDecider,
      {
        type: 'PlaceOrder',
        orderId,
        accountId: trader.accountId,
        symbol: 'ITUB4',
        side: 'BUY',
        orderType: 'LIMIT',
        quantity: 100,
        price: 3_510,
        stopPrice: null,
        timeInForce: 'DAY',
        expiresAt: null,
        instrument,
        at: now().toISOString(),
      },
      metadata,
      { expectedVersion: 'no_stream' },
    );

    expect((await post(api.app, '/v1/orders', order(trader.accountId), headers)).statusCode).toBe(409);
    leasePasses();
    const retried = await post(api.app, '/v1/orders', order(trader.accountId), headers);
    expect(retried.statusCode).toBe(202);
    expect(retried.json()).toEqual({ orderId, status: 'PENDING_NEW' });
    expect(await placedOrderIds(trader.accountId)).toEqual([orderId]);
  });
});
