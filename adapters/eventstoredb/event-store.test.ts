import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { testUrls } from '../../infra/test-infra/isolation.ts';
import { eventStoreContract } from '../shared/event-store-contract.ts';
import { EventStoreDbEventStore } from './event-store.ts';

const { esdbUrl } = testUrls();

if (esdbUrl) {
  eventStoreContract('EventStoreDB', {
    globalEventIds: false,
    async create(options) {
      const prefix = `contract${randomUUID().replaceAll('-', '')}`;
      const store = EventStoreDbEventStore.connect({ url: esdbUrl, prefix, schemas: options?.schemas });
      return {
        store,
        reopen: async (again) =>
          EventStoreDbEventStore.connect({ url: esdbUrl, prefix, schemas: again?.schemas }),
      };
    },
  });
} else {
  console.info('EventStoreDB contract suite did not run: ESDB_URL is not set.');
}

describe('EventStoreDB event store, before the server', () => {
  it('refuses invalid events without a round trip', async () => {
    const store = EventStoreDbEventStore.connect({ url: 'esdb://127.0.0.1:1?tls=false', prefix: 'offline' });
    const event = { id: 'not-a-uuid', type: 'Deposited', data: {}, metadata: {} } as never;
    await expect(store.append(`wallet-${randomUUID()}`, [event])).rejects.toThrow(/must be a uuid/);
    await expect(store.append('', [event])).rejects.toThrow(/stream id/);
    await store.close();
  });
});
