import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidEvent, type NewEvent } from '../../domain/shared/event-store.ts';
import { loadConfig } from './config.ts';
import { connectEventStores, type EventStores } from './event-stores.ts';

const event = (type: string, data: unknown): NewEvent => ({
  id: randomUUID(),
  type,
  data,
  metadata: { correlationId: 'c', causationId: 'c', actor: 'test', occurredAt: new Date().toISOString() },
});

let dataDir: string;
let stores: EventStores;
beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'tradecore-stores-'));
  // As the services and the CLI open them: no schemas passed.
  stores = await connectEventStores(loadConfig({ TRADECORE_DATA_DIR: dataDir }));
}, 60_000);
afterAll(async () => {
  await stores?.close();
  await rm(dataDir, { recursive: true, force: true });
});

describe('the event stores as the services open them', () => {
  it('refuses an event whose data fails its schema, and one of a type the store does not know', async () => {
    // What the old `tradecore demo` wrote: a decimal string where the wallet keeps integer cents…
    await expect(
      stores.broker.append('wallet-x', [event('CashDeposited', { amount: '1000.00' })]),
    ).rejects.toThrow(InvalidEvent);
    // …and an event type the engine does not have.
    await expect(
      stores.b3.append('book-PETR4', [event('OrderBooked', { side: 'BUY', price: '32.50', quantity: 100 })]),
    ).rejects.toThrow('invalid OrderBooked event: unknown event type');
    expect(await stores.broker.streamVersion('wallet-x')).toBe(-1);
    expect(await stores.b3.streamVersion('book-PETR4')).toBe(-1);
  });

  it('takes the domain events and the API’s own in the broker store, and no broker event in the B3 store', async () => {
    await stores.broker.append('wallet-x', [event('CashDeposited', { amount: 100_000 })]);
    await stores.broker.append('username-alice', [
      event('UsernameClaimed', { username: 'alice', accountId: 'acc-1' }),
    ]);
    const [deposit] = await stores.broker.readStream('wallet-x');
    expect(deposit).toMatchObject({ type: 'CashDeposited', data: { amount: 100_000 } });
    // A broker event is not a B3 one.
    await expect(stores.b3.append('wallet-y', [event('CashDeposited', { amount: 100 })])).rejects.toThrow(
      InvalidEvent,
    );
  });
});
