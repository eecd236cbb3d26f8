import { describe, it } from 'vitest';
import { LATEST_QUOTES, QUOTES, quotesProjection } from './quotes.ts';
import { projectionSpecification, recorded, TRADE_AT } from './testing.ts';

const at = TRADE_AT;

describe('quote history', () => {
  const given = projectionSpecification(quotesProjection);
  const quote = (bid: number) =>
    recorded('quotes-PETR4', 'QuoteReceived', {
      symbol: 'PETR4',
      bid,
      ask: 3_260,
      bidSize: 100,
      askSize: 200,
      last: 3_255,
      volume: 5_000,
      source: 'b3-engine',
      at,
    });
  it('keeps every quote and the latest one', () => {
    const first = quote(3_240);
    const second = quote(3_250);
    given(first)
      .when(second)
      .thenRow(QUOTES, { symbol: 'PETR4', sequence: first.version }, { bid: 3_240 })
      .thenRow(
        LATEST_QUOTES,
        { symbol: 'PETR4' },
        { bid: 3_250, sequence: second.version, quoted_at: new Date(at) },
      );
  });
});
