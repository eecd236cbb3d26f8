import fc from 'fast-check';
import { expect, it } from 'vitest';
import { FRACTIONAL_SYMBOL, STANDARD_SYMBOL, TRADED_SYMBOL } from './schemas.ts';

it('takes as a traded ticker exactly a standard or a fractional one', () => {
  const tickerLike = fc.stringMatching(/^[A-Za-z0-9]{0,8}$/);
  fc.assert(
    fc.property(fc.oneof(tickerLike, fc.string({ maxLength: 9 })), (text) => {
      expect(TRADED_SYMBOL.test(text)).toBe(STANDARD_SYMBOL.test(text) || FRACTIONAL_SYMBOL.test(text));
    }),
    { numRuns: 5_000 },
  );
  for (const ticker of ['PETR4', 'PETR4F', 'BPAC11', 'BPAC11F', 'B3SA3'])
    expect(TRADED_SYMBOL.test(ticker)).toBe(true);
  for (const text of ['petr4', 'PETR', 'PETR4FF', 'PETR4f', '4ETR4'])
    expect(TRADED_SYMBOL.test(text)).toBe(false);
});
