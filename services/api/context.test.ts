import { describe, expect, it } from 'vitest';
import { decimalize, type RouteContext, readModelsOf } from './context.ts';

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

describe('readModelsOf', () => {
  it('answers 503 READ_MODELS_UNAVAILABLE when a read-model store does not answer in time', async () => {
    const hung = new Promise<never>(() => {});
    const context = {
      readModels: { wallet: () => hung, order: async () => ({ orderId: 'o-1' }) },
      readModelDeadlineMs: 50,
    } as unknown as RouteContext;
    const started = Date.now();
    await expect(readModelsOf(context).wallet('a-1')).rejects.toMatchObject({
      status: 503,
      reason: 'READ_MODELS_UNAVAILABLE',
      headers: { 'retry-after': '5' },
    });
    expect(Date.now() - started).toBeLessThan(2_000);
    // A store that answers is answered as it is.
    expect(await readModelsOf(context).order('o-1')).toEqual({ orderId: 'o-1' });
  });
});
