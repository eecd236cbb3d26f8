import { randomUUID } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bookStreamId } from '../../domain/b3/book-events.ts';
import { OrderBook } from '../../domain/b3/order-book.ts';
import { walletDecider, walletStreamId } from '../../domain/broker/wallet/wallet.ts';
import type { NewEvent, RecordedEvent } from '../../domain/shared/event-store.ts';
import { formatCents } from '../../domain/shared/money.ts';
import { handleCommand } from '../shared/command-handler.ts';
import { loadConfig } from '../shared/config.ts';
import { connectEventStores, type EventStores } from '../shared/event-stores.ts';

/**
 * `tradecore demo`: the event stores at work, in a fresh embedded data folder of its own (never
 * the one `tradecore start` uses, nor a server named by a URL), so that nothing it writes can
 * reach real data. It says where that folder is; the folder is left behind to look at.
 */
export async function runDemo(print: (line: string) => void, parent = tmpdir()): Promise<string> {
  const dataDir = await mkdtemp(join(parent, 'tradecore-demo-'));
  print(`demo: in a fresh data folder of its own, ${dataDir} (your data folder and servers are not touched)`);
  const stores = await connectEventStores(loadConfig({ TRADECORE_DATA_DIR: dataDir }));
  try {
    await eventStoreDemo(stores, print);
  } finally {
    await stores.close();
  }
  print(`look again: TRADECORE_DATA_DIR=${dataDir} npx tradecore audit stream ${walletStreamId('demo')}`);
  return dataDir;
}

/** Real commands through the deciders, real event schemas: what the services do, in miniature. */
export async function eventStoreDemo(stores: EventStores, print: (line: string) => void): Promise<void> {
  const correlationId = randomUUID();
  const metadata = { correlationId, causationId: correlationId, actor: 'demo' };
  const event = (type: string, data: unknown): NewEvent => ({
    id: randomUUID(),
    type,
    data,
    metadata: { ...metadata, occurredAt: new Date().toISOString() },
  });

  print(`event stores: ${stores.description}`);
  const wallet = walletStreamId('demo');
  const live: RecordedEvent[] = [];
  const subscription = stores.broker.subscribeToAll({
    after: await stores.broker.headPosition(),
    onEvent: (recorded) => void live.push(recorded),
  });

  const deposit = await handleCommand(
    stores.broker,
    wallet,
    walletDecider,
    { type: 'Deposit', amount: 100_000 },
    metadata,
  );
  print(
    `Deposit 1000.00 → CashDeposited appended to ${wallet} at version ${deposit.version}, position ${deposit.positions[0]}; available ${formatCents(deposit.state.cash.available)}`,
  );

  const stale = await stores.broker
    .append(wallet, [event('CashWithdrawn', { amount: 100 })], { expectedVersion: 'no_stream' })
    .catch((error: Error) => error);
  print(`a writer that has not seen that deposit is refused: ${(stale as Error).message}`);

  // Amounts are integer cents inside; a decimal string is what the wallets projection chokes on.
  const invalid = await stores.broker
    .append(wallet, [event('CashDeposited', { amount: '1000.00' })])
    .catch((error: Error) => error);
  print(`an event that fails its schema is refused: ${(invalid as Error).message}`);

  const symbol = 'PETR4';
  const book = new OrderBook(symbol);
  const at = Date.now();
  const booked = book.execute({ type: 'OpenBook', referencePrice: 3_250, priceBandBps: 1_000, at });
  book.execute(
    {
      type: 'PlaceOrder',
      orderId: 'demo-order-1',
      accountId: 'demo',
      side: 'BUY',
      orderType: 'LIMIT',
      quantity: 100,
      price: 3_250,
      timeInForce: 'DAY',
      at,
    },
    booked,
  );
  const bookStream = bookStreamId(symbol);
  await stores.b3.append(
    bookStream,
    booked.map((decided) => event(decided.type, decided.data)),
    { expectedVersion: 'no_stream' },
  );
  print(
    `the matching engine's ${booked.map((decided) => decided.type).join(', ')} appended to ${bookStream} in the separate B3 store (the broker store has it: ${(await stores.broker.streamVersion(bookStream)) >= 0})`,
  );

  await waitUntil(() => live.length > 0);
  await subscription.stop();
  print(
    `a subscriber following all broker events received: ${live.map((recorded) => recorded.type).join(', ')}`,
  );

  print(`${wallet}, as stored:`);
  for (const recorded of await stores.broker.readStream(wallet))
    print(
      `  v${recorded.version}  #${recorded.position}  ${recorded.type}  ${JSON.stringify(recorded.data)}  ${recorded.recordedAt.toISOString()}`,
    );
}

async function waitUntil(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
}
