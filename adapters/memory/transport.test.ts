import { transportContract } from '../shared/transport-contract.ts';
import { MemoryTransport } from './transport.ts';

transportContract('memory', {
  async create(options) {
    return new MemoryTransport(options);
  },
});
