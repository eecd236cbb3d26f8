import { describe, expect, it } from 'vitest';
import { MemoryEventStore } from '../../adapters/memory/event-store.ts';
import { accountDecider, accountStreamId } from '../../domain/broker/account/account.ts';
import { handleCommand } from '../shared/command-handler.ts';
import { buildApi } from './app.ts';
import { TokenIssuer } from './auth.ts';
import { decimalize, readsWithDeadline } from './context.ts';
import type { ReadModels } from './ports.ts';

describe('decimalize', () => {
  it('turns the cents under money keys into decimal strings, recursively', () => {
    expect(decimalize({ price: 3250, quantity: 100, positions: [{ costBasis: -5, available: 7 }] })).toEqual({
      price: '32.50',
      quantity: 100,
      positions: [{ costBasis: '-0.05', available: 7 }],
    });
  });

  it('throws on an amount past the exact range instead of answering a raw, rounded number', () => {
    expect(() => decimalize({ positions: [{ costBasis: 17_999_999_999_998_200 }] })).toThrow(
      /costBasis is not a whole number of cents within the exact range/,
    );
    expect(() => decimalize({ price: 32.5 })).toThrow(RangeError);
  });
});

describe('readsWithDeadline', () => {
  it('answers 503 READ_MODELS_UNAVAILABLE when a read-model store does not answer in time', async () => {
    const hung = new Promise<never>(() => {});
    const readModels = readsWithDeadline(
      { wallet: () => hung, order: async () => ({ orderId: 'o-1' }) } as unknown as ReadModels,
      50,
    );
    const started = Date.now();
    await expect(readModels.wallet('a-1')).rejects.toMatchObject({
      status: 503,
      reason: 'READ_MODELS_UNAVAILABLE',
      headers: { 'retry-after': '5' },
    });
    expect(Date.now() - started).toBeLessThan(2_000);
    // A store that answers is answered as it is.
    expect(await readModels.order('o-1')).toEqual({ orderId: 'o-1' });
  });

  it("bounds the API's reads: a hung store answers 503, not a held request", async () => {
    const tokens = new TokenIssuer('a-test-secret-of-enough-length-0123456789', 3_600);
    const broker = new MemoryEventStore();
    await handleCommand(
      broker,
      accountStreamId('a-1'),
      accountDecider,
      {
        type: 'RegisterAccount',
        accountId: 'a-1',
        username: 'alice',
        passwordHash: 'unused',
        at: new Date().toISOString(),
      },
      { correlationId: 'c-1', causationId: 'c-1', actor: 'a-1' },
    );
    const app = await buildApi({
      broker,
      b3: new MemoryEventStore(),
      tokens,
      readModels: { wallet: () => new Promise<never>(() => {}) } as unknown as ReadModels,
      readModelDeadlineMs: 50,
    });
    const { token } = await tokens.issue({ accountId: 'a-1', username: 'alice', roles: ['trader'] });
    const answer = await app.inject({
      url: '/v1/accounts/a-1/wallet',
      headers: { authorization: `Bearer ${token}` },
    });
    expect(answer.statusCode).toBe(503);
    expect(answer.json()).toMatchObject({ reason: 'READ_MODELS_UNAVAILABLE' });
    await app.close();
  });
});
