/**
 * `npm run bench -- api` (`--quick`: shorter runs; `--modes=embedded|connected`: one mode;
 * `--clients=N`: N clients instead of 8): orders over HTTP against the embedded mode
 * (`tradecore start`, in this process, on a fresh temp data folder: PGlite event stores and read
 * models, in-process transport and caches), with a bounded number of concurrent clients.
 *
 * Each client places a matching SELL and BUY (100 PETR4 at the current quote) and waits for each
 * order's end on the WebSocket stream, then reads `GET /v1/orders/{id}` every POLL_MS until the
 * read model shows it FILLED (or rejected): the latency is POST sent → final status read, so it
 * includes the order process, the B3 engine, the settlement and the projection; the rate is
 * orders that reached their final status per second.
 *
 * Peer: a bare fastify route on the same kind of event store (PGlite) that appends one event per
 * POST and answers 202 — the floor of "an HTTP request that records an order", timed from the
 * same client loop, POST sent → response.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { MongoClient } from 'mongodb';
import { createConnection } from 'mysql2/promise';
import pg from 'pg';
import pino from 'pino';
import WebSocket from 'ws';
import { openPgliteEventStore } from '../../adapters/pglite/event-store.ts';
import { isolatedName, testUrls } from '../../infra/test-infra/isolation.ts';
import { startTradecore } from '../all-in-one/main.ts';
import { loadConfig } from '../shared/config.ts';
import type { BenchOptions } from './main.ts';
import { countOption, listOption } from './options.ts';
import { type BenchRow, compared } from './report.ts';

/** Clients, each with a SELL and a BUY in flight (`--clients=N` overrides). */
const CONCURRENCY = countOption('clients', 8);
/** Buyer/seller pairs, shared by the clients: registration is rate limited (30 a minute per client). */
const PAIRS = 8;
/** After the stream says an order ended: how often the read model is asked until it shows it. */
const POLL_MS = 5;
const FINAL = new Set(['FILLED', 'REJECTED', 'CANCELED', 'EXPIRED']);
const FINAL_EVENTS = new Set(['OrderFilled', 'OrderRejected', 'OrderCanceled', 'OrderExpired']);
const ADMIN_PASSWORD = 'bench-admin-password';

interface Measured {
  completed: number;
  seconds: number;
  latenciesMs: number[];
  outcomes: Record<string, number>;
  /** CPU time of this process (server and bench clients) over the measured window, in ms. */
  cpuMs: number;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

/** Runs `clients` loops of `step` for `seconds`, after `warmupSeconds` whose samples are dropped. */
async function drive(
  clients: number,
  seconds: number,
  warmupSeconds: number,
  step: (client: number, record: (latencyMs: number, outcome: string) => void) => Promise<void>,
): Promise<Measured> {
  const latencies: number[] = [];
  const outcomes: Record<string, number> = {};
  let measuring = false;
  const record = (latencyMs: number, outcome: string) => {
    if (!measuring) return;
    latencies.push(latencyMs);
    outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
  };
  let running = true;
  const loops = Array.from({ length: clients }, async (_, client) => {
    while (running) await step(client, record);
  });
  await sleep(warmupSeconds * 1000);
  measuring = true;
  const started = performance.now();
  const cpuAtStart = process.cpuUsage();
  await sleep(seconds * 1000);
  measuring = false;
  const elapsed = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuAtStart);
  running = false;
  await Promise.all(loops);
  return {
    completed: latencies.length,
    seconds: elapsed,
    cpuMs: (cpu.user + cpu.system) / 1000,
    latenciesMs: latencies.sort((a, b) => a - b),
    outcomes,
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** An answer as the bench reads it: status and body text. */
interface Answer {
  status: number;
  text: string;
}

/**
 * The clients' HTTP: node's own client on kept-alive sockets. The bench runs in the measured
 * process, and `fetch` (undici, its parser in WASM, web streams) cost it about as much CPU as the
 * routes it called.
 */
const agent = new Agent({ keepAlive: true });
function call(url: string, options: { method?: string; token?: string; key?: string; body?: unknown } = {}) {
  const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
  return new Promise<Answer>((resolve, reject) => {
    const outgoing = request(
      url,
      {
        method: options.method ?? (payload === undefined ? 'GET' : 'POST'),
        agent,
        headers: {
          ...(payload === undefined
            ? {}
            : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }),
          ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
          ...(options.key ? { 'idempotency-key': options.key } : {}),
        },
      },
      (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => {
          text += chunk;
        });
        response.on('end', () => resolve({ status: response.statusCode ?? 0, text }));
        response.on('error', reject);
      },
    );
    outgoing.on('error', reject);
    outgoing.end(payload);
  });
}

function json<T>(answer: Answer): T {
  if (answer.status >= 300) throw new Error(`${answer.status} ${answer.text}`);
  return JSON.parse(answer.text) as T;
}

/**
 * The connected mode on this machine's servers (infra/test-infra/up.sh): event stores on Postgres,
 * read models on MySQL, Postgres and Mongo, RabbitMQ between broker and B3, Redis price caches,
 * all in fresh databases, queues and key prefixes dropped afterwards. Kafka is left out: the relay
 * is off the order's path to its final status.
 */
async function connectedServers(): Promise<{ env: Record<string, string>; drop: () => Promise<void> }> {
  const urls = testUrls();
  const name = isolatedName('benchapi');
  const postgres = new pg.Client({ connectionString: urls.databaseUrl });
  await postgres.connect();
  await postgres.query(`CREATE DATABASE ${name}`);
  const mysql = await createConnection(urls.mysqlUrl);
  await mysql.query(`CREATE DATABASE ${name}`);
  const database = (base: string) => {
    const url = new URL(base);
    url.pathname = `/${name}`;
    return url.toString();
  };
  return {
    env: {
      DATABASE_URL: database(urls.databaseUrl),
      MYSQL_URL: database(urls.mysqlUrl),
      MONGO_URL: database(urls.mongoUrl),
      REDIS_URL: urls.redisUrl,
      AMQP_URL: urls.amqpUrl,
    },
    drop: async () => {
      await postgres.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => undefined);
      await postgres.end();
      await mysql.query(`DROP DATABASE IF EXISTS ${name}`).catch(() => undefined);
      await mysql.end();
      const mongo = await new MongoClient(urls.mongoUrl).connect();
      await mongo
        .db(name)
        .dropDatabase()
        .catch(() => undefined);
      await mongo.close();
    },
  };
}

async function tradecoreOverHttp(
  seconds: number,
  warmup: number,
  env: Record<string, string> = {},
): Promise<Measured> {
  const dataDir = await mkdtemp(join(tmpdir(), 'tradecore-bench-api-'));
  const config = loadConfig({
    TRADECORE_DATA_DIR: dataDir,
    PORT: '0',
    LOG_LEVEL: 'silent',
    TRADECORE_ADMIN_PASSWORD: ADMIN_PASSWORD,
    ...env,
  });
  const running = await startTradecore(config, pino({ level: 'silent' }));
  const url = running.url;
  try {
    const post = (path: string, body: unknown, token?: string, key?: string) =>
      call(`${url}${path}`, { body, token, key });
    const login = async (username: string, password: string) =>
      json<{ token: string }>(await post('/v1/auth/login', { username, password })).token;
    const admin = await login('admin', ADMIN_PASSWORD);
    // Buyer/seller pairs, funded well beyond the run.
    const traders = await Promise.all(
      Array.from({ length: PAIRS }, async (_, client) => {
        const make = async (role: string) => {
          const username = `bench-${role}-${client}`;
          const password = 'bench-password';
          const { accountId } = json<{ accountId: string }>(
            await post('/v1/auth/register', { username, password }),
          );
          // The admin acts on every account: one login, since logins are rate limited per client.
          return { accountId, token: admin };
        };
        const buyer = await make('buyer');
        const seller = await make('seller');
        json(
          await post(
            `/v1/accounts/${buyer.accountId}/deposits`,
            { amount: '900000000.00' },
            admin,
            randomUUID(),
          ),
        );
        json(
          await post(
            `/v1/accounts/${seller.accountId}/custody-transfers`,
            { symbol: 'PETR4', quantity: 50_000_000 },
            admin,
            randomUUID(),
          ),
        );
        return { buyer, seller };
      }),
    );
    // The engine needs a reference price: wait for the quote feed's first PETR4 quote.
    let price: string | null = null;
    for (let attempt = 0; attempt < 100 && price === null; attempt++) {
      const quote = await call(`${url}/v1/market/PETR4/quote`, { token: admin });
      if (quote.status === 200) price = (JSON.parse(quote.text) as { last: string | null }).last;
      if (price === null) await sleep(100);
    }
    if (price === null) throw new Error('no PETR4 quote');

    // The order's end comes over the WebSocket (`/v1/stream`, every order for the admin); then the
    // read model is asked until it shows it. Polling the read model alone, 16 clients every few
    // milliseconds, was most of the embedded mode's load.
    const ended = new Map<string, () => void>();
    const endedEarly = new Set<string>();
    const socket = new WebSocket(`${url.replace('http', 'ws')}/v1/stream`, {
      headers: { authorization: `Bearer ${admin}` },
    });
    await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
    socket.on('message', (raw) => {
      const message = JSON.parse(String(raw)) as { channel: string; orderId?: string; event?: string };
      if (message.channel !== 'order' || !message.orderId || !FINAL_EVENTS.has(message.event ?? '')) return;
      const resolve = ended.get(message.orderId);
      if (resolve) resolve();
      else endedEarly.add(message.orderId);
    });
    const follow = async (orderId: string, token: string): Promise<string> => {
      if (!endedEarly.delete(orderId))
        await new Promise<void>((resolve) => ended.set(orderId, resolve)).finally(() =>
          ended.delete(orderId),
        );
      for (;;) {
        const response = await call(`${url}/v1/orders/${orderId}`, { token });
        if (response.status === 200) {
          const { status } = JSON.parse(response.text) as { status: string };
          if (FINAL.has(status)) return status;
        }
        await sleep(POLL_MS);
      }
    };
    const place = async (
      trader: { accountId: string; token: string },
      side: 'BUY' | 'SELL',
      record: (latencyMs: number, outcome: string) => void,
    ) => {
      const sent = performance.now();
      const { orderId } = json<{ orderId: string }>(
        await post(
          '/v1/orders',
          { accountId: trader.accountId, symbol: 'PETR4', side, type: 'LIMIT', quantity: 100, price },
          trader.token,
          randomUUID(),
        ),
      );
      const status = await follow(orderId, trader.token);
      record(performance.now() - sent, status);
    };
    try {
      return await drive(CONCURRENCY, seconds, warmup, async (client, record) => {
        const { buyer, seller } = traders[client % PAIRS]!;
        await Promise.all([place(seller, 'SELL', record), place(buyer, 'BUY', record)]);
      });
    } finally {
      socket.close();
    }
  } finally {
    await running.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

async function bareFastifyAppend(seconds: number, warmup: number): Promise<Measured> {
  const dataDir = await mkdtemp(join(tmpdir(), 'tradecore-bench-api-peer-'));
  const store = await openPgliteEventStore({ dataDir, schema: 'bench' });
  const app = Fastify({ logger: false });
  app.post('/orders', async (request, reply) => {
    const orderId = randomUUID();
    await store.append(
      `order-${orderId}`,
      [
        {
          id: randomUUID(),
          type: 'OrderReceived',
          data: request.body,
          metadata: {
            correlationId: orderId,
            causationId: orderId,
            actor: 'bench',
            occurredAt: new Date().toISOString(),
          },
        },
      ],
      { expectedVersion: 'no_stream' },
    );
    return reply.code(202).send({ orderId, status: 'RECEIVED' });
  });
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  try {
    return await drive(CONCURRENCY * 2, seconds, warmup, async (_client, record) => {
      const sent = performance.now();
      const response = await call(`${url}/orders`, {
        body: { symbol: 'PETR4', side: 'BUY', type: 'LIMIT', quantity: 100, price: '32.50' },
      });
      record(performance.now() - sent, String(response.status));
    });
  } finally {
    await app.close();
    await store.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

const PEER = 'bare fastify + 1 PGlite append';

export default {
  title: `HTTP API: orders placed over HTTP to their final status in the read model (embedded, then connected to the real servers; ${CONCURRENCY * 2} orders in flight) vs ${PEER}`,
  async run(options: BenchOptions): Promise<BenchRow[]> {
    const seconds = options.quick ? 5 : 20;
    const warmup = options.quick ? 1 : 3;
    // `--modes=embedded` (or `connected`) runs one mode only.
    const only = listOption('modes');
    const runs: Array<[string, Measured]> = [];
    if (!only || only.includes('embedded')) runs.push(['embedded', await tradecoreOverHttp(seconds, warmup)]);
    if (!only || only.includes('connected')) {
      const servers = await connectedServers();
      try {
        runs.push(['connected', await tradecoreOverHttp(seconds, warmup, servers.env)]);
      } finally {
        await servers.drop();
      }
    }
    const peer = await bareFastifyAppend(seconds, warmup);
    const rate = (measured: Measured) => measured.completed / measured.seconds;
    const rows: BenchRow[] = [];
    for (const [mode, measured] of runs) {
      const filled = measured.outcomes.FILLED ?? 0;
      if (filled !== measured.completed)
        console.error(
          `api bench (${mode}): outcomes other than FILLED: ${JSON.stringify(measured.outcomes)}`,
        );
      rows.push(
        compared(`${mode}: orders to final status`, rate(measured), 'orders/s', PEER, rate(peer)),
        compared(
          `${mode}: POST → final status p50`,
          percentile(measured.latenciesMs, 50),
          'ms',
          PEER,
          percentile(peer.latenciesMs, 50),
          false,
        ),
        compared(
          `${mode}: POST → final status p99`,
          percentile(measured.latenciesMs, 99),
          'ms',
          PEER,
          percentile(peer.latenciesMs, 99),
          false,
        ),
        // CPU is steadier than rates on a shared machine: what one order costs this process.
        compared(
          `${mode}: process CPU per order`,
          measured.cpuMs / Math.max(1, measured.completed),
          'ms',
          PEER,
          peer.cpuMs / Math.max(1, peer.completed),
          false,
        ),
        { name: `${mode}: orders measured (FILLED)`, value: filled, unit: 'orders' },
      );
    }
    return rows;
  },
};
