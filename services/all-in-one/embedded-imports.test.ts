/**
 * The embedded mode loads no server's client: `tradecore start` and every CLI command import the
 * all-in-one, and loading gRPC, pg, mysql2, mongodb, kafkajs, amqplib and ioredis cost each about
 * a second of CPU for nothing. Each adapter is imported where its URL is set (services/shared).
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const SERVER_CLIENTS = ['@eventstore/db-client', 'pg', 'mysql2', 'mongodb', 'kafkajs', 'amqplib', 'ioredis'];

it('imports the all-in-one and the CLI without loading any server client', async () => {
  const entries = ['../all-in-one/main.ts', '../cli/commands.ts'].map((entry) =>
    fileURLToPath(new URL(entry, import.meta.url)),
  );
  // A fresh node (vitest's own module graph would hide what plain node loads), through tsx as bin.js runs.
  const script = `
    const { createRequire } = await import('node:module');
    for (const entry of ${JSON.stringify(entries)}) await import(entry);
    const loaded = Object.keys(createRequire(import.meta.url).cache).map((file) => file.split('/node_modules/').pop());
    console.log(JSON.stringify(${JSON.stringify(SERVER_CLIENTS)}.filter((name) => loaded.some((file) => file.startsWith(name + '/')))));
    process.exit(0);
  `;
  const stdout = await new Promise<string>((resolve, reject) =>
    execFile(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script],
      { cwd: fileURLToPath(new URL('../..', import.meta.url)), timeout: 60_000 },
      (error, out, err) => (error ? reject(new Error(`${error.message}\n${err}`)) : resolve(out)),
    ),
  );
  expect(JSON.parse(stdout.trim().split('\n').at(-1)!)).toEqual([]);
}, 90_000);
