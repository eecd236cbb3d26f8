import { describe, expect, it } from 'vitest';
import { CANDLES, candlesProjection } from './candles.ts';
import { projectionSpecification, TRADE_AT, tradeExecuted } from './testing.ts';

const at = TRADE_AT;
const trade = tradeExecuted;

describe('OHLCV candles', () => {
  const given = projectionSpecification(candlesProjection);
  it('opens with the first trade, closes with the last, and adds up volume', () =>
    given(trade('t1', 3_250, 100), trade('t2', 3_300, 200, at + 10_000))
      .when(trade('t3', 3_200, 300, at + 20_000))
      .thenRow(
        CANDLES,
        { symbol: 'PETR4', interval: '1m', bucket_start: new Date(Date.UTC(2026, 0, 5, 13, 0)) },
        {
          open: 3_250,
          high: 3_300,
          low: 3_200,
          close: 3_200,
          volume: 600,
          notional: 3_250 * 100 + 3_300 * 200 + 3_200 * 300,
          trades: 3,
        },
      ));
  it('starts a new 1m bucket on the next minute, but not a new 1h one', () => {
    const then = given(trade('t1', 3_250, 100)).when(trade('t2', 3_100, 100, at + 60_000));
    expect(then.tables.rows(CANDLES).filter((row) => row.interval === '1m')).toHaveLength(2);
    then.thenRow(
      CANDLES,
      { symbol: 'PETR4', interval: '1h', bucket_start: new Date(Date.UTC(2026, 0, 5, 13)) },
      { open: 3_250, close: 3_100, trades: 2 },
    );
    then.thenRow(
      CANDLES,
      { symbol: 'PETR4', interval: '1d', bucket_start: new Date(Date.UTC(2026, 0, 5)) },
      { low: 3_100, volume: 200 },
    );
  });
});
