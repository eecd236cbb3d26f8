import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InvalidQuoteFile, parseBrapiRecording, randomWalk } from './quotes.ts';

const sample = join(import.meta.dirname, 'samples', 'brapi-quotes.json');

describe('Brapi recordings', () => {
  it('reads the shipped sample: prices in cents, ISO and epoch-second times, in time order', async () => {
    const quotes = parseBrapiRecording(await readFile(sample, 'utf8'), 'replay:sample');
    expect(quotes).toHaveLength(9);
    expect(quotes.slice(0, 3)).toEqual([
      { symbol: 'ITUB4', price: 35_10, at: Date.parse('2025-03-14T13:00:00Z'), source: 'replay:sample' },
      { symbol: 'PETR4', price: 32_50, at: Date.parse('2025-03-14T13:00:00Z'), source: 'replay:sample' },
      { symbol: 'VALE3', price: 55_20, at: Date.parse('2025-03-14T13:00:00Z'), source: 'replay:sample' },
    ]);
    expect(quotes.at(-1)).toMatchObject({ symbol: 'VALE3', price: 55_30 });
  });

  it('reads a single response as well as a recording of several', () => {
    const single = JSON.stringify({
      results: [{ symbol: 'BBAS3', regularMarketPrice: 22.305, regularMarketTime: 1741957200 }],
    });
    expect(parseBrapiRecording(single)).toEqual([
      { symbol: 'BBAS3', price: 22_31, at: 1_741_957_200_000, source: 'replay' },
    ]);
  });

  it('names what is wrong with a bad file', () => {
    expect(() => parseBrapiRecording('not json')).toThrow(InvalidQuoteFile);
    expect(() => parseBrapiRecording('{"results":[{"symbol":"PETR4"}]}')).toThrow(/regularMarketPrice/);
    expect(() =>
      parseBrapiRecording(
        '{"results":[{"symbol":"PETR4","regularMarketPrice":1,"regularMarketTime":"yesterday"}]}',
      ),
    ).toThrow(/not a date/);
  });
});

describe('seeded random walk', () => {
  it('gives the same path for the same seed, another for another seed', () => {
    const walk = (seed: number) => {
      const step = randomWalk({ start: { PETR4: 32_50, VALE3: 55_20 }, seed });
      return Array.from({ length: 50 }, () => step());
    };
    expect(walk(42)).toEqual(walk(42));
    expect(walk(42)).not.toEqual(walk(43));
  });

  it('moves each price by at most the step size, in whole cents', () => {
    const step = randomWalk({ start: { PETR4: 32_50 }, seed: 1, maxStepBps: 50 });
    let previous = 32_50;
    for (let index = 0; index < 500; index++) {
      const price = step()[0]!.price;
      expect(Number.isSafeInteger(price)).toBe(true);
      expect(Math.abs(price - previous)).toBeLessThanOrEqual(Math.ceil(previous * 0.005));
      previous = price;
    }
  });
});
