import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { register } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import type { RecordedEvent } from '../../domain/shared/event-store.ts';
import { isolatedName, testUrls } from '../../infra/test-infra/isolation.ts';
import { eventStoreContract, newEvent, streamName, waitFor } from '../shared/event-store-contract.ts';
import { pgClient } from './client.ts';
import { SqlEventStore } from './event-store.ts';

const { databaseUrl } = testUrls();
const client = pgClient(databaseUrl, { max: 20 });
const createdSchemas: string[] = [];
afterAll(async () => {
  for (const schema of createdSchemas) await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await client.close();
});

async function freshStore(
  options: { schemas?: import('../../domain/shared/event-schemas.ts').EventSchemas } = {},
) {
  const schema = isolatedName('es');
  createdSchemas.push(schema);
  const store = await SqlEventStore.open({ client, schema, schemas: options.schemas });
  return { schema, store };
}

eventStoreContract('Postgres', {
  async create(options) {
    const { schema, store } = await freshStore(options);
    return { store, reopen: (again) => SqlEventStore.open({ client, schema, schemas: again?.schemas }) };
  },
});

describe('Postgres event store: reading all while transactions commit out of order', () => {
  // The Marten bug: a reader passes position p while the transaction holding p−1 is still open,
  // then never sees p−1. Slow transactions below hold positions open while fast writers commit above them.
  it('never skips an event whose transaction commits late, and says how long readers were held back', async () => {
    const { schema, store } = await freshStore();
    const holdbacksBefore = await holdbackCount();
    const written = new Set<string>();
    const seen: RecordedEvent[] = [];
    const subscription = store.subscribeToAll({
      after: 0,
      batchSize: 50,
      onEvent: (event) => void seen.push(event),
    });

    const fastWriters = Array.from({ length: 16 }, async (_, writer) => {
      for (let i = 0; i < 30; i++) {
        const batch = [newEvent(), newEvent()];
        await store.append(streamName(`fast${writer}`), batch);
        for (const event of batch) written.add(event.id);
      }
    });
    const slowWriters = Array.from({ length: 3 }, async (_, writer) => {
      const connection = new pg.Client({ connectionString: testUrls().databaseUrl });
      await connection.connect();
      try {
        for (let i = 0; i < 10; i++) {
          const event = newEvent();
          await connection.query('BEGIN');
          await connection.query(`SELECT * FROM ${schema}.append_events($1, 'any', $2::jsonb)`, [
            streamName(`slow${writer}`),
            JSON.stringify([{ ...event, metadata: { ...event.metadata, schemaVersion: 1 } }]),
          ]);
          await connection.query('SELECT pg_sleep($1)', [0.01 + Math.random() * 0.03]);
          await connection.query('COMMIT');
          written.add(event.id);
        }
      } finally {
        await connection.end();
      }
    });
    await Promise.all([...fastWriters, ...slowWriters]);
    await waitFor(() => seen.length >= written.size, 20_000);
    await new Promise((resolve) => setTimeout(resolve, 50));
    await subscription.stop();

    expect(seen).toHaveLength(written.size);
    expect(new Set(seen.map((event) => event.id))).toEqual(written);
    for (let i = 1; i < seen.length; i++) expect(seen[i]!.position).toBeGreaterThan(seen[i - 1]!.position);
    // The slow transactions did hold the reader back, and the metric counted it.
    expect(await holdbackCount()).toBeGreaterThan(holdbacksBefore);
  });

  it('releases its position lock when an append fails, so other writers go on', async () => {
    const { store } = await freshStore();
    const stream = streamName();
    await store.append(stream, [newEvent()]);
    await Promise.allSettled(
      Array.from({ length: 20 }, () => store.append(stream, [newEvent()], { expectedVersion: 0 })),
    );
    const done = await Promise.race([
      store.append(streamName(), [newEvent()]).then(() => 'appended'),
      new Promise((resolve) => setTimeout(() => resolve('stuck'), 5_000)),
    ]);
    expect(done).toBe('appended');
  });

  it('writes appends that queue behind one in flight together, in one commit, each with its own outcome', async () => {
    const { schema, store } = await freshStore();
    const groupedBefore = await groupedAppends();
    const contested = streamName();
    await store.append(contested, [newEvent()]);
    const results = await Promise.allSettled([
      ...Array.from({ length: 30 }, () => store.append(streamName(), [newEvent(), newEvent()])),
      ...Array.from({ length: 5 }, () => store.append(contested, [newEvent()], { expectedVersion: 0 })),
    ]);
    expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(31);
    expect(results.filter((result) => result.status === 'rejected')).toHaveLength(4);
    // Some appends went in groups of two or more.
    expect(await groupedAppends()).toBeGreaterThan(groupedBefore);
    // One group is one transaction: its events share a transaction id, and positions stay in order.
    const rows = await client.query<{ transactions: number; events: number }>(
      `SELECT count(DISTINCT transaction_id::text)::int AS transactions, count(*)::int AS events FROM ${schema}.events`,
    );
    expect(rows[0]!.events).toBe(1 + 60 + 1);
    expect(rows[0]!.transactions).toBeLessThan(32);
  });

  it('keeps the broker and B3 sides in separate schemas of one database', async () => {
    const broker = await freshStore();
    const b3 = await freshStore();
    const stream = `book-PETR4-${randomUUID()}`;
    await b3.store.append(stream, [newEvent('OrderBooked', { price: 3250 })]);
    expect(await b3.store.streamVersion(stream)).toBe(0);
    expect(await broker.store.streamVersion(stream)).toBe(-1);
    expect(await broker.store.readAll()).toEqual([]);
  });
});

/** Appends of this process written in a group of two or more (the group-size histogram's upper buckets). */
async function groupedAppends(): Promise<number> {
  const metric = await register.getSingleMetric('tradecore_eventstore_append_group_size')!.get();
  // Every Postgres store of this process (`postgres:<schema>`), the test's own among them.
  const byBucket = (bound: string) =>
    metric.values
      .filter(
        (value) =>
          (value as { metricName?: string }).metricName?.endsWith('_bucket') &&
          String(value.labels.store).startsWith('postgres:') &&
          String(value.labels.le) === bound,
      )
      .reduce((sum, value) => sum + value.value, 0);
  return byBucket('+Inf') - byBucket('1');
}

async function holdbackCount(): Promise<number> {
  const metric = await register.getSingleMetric('tradecore_eventstore_reader_holdback_seconds')!.get();
  return metric.values
    .filter(
      (value) =>
        (value as { metricName?: string }).metricName?.endsWith('_count') &&
        String(value.labels.store).startsWith('postgres:'),
    )
    .reduce((sum, value) => sum + value.value, 0);
}
