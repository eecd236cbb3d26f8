import { afterAll } from 'vitest';
import { SqlReadModelStore } from '../postgres/read-model-store.ts';
import { readModelStoreContract } from '../shared/read-model-store-contract.ts';
import { pgliteClient } from './client.ts';

const client = await pgliteClient();
let count = 0;
afterAll(() => client.close());

readModelStoreContract('PGlite', {
  async create() {
    const schema = `rm_${++count}`;
    const store = await SqlReadModelStore.open({ client, schema, kind: 'pglite' });
    return { store, reopen: () => SqlReadModelStore.open({ client, schema, kind: 'pglite' }) };
  },
});
