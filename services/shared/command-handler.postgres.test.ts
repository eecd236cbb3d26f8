import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { openPostgresEventStore } from '../../adapters/postgres/index.ts';
import { walletDecider, walletStreamId } from '../../domain/broker/wallet/wallet.ts';
import { loadAggregate } from '../../domain/shared/aggregate.ts';
import type { EventStore } from '../../domain/shared/event-store.ts';
import { isolatedName, testUrls } from '../../infra/test-infra/isolation.ts';
import { aggregateOf, handleCommand } from './command-handler.ts';

/**
 * Writers in different processes share no lanes: their conflicts on one stream are retried by
 * `handleCommand`. Here three connections to the real Postgres event store stand for three API
 * processes, each depositing into the same wallet one request after another.
 */
const { databaseUrl } = testUrls();
const schema = isolatedName('command_handler');
const stores: EventStore[] = [];

afterAll(async () => {
  for (const store of stores) await store.close();
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await client.end();
});

describe('handleCommand across processes', () => {
  it('absorbs the conflicts of three writers depositing into one wallet: every deposit lands, once', async () => {
    for (let process = 0; process < 3; process++)
      stores.push(await openPostgresEventStore({ url: databaseUrl, schema }));
    const wallet = walletStreamId('shared');
    const failures: unknown[] = [];
    await Promise.all(
      stores.map(async (store, process) => {
        for (let deposit = 0; deposit < 25; deposit++)
          await handleCommand(
            store,
            wallet,
            walletDecider,
            { type: 'Deposit', amount: 100 },
            { correlationId: `p${process}-${deposit}`, causationId: 'test', actor: 'test' },
          ).catch((error: unknown) => failures.push(error));
      }),
    );
    expect(failures).toEqual([]);
    const { state, version } = await loadAggregate(stores[0]!, wallet, aggregateOf(walletDecider));
    expect(version).toBe(74);
    expect(state.cash.available).toBe(75 * 100);
  }, 60_000);
});
