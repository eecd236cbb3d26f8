import { randomUUID } from 'node:crypto';
import type { EventStore, NewEvent, RecordedEvent } from '../../domain/shared/event-store.ts';
import type { EventStores } from '../shared/event-stores.ts';

/**
 * What `tradecore start` shows until the services land: the embedded event stores at work.
 * Each run appends to the same streams, so a second run shows the data survived the restart.
 */
export async function eventStoreDemo(stores: EventStores, print: (line: string) => void): Promise<void> {
  const correlationId = randomUUID();
  const event = (type: string, data: unknown): NewEvent => ({
    id: randomUUID(),
    type,
    data,
    metadata: {
      correlationId,
      causationId: correlationId,
      actor: 'demo',
      occurredAt: new Date().toISOString(),
    },
  });

  print(`event stores: ${stores.description}`);
  const wallet = 'wallet-demo';
  const before = await stores.broker.streamVersion(wallet);
  print(`${wallet} holds ${before + 1} events from earlier runs`);

  const live: RecordedEvent[] = [];
  const subscription = stores.broker.subscribeToAll({
    after: await stores.broker.headPosition(),
    onEvent: (recorded) => void live.push(recorded),
  });

  const deposit = await stores.broker.append(wallet, [event('CashDeposited', { amount: '1000.00' })], {
    expectedVersion: before === -1 ? 'no_stream' : before,
  });
  print(
    `appended CashDeposited to ${wallet} at version ${deposit.nextExpectedVersion}, position ${deposit.positions[0]}`,
  );

  const stale = await stores.broker
    .append(wallet, [event('CashWithdrawn', { amount: '1.00' })], { expectedVersion: before })
    .catch((error: Error) => error);
  print(`a writer with the stale expected version ${before} is refused: ${(stale as Error).message}`);

  const book = 'book-PETR4';
  await stores.b3.append(book, [event('OrderBooked', { side: 'BUY', price: '32.50', quantity: 100 })]);
  print(
    `appended OrderBooked to ${book} in the separate B3 store (broker store sees it: ${await seen(stores.broker, book)})`,
  );

  await waitUntil(() => live.length > 0);
  await subscription.stop();
  print(
    `a subscriber following all broker events received: ${live.map((recorded) => recorded.type).join(', ')}`,
  );

  const history = await stores.broker.readStream(wallet, { direction: 'backwards', limit: 3 });
  print(`${wallet}, newest first:`);
  for (const recorded of history) {
    print(
      `  v${recorded.version}  #${recorded.position}  ${recorded.type}  ${JSON.stringify(recorded.data)}  ${recorded.recordedAt.toISOString()}`,
    );
  }
}

async function seen(store: EventStore, streamId: string): Promise<boolean> {
  return (await store.streamVersion(streamId)) >= 0;
}

async function waitUntil(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
}
