import { eventStoreContract } from '../shared/event-store-contract.ts';
import { MemoryEventStore } from './event-store.ts';

eventStoreContract('memory', {
  async create(options) {
    const store = new MemoryEventStore({ schemas: options?.schemas });
    return { store, reopen: async (again) => new MemoryEventStore({ schemas: again?.schemas }, store) };
  },
});
