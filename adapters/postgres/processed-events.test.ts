import { afterAll, describe, expect, it } from 'vitest';
import { isolatedName, testUrls } from '../../infra/test-infra/isolation.ts';
import { pgliteClient } from '../pglite/client.ts';
import type { SqlClient } from '../shared/sql-client.ts';
import { pgClient } from './client.ts';
import { SqlProcessedEvents } from './processed-events.ts';

const postgres = pgClient(testUrls().databaseUrl, { max: 4 });
const pglite = await pgliteClient();
const schemas: string[] = [];
afterAll(async () => {
  for (const schema of schemas) await postgres.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await postgres.close();
  await pglite.close();
});

describe.each([
  ['Postgres', postgres],
  ['PGlite', pglite],
] as [string, SqlClient][])('processed events on %s', (_, client) => {
  const open = async (consumer: string, schema = isolatedName('processed')) => {
    schemas.push(schema);
    return SqlProcessedEvents.open({ client, schema, consumer });
  };

  it('remembers an event id with the effect, and forgets both when the unit rolls back', async () => {
    const processed = await open('notify');
    await expect(
      processed.unit(async (tx) => {
        await processed.remember(tx, 'e-1');
        throw new Error('effect failed');
      }),
    ).rejects.toThrow('effect failed');
    expect(await processed.unit((tx) => processed.seen(tx, 'e-1'))).toBe(false);
    await processed.unit((tx) => processed.remember(tx, 'e-1'));
    expect(await processed.unit((tx) => processed.seen(tx, 'e-1'))).toBe(true);
  });

  it('refuses to remember an id twice, and keeps consumers apart', async () => {
    const schema = isolatedName('processed');
    const notify = await open('notify', schema);
    const audit = await open('audit', schema);
    await notify.unit((tx) => notify.remember(tx, 'e-1'));
    await expect(notify.unit((tx) => notify.remember(tx, 'e-1'))).rejects.toThrow();
    expect(await audit.unit((tx) => audit.seen(tx, 'e-1'))).toBe(false);
  });
});
