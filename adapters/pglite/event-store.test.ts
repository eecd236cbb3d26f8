import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SqlEventStore } from '../postgres/event-store.ts';
import { eventStoreContract, newEvent, streamName } from '../shared/event-store-contract.ts';
import { pgliteClient } from './client.ts';
import { openPgliteEventStore } from './event-store.ts';

// One PGlite instance for the file (it is one connection); each store gets its own schema.
const client = await pgliteClient();
let schemas = 0;
afterAll(() => client.close());

eventStoreContract('PGlite', {
  async create(options) {
    const schema = `contract_${++schemas}`;
    const store = await SqlEventStore.open({ client, schema, schemas: options?.schemas, label: 'pglite' });
    return {
      store,
      reopen: (again) => SqlEventStore.open({ client, schema, schemas: again?.schemas, label: 'pglite' }),
    };
  },
});

// The embedded mode's store is its schema's only writer: its live tail is fed by its appends.
eventStoreContract('PGlite, exclusive writer', {
  async create(options) {
    const schema = `contract_${++schemas}`;
    const open = (schemas = options?.schemas) =>
      SqlEventStore.open({ client, schema, schemas, label: 'pglite', exclusiveWriter: true });
    return { store: await open(), reopen: (again) => open(again?.schemas) };
  },
});

describe('PGlite event store on disk', () => {
  it('keeps its events in the data folder across restarts', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'tradecore-pglite-'));
    try {
      const stream = streamName();
      const first = await openPgliteEventStore({ dataDir, schema: 'broker' });
      await first.append(stream, [newEvent(), newEvent()]);
      await first.close();
      const second = await openPgliteEventStore({ dataDir, schema: 'broker' });
      expect((await second.readStream(stream)).map((event) => event.version)).toEqual([0, 1]);
      expect(await second.streamVersion(stream)).toBe(1);
      await second.close();
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
