import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DecimalAmount,
  formatCents,
  InvalidDecimalAmount,
  notional,
  priceBandEdges,
  priceBandLowerEdge,
  priceBandUpperEdge,
  toCents,
} from './money.ts';

describe('money: integer cents ⇄ decimal strings', () => {
  it('reads decimal strings as cents', () => {
    expect(toCents('32.50')).toBe(3250);
    expect(toCents('32.5')).toBe(3250);
    expect(toCents('32')).toBe(3200);
    expect(toCents('0.01')).toBe(1);
    expect(toCents('-0.05')).toBe(-5);
    expect(toCents(' 7.10 ')).toBe(710);
    expect(toCents('-0')).toBe(0);
  });
  it('refuses anything but a decimal with at most two decimals', () => {
    for (const text of ['', '32.505', '3,50', '1e3', 'abc', '.5', '5.', '+1', '99999999999999999999'])
      expect(() => toCents(text), text).toThrow(InvalidDecimalAmount);
  });
  it('writes cents as decimal strings with two decimals', () => {
    expect(formatCents(3250)).toBe('32.50');
    expect(formatCents(5)).toBe('0.05');
    expect(formatCents(0)).toBe('0.00');
    expect(formatCents(-123)).toBe('-1.23');
    expect(() => formatCents(1.5)).toThrow(RangeError);
  });
  it('round-trips every safe amount', () =>
    fc.assert(
      fc.property(fc.integer({ min: -Number.MAX_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }), (cents) => {
        expect(toCents(formatCents(cents))).toBe(cents);
      }),
    ));
  it('parses decimal strings at the edge with zod', () => {
    expect(DecimalAmount.parse('32.50')).toBe(3250);
    expect(DecimalAmount.safeParse('32.505').success).toBe(false);
  });
  it('multiplies quantity by price exactly, or refuses', () => {
    expect(notional(100, 3250)).toBe(325_000);
    expect(() => notional(Number.MAX_SAFE_INTEGER, 2)).toThrow(RangeError);
  });
  it('computes price band edges in whole cents', () => {
    expect(priceBandUpperEdge(3250, 10)).toBe(3575);
    expect(priceBandUpperEdge(3333, 2.5)).toBe(3416); // 3416.325 rounded down
    expect(priceBandLowerEdge(3333, 2.5)).toBe(3250); // 3249.675 rounded up
    expect(priceBandLowerEdge(1, 100)).toBe(1);
  });
  it('keeps band edges exact and within the exact range whatever the reference price', () => {
    // 4503599627370497 × 0.9 = 4053239664633447.3, which floating point takes for …447 exactly.
    expect(priceBandEdges(4_503_599_627_370_497, 1_000)).toEqual({
      low: 4_053_239_664_633_448,
      high: 4_953_959_590_107_546,
    });
    // The upper edge of the largest reference price is past 2^53: the band ends where prices do.
    expect(priceBandEdges(Number.MAX_SAFE_INTEGER, 1_000).high).toBe(Number.MAX_SAFE_INTEGER);
    expect(priceBandUpperEdge(8_200_000_000_000_000, 10)).toBe(Number.MAX_SAFE_INTEGER);
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
        fc.integer({ min: 0, max: 10_000 }),
        (reference, bps) => {
          const { low, high } = priceBandEdges(reference, bps);
          expect(Number.isSafeInteger(low) && Number.isSafeInteger(high)).toBe(true);
          expect(low).toBeLessThanOrEqual(reference);
          expect(high).toBeGreaterThanOrEqual(Math.min(reference, Number.MAX_SAFE_INTEGER));
        },
      ),
    );
  });
});
