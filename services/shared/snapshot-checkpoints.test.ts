import { afterAll, describe, expect, it } from 'vitest';
import { pgClient } from '../../adapters/postgres/client.ts';
import { SqlEventStore } from '../../adapters/postgres/event-store.ts';
import { isolatedName, testUrls } from '../../infra/test-infra/isolation.ts';
import { SnapshotCheckpoints } from './snapshot-checkpoints.ts';

const client = pgClient(testUrls().databaseUrl, { max: 4 });
const schema = isolatedName('checkpoints');
afterAll(async () => {
  await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await client.close();
});

const rowsOf = async (name: string) =>
  (
    await client.query<{ count: string }>(`SELECT count(*) FROM ${schema}.snapshots WHERE stream_id = $1`, [
      `checkpoint-${name}`,
    ])
  )[0]?.count;

describe('checkpoints kept as snapshots, on Postgres', () => {
  it('keeps one row per checkpoint however often it is saved, and never moves it backwards', async () => {
    const store = await SqlEventStore.open({ client, schema });
    const checkpoints = new SnapshotCheckpoints(store);
    expect(await checkpoints.load('relay')).toBe(0);
    for (const position of [3, 7, 12, 40]) await checkpoints.save('relay', position);
    await checkpoints.save('relay', 20);
    expect(await checkpoints.load('relay')).toBe(40);
    expect(Number(await rowsOf('relay'))).toBe(1);
  });

  it('goes on from the rows a checkpoint left when it kept one per save', async () => {
    const store = await SqlEventStore.open({ client, schema });
    for (const version of [5, 9])
      await store.saveSnapshot({ streamId: 'checkpoint-old', version, state: {}, schemaVersion: 1 });
    const checkpoints = new SnapshotCheckpoints(store);
    expect(await checkpoints.load('old')).toBe(9);
    await checkpoints.save('old', 8);
    expect(await checkpoints.load('old')).toBe(9);
    await checkpoints.save('old', 15);
    expect(await checkpoints.load('old')).toBe(15);
  });
});
