import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MemoryEventStore } from '../../adapters/memory/event-store.ts';
import { pgliteClient } from '../../adapters/pglite/client.ts';
import { SqlReadModelStore } from '../../adapters/postgres/read-model-store.ts';
import type { ProjectionDefinition } from '../model.ts';
import { Projector } from '../projector.ts';
import type { ReadModelStore } from '../store.ts';
import { CANDLE_INTERVAL_NAMES, CANDLES, candlesProjection } from './candles.ts';
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
  it('writes a candle of every interval for each trade, 15m on the quarter hour', () => {
    // 13:14:30 and 13:15:10: two 15m candles (13:00 and 13:15), one 1h candle.
    const then = given(trade('t1', 3_250, 100, at + 14 * 60_000)).when(
      trade('t2', 3_300, 100, at + 14 * 60_000 + 40_000),
    );
    expect(
      then.tables
        .rows(CANDLES)
        .filter((row) => row.interval === '15m')
        .map((row) => (row.bucket_start as Date).toISOString()),
    ).toEqual(['2026-01-05T13:00:00.000Z', '2026-01-05T13:15:00.000Z']);
    expect(new Set(then.tables.rows(CANDLES).map((row) => row.interval))).toEqual(
      new Set(CANDLE_INTERVAL_NAMES),
    );
  });
});

describe('the candles read model of an earlier version', () => {
  it('is rebuilt at the next start, so the trades it already held get their 15m candles', async () => {
    const client = await pgliteClient();
    const store = await SqlReadModelStore.open({ client, schema: 'readmodels', kind: 'pglite' });
    const source = new MemoryEventStore();
    const { data, metadata } = trade('t1', 3_250, 100);
    await source.append('trade-t1', [{ id: randomUUID(), type: 'TradeExecuted', data, metadata }]);
    try {
      // Version 1 projected 1m, 5m, 1h and 1d only.
      const version1: ProjectionDefinition = {
        ...candlesProjection,
        version: 1,
        project: (event) =>
          candlesProjection.project(event).filter((change) => change.key.interval !== '15m'),
      };
      const before = new Projector({ projection: version1, source, store });
      await before.start();
      await before.stop();
      expect(await intervalsIn(store)).not.toContain('15m');

      const after = new Projector({ projection: candlesProjection, source, store });
      await after.start();
      await after.stop();
      expect(await store.builtVersion(candlesProjection.name)).toBe(candlesProjection.version);
      expect(await intervalsIn(store)).toEqual([...CANDLE_INTERVAL_NAMES].sort());
    } finally {
      await store.close();
      await client.close();
    }
  });
});

async function intervalsIn(store: ReadModelStore): Promise<string[]> {
  const rows = await store.find(candlesProjection, CANDLES);
  return [...new Set(rows.map((row) => String(row.interval)))].sort();
}
