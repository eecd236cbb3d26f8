/**
 * Test support: closes a RabbitMQ client connection from the server side by its connection name
 * (`rabbitmqctl close_connection`), as a broker restart or a network cut would, without touching
 * the server other tests share. Not for production code.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import amqp from 'amqplib';
import { TRANSPORT_CHANNELS } from '../../domain/shared/transport.ts';
import { topologyNames } from './bridge.ts';

const execFileAsync = promisify(execFile);

/** Closes every server-side connection named `connectionName`; returns how many it closed. */
export async function closeConnectionByName(connectionName: string): Promise<number> {
  const { stdout } = await execFileAsync('rabbitmqctl', [
    'list_connections',
    '--quiet',
    '--no-table-headers',
    'pid',
    'client_properties',
  ]);
  const pids = stdout
    .split('\n')
    .filter((line) => line.includes(`{"connection_name","${connectionName}"}`))
    .map((line) => line.split('\t')[0]!);
  for (const pid of pids)
    await execFileAsync('rabbitmqctl', ['close_connection', pid, 'test: connection killed']);
  return pids.length;
}

/** Deletes the queues and exchanges a prefix declared (retry queues for the given delays). */
export async function dropRabbitTopology(
  url: string,
  prefix: string,
  delays: readonly number[],
): Promise<void> {
  const connection = await amqp.connect(url);
  try {
    const channel = await connection.createChannel();
    for (const name of TRANSPORT_CHANNELS) {
      const names = topologyNames(name, prefix);
      for (const delay of delays) await channel.deleteQueue(names.retryQueue(delay));
      for (const queue of [names.queue, names.deadLetterQueue]) await channel.deleteQueue(queue);
      for (const exchange of [names.exchange, names.deadLetterExchange, names.retryExchange])
        await channel.deleteExchange(exchange);
    }
    await channel.close();
  } finally {
    await connection.close();
  }
}
