import { describe, expect, it } from 'vitest';
import { decimalize } from './context.ts';

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
