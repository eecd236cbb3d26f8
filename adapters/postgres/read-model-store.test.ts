import { afterAll } from 'vitest';
import { isolatedName, testUrls } from '../../infra/test-infra/isolation.ts';
import { readModelStoreContract } from '../shared/read-model-store-contract.ts';
import { pgClient } from './client.ts';
import { SqlReadModelStore } from './read-model-store.ts';

const client = pgClient(testUrls().databaseUrl);
const schemas: string[] = [];
afterAll(async () => {
  for (const schema of schemas) await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await client.close();
});

readModelStoreContract('Postgres', {
  async create() {
    const schema = isolatedName('rm');
    schemas.push(schema);
    const store = await SqlReadModelStore.open({ client, schema });
    return { store, reopen: () => SqlReadModelStore.open({ client, schema }) };
  },
});
