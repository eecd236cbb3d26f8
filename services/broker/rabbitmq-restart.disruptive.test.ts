/**
 * RabbitMQ itself restarts (`rabbitmqctl stop_app` / `start_app`) in the middle of a stream of
 * orders. Every connection to the server drops, so this file runs alone, after the rest of the
 * suite (the `disruptive` vitest project; see package.json's test scripts).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPostgresEventStore } from '../../adapters/postgres/index.ts';
import type { RabbitMqBridge } from '../../adapters/rabbitmq/bridge.ts';
import { dropRabbitTopology } from '../../adapters/rabbitmq/testing.ts';
import { bookStreamId } from '../../domain/b3/book-events.ts';
import type { EventStore } from '../../domain/shared/event-store.ts';
import { isolatedName, testUrls } from '../../infra/test-infra/isolation.ts';
import { loadConfig } from '../shared/config.ts';
import { startTradingServices, type TradingServices } from '../shared/trading.ts';
import {
  b3Schemas,
  brokerSchemas,
  deposit,
  eventually,
  listInstrument,
  ordersReach,
  placeOrder,
  totals,
  transferSharesIn,
  walletOf,
} from '../shared/trading-fixtures.ts';

const run = promisify(execFile);
const urls = testUrls();
const RETRY_DELAYS = [20, 50];
const rabbitPrefix = isolatedName('restart');
let stores: { broker: EventStore; b3: EventStore };
let services: TradingServices;

async function restartRabbitMq(): Promise<void> {
  await run('rabbitmqctl', ['stop_app']);
  try {
    await new Promise((resolve) => setTimeout(resolve, 500));
  } finally {
    await run('rabbitmqctl', ['start_app']);
    await run('rabbitmqctl', ['await_startup']);
  }
}

beforeAll(async () => {
  stores = {
    broker: await openPostgresEventStore({
      url: urls.databaseUrl,
      schema: isolatedName('restart_broker'),
      schemas: brokerSchemas(),
    }),
    b3: await openPostgresEventStore({
      url: urls.databaseUrl,
      schema: isolatedName('restart_b3'),
      schemas: b3Schemas(),
    }),
  };
  services = await startTradingServices({
    config: loadConfig({
      AMQP_URL: urls.amqpUrl,
      REDIS_URL: urls.redisUrl,
      B3_REDIS_URL: `${urls.redisUrl.replace(/\/\d*$/, '')}/1`,
      QUOTE_SOURCE: 'off',
      QUOTES_ENABLED: 'false',
    }),
    eventStores: stores,
    rabbitPrefix,
    connectionName: isolatedName('restart_conn'),
    redisKeyPrefix: `${isolatedName('restart')}:`,
    retryDelaysMs: RETRY_DELAYS,
  });
  await services.marketData.setReferencePrice('PETR4', 32_50);
  await listInstrument(stores.broker, 'PETR4', 32_50);
}, 120_000);

afterAll(async () => {
  await services?.stop();
  await dropRabbitTopology(urls.amqpUrl, rabbitPrefix, RETRY_DELAYS).catch(() => undefined);
  await stores?.broker.close();
  await stores?.b3.close();
});

describe('RabbitMQ restarting in the middle of a stream of orders', () => {
  it('loses nothing and doubles nothing', async () => {
    const { broker, b3 } = stores;
    const pairs = 16;
    const accounts: string[] = [];
    for (let index = 0; index < pairs; index++) {
      await deposit(broker, `restart-buyer-${index}`, 400_000);
      await transferSharesIn(broker, `restart-seller-${index}`, 'PETR4', 100, 30_00);
      accounts.push(`restart-buyer-${index}`, `restart-seller-${index}`);
    }
    const before = await totals(broker, accounts);
    const orders: string[] = [];
    const placePair = async (index: number) => {
      for (const side of ['BUY', 'SELL'] as const) {
        orders.push(
          await placeOrder(broker, {
            accountId: `restart-${side === 'BUY' ? 'buyer' : 'seller'}-${index}`,
            symbol: 'PETR4',
            side,
            quantity: 100,
            price: 33_00,
          }),
        );
      }
    };
    const bridge = services.transport as RabbitMqBridge;
    // A quarter of the orders before the restart, half while RabbitMQ stops and starts again, the
    // last quarter once the bridge has reconnected: whatever the speed of the path, some orders
    // are in flight when the connections drop.
    for (let index = 0; index < pairs / 4; index++) await placePair(index);
    const restart = restartRabbitMq();
    for (let index = pairs / 4; index < (3 * pairs) / 4; index++) await placePair(index);
    await restart;
    await eventually(async () => (bridge.reconnects > 0 ? true : undefined), 30_000);
    for (let index = (3 * pairs) / 4; index < pairs; index++) await placePair(index);

    const filled = await ordersReach(broker, orders, ['FILLED'], 90_000);
    for (const order of filled) expect(order.executions).toHaveLength(1);
    const book = await b3.readStream(bookStreamId('PETR4'));
    for (const orderId of orders) {
      const booked = book.filter(
        (event) => event.type === 'OrderAccepted' && (event.data as { orderId: string }).orderId === orderId,
      );
      expect(booked).toHaveLength(1);
    }
    await eventually(async () => {
      const wallets = await Promise.all(accounts.map((account) => walletOf(broker, account)));
      return wallets.every((wallet) => Object.keys(wallet.reservations).length === 0);
    }, 30_000);
    expect(await totals(broker, accounts)).toEqual(before);
    expect(bridge.reconnects).toBeGreaterThan(0);
  }, 180_000);
});
