/**
 * `npm run bench -- engine`: the B3 matching engine against `nodejs-order-book` on one fixed,
 * seeded workload. Both books get exactly the same operations, in the same order, after the same
 * untimed pre-fill of 10,000 resting orders over 500 price levels; each engine is warmed up on a
 * separate workload first. At the end both books must hold the same bid and ask volume, which
 * shows they did the same work.
 *
 * Mix: 60% limit adds (a fifth of them priced through the spread, so they trade), 25% cancels of a
 * random earlier order (some already filled: both books then answer "unknown order"), 10% market
 * orders, 5% price modifies (both books send the order to the back of the queue at its new price).
 * Every order has its own account, so self-trade prevention never fires in either book.
 *
 * The tradecore engine does its full job on every operation: it creates the `book-{symbol}` events
 * (the events array and its backing store are reused, the event objects are not).
 */

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { OrderBook as ReferenceBook, Side as ReferenceSide } from 'nodejs-order-book';
import type { BookEvent } from '../../domain/b3/book-events.ts';
import type { BookCommand } from '../../domain/b3/commands.ts';
import { OrderBook } from '../../domain/b3/order-book.ts';
import type { BenchOptions } from './main.ts';
import { type BenchRow, compared } from './report.ts';

const PEER = 'nodejs-order-book';
const MID = 100_00;
const LEVELS_PER_SIDE = 250;
const PREFILL_ORDERS = 10_000;
const SWEEP_LOTS = 40;

type Operation =
  | { kind: 'limit'; id: string; side: 'BUY' | 'SELL'; price: number; quantity: number }
  | { kind: 'market'; id: string; side: 'BUY' | 'SELL'; quantity: number }
  | { kind: 'cancel'; id: string }
  | { kind: 'modify'; id: string; price: number };

interface Workload {
  prefill: Operation[];
  operations: Operation[];
  /** Orders resting after the pre-fill, for the memory measurement. */
  memoryOrders: Operation[];
}

/** mulberry32: a small, fast, seeded generator, so every run sees the same workload. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

export function buildWorkload(seed: number, count: number): Workload {
  const random = seeded(seed);
  const integer = (below: number) => Math.floor(random() * below);
  const quantity = () => (1 + integer(10)) * 100;
  /**
   * Adds outnumber cancels, so market orders take more while the book is above its pre-filled size
   * (read from the shadow book below): the book stays near 10,000 resting orders all run long.
   */
  const sweepQuantity = () => (1 + integer(shadowBook.size > PREFILL_ORDERS ? SWEEP_LOTS : 10)) * 100;
  /** A passive price on its own side of the mid: one of 250 levels. */
  const passive = (side: 'BUY' | 'SELL') =>
    side === 'BUY' ? MID - 1 - integer(LEVELS_PER_SIDE) : MID + 1 + integer(LEVELS_PER_SIDE);
  const side = (): 'BUY' | 'SELL' => (random() < 0.5 ? 'BUY' : 'SELL');
  const ids: string[] = [];
  const sides = new Map<string, 'BUY' | 'SELL'>();
  let next = 0;
  const limit = (crossing: boolean): Operation => {
    const id = `o${seed}-${next++}`;
    ids.push(id);
    const s = side();
    sides.set(id, s);
    // Priced through the mid by up to 10 ticks: trades with whatever rests there.
    const price = crossing ? (s === 'BUY' ? MID + 1 + integer(10) : MID - 1 - integer(10)) : passive(s);
    return { kind: 'limit', id, side: s, price, quantity: quantity() };
  };
  // A shadow book tells the generator which orders are still live, so cancels and modifies hit
  // resting orders (and the book stays near its pre-filled size). Generation is not timed.
  const shadowBook = new OrderBook('SHADOW');
  shadowBook.execute({ type: 'OpenBook', referencePrice: MID, priceBandBps: 1_000, at: 0 });
  const apply = commandRunner(shadowBook, []);
  const liveId = (remove: boolean) => {
    while (ids.length > 0) {
      const index = integer(ids.length);
      const id = ids[index]!;
      const live = shadowBook.order(id) !== undefined;
      if (remove || !live) {
        ids[index] = ids[ids.length - 1]!;
        ids.pop();
      }
      if (live) return id;
    }
    return 'gone';
  };
  const prefill: Operation[] = [];
  for (let index = 0; index < PREFILL_ORDERS; index++) {
    const id = `o${seed}-${next++}`;
    ids.push(id);
    const s = index % 2 === 0 ? 'BUY' : 'SELL';
    sides.set(id, s);
    // 20 orders on each of the 500 levels.
    const level = Math.floor(index / 2) % LEVELS_PER_SIDE;
    prefill.push({
      kind: 'limit',
      id,
      side: s,
      price: s === 'BUY' ? MID - 1 - level : MID + 1 + level,
      quantity: quantity(),
    });
    apply(prefill[prefill.length - 1]!);
  }
  const operations: Operation[] = [];
  for (let index = 0; index < count; index++) {
    const roll = random();
    let operation: Operation;
    if (roll < 0.6) operation = limit(random() < 0.2);
    else if (roll < 0.85) operation = { kind: 'cancel', id: liveId(true) };
    else if (roll < 0.95)
      operation = { kind: 'market', id: `m${seed}-${next++}`, side: side(), quantity: sweepQuantity() };
    else {
      const id = liveId(false);
      operation = { kind: 'modify', id, price: passive(sides.get(id)!) };
    }
    operations.push(operation);
    apply(operation);
  }
  const memoryOrders: Operation[] = [];
  for (let index = 0; index < 100_000; index++) {
    const id = `mem${seed}-${index}`;
    const s = index % 2 === 0 ? 'BUY' : 'SELL';
    memoryOrders.push({ kind: 'limit', id, side: s, price: passive(s), quantity: quantity() });
  }
  return { prefill, operations, memoryOrders };
}

/** One book under test: a fresh book, and how it performs one operation. */
interface Contender {
  name: string;
  fresh(): (operation: Operation) => void;
  volumes(run: (operation: Operation) => void): { bid: number; ask: number; orders?: number };
}

/** Turns an operation into the engine's command and executes it, reusing one events array. */
export function commandRunner(book: OrderBook, out: BookEvent[]): (operation: Operation) => void {
  let at = 0;
  return (operation) => {
    // Emptied with pop, not `out.length = 0`: V8 drops the backing store on a zero length, so every
    // command would allocate a new one; pop keeps it.
    while (out.length > 0) out.pop();
    at++;
    let command: BookCommand;
    switch (operation.kind) {
      case 'limit':
        command = {
          type: 'PlaceOrder',
          orderId: operation.id,
          accountId: operation.id,
          side: operation.side,
          orderType: 'LIMIT',
          quantity: operation.quantity,
          price: operation.price,
          timeInForce: 'DAY',
          at,
        };
        break;
      case 'market':
        command = {
          type: 'PlaceOrder',
          orderId: operation.id,
          accountId: operation.id,
          side: operation.side,
          orderType: 'MARKET',
          quantity: operation.quantity,
          timeInForce: 'IOC',
          at,
        };
        break;
      case 'cancel':
        command = { type: 'CancelOrder', orderId: operation.id, accountId: operation.id, at };
        break;
      case 'modify':
        command = {
          type: 'ModifyOrder',
          orderId: operation.id,
          accountId: operation.id,
          price: operation.price,
          at,
        };
        break;
    }
    book.execute(command, out);
  };
}

function engineContender(): Contender {
  let book: OrderBook;
  const out: BookEvent[] = [];
  const commands = new Map<(operation: Operation) => void, OrderBook>();
  return {
    name: 'tradecore engine',
    fresh() {
      book = new OrderBook('PETR4');
      book.execute({ type: 'OpenBook', referencePrice: MID, priceBandBps: 1_000, at: 0 });
      const current = book;
      const run = commandRunner(current, out);
      commands.set(run, current);
      return run;
    },
    volumes(run) {
      const depth = commands.get(run)!.depth();
      const sum = (levels: { quantity: number }[]) =>
        levels.reduce((total, level) => total + level.quantity, 0);
      return { bid: sum(depth.bids), ask: sum(depth.asks), orders: commands.get(run)!.size };
    },
  };
}

function peerContender(): Contender {
  const books = new Map<(operation: Operation) => void, ReferenceBook>();
  return {
    name: PEER,
    fresh() {
      const book = new ReferenceBook();
      const run = (operation: Operation) => {
        switch (operation.kind) {
          case 'limit':
            book.limit({
              id: operation.id,
              side: operation.side === 'BUY' ? ReferenceSide.BUY : ReferenceSide.SELL,
              size: operation.quantity,
              price: operation.price,
              accountId: operation.id,
            });
            break;
          case 'market':
            book.market({
              side: operation.side === 'BUY' ? ReferenceSide.BUY : ReferenceSide.SELL,
              size: operation.quantity,
              accountId: operation.id,
            });
            break;
          case 'cancel':
            book.cancel(operation.id);
            break;
          case 'modify':
            book.modify(operation.id, { price: operation.price });
            break;
        }
      };
      books.set(run, book);
      return run;
    },
    volumes(run) {
      const [asks, bids] = books.get(run)!.depth();
      const sum = (levels: [number, number][]) => levels.reduce((total, [, volume]) => total + volume, 0);
      return { bid: sum(bids), ask: sum(asks) };
    },
  };
}

setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

interface Measurement {
  opsPerSecond: number;
  p50: number;
  p99: number;
  bytesPerOrder: number;
  volumes: { bid: number; ask: number; orders?: number };
}

function measure(contender: Contender, workload: Workload, warmup: Workload): Measurement {
  // Warm-up: a different workload through a throw-away book, so the JIT has seen every path.
  const warm = contender.fresh();
  for (const operation of warmup.prefill) warm(operation);
  for (const operation of warmup.operations) warm(operation);

  // Throughput: the whole workload, no per-operation timing.
  let best = 0;
  let volumes = { bid: 0, ask: 0 } as Measurement['volumes'];
  for (let round = 0; round < 3; round++) {
    const run = contender.fresh();
    for (const operation of workload.prefill) run(operation);
    collectGarbage();
    const operations = workload.operations;
    const started = performance.now();
    for (let index = 0; index < operations.length; index++) run(operations[index]!);
    const elapsed = performance.now() - started;
    best = Math.max(best, operations.length / (elapsed / 1000));
    volumes = contender.volumes(run);
  }

  // Latency: the same workload again, each operation timed on its own.
  const run = contender.fresh();
  for (const operation of workload.prefill) run(operation);
  collectGarbage();
  const operations = workload.operations;
  const latencies = new Float64Array(operations.length);
  for (let index = 0; index < operations.length; index++) {
    const started = performance.now();
    run(operations[index]!);
    latencies[index] = performance.now() - started;
  }
  latencies.sort();
  const percentile = (p: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))]! * 1e6;

  // Memory: heap growth per resting order, after a full collection on both sides.
  const memory = contender.fresh();
  collectGarbage();
  const before = process.memoryUsage().heapUsed;
  for (const operation of workload.memoryOrders) memory(operation);
  collectGarbage();
  const bytesPerOrder = (process.memoryUsage().heapUsed - before) / workload.memoryOrders.length;
  memory({ kind: 'cancel', id: 'keep-the-book-alive' });

  return { opsPerSecond: best, p50: percentile(0.5), p99: percentile(0.99), bytesPerOrder, volumes };
}

/** The timer's own cost, so the latency figures can be read against it. */
function timerOverhead(): number {
  const samples = new Float64Array(100_000);
  for (let index = 0; index < samples.length; index++) {
    const started = performance.now();
    samples[index] = performance.now() - started;
  }
  samples.sort();
  return samples[samples.length >> 1]! * 1e6;
}

export default {
  title: `Matching engine: tradecore vs ${PEER} (one core, same seeded workload)`,
  async run(options: BenchOptions): Promise<BenchRow[]> {
    const count = options.quick ? 200_000 : 1_000_000;
    const workload = buildWorkload(42, count);
    const warmup = buildWorkload(7, Math.min(count, 300_000));
    const engine = measure(engineContender(), workload, warmup);
    const peer = measure(peerContender(), workload, warmup);
    if (engine.volumes.bid !== peer.volumes.bid || engine.volumes.ask !== peer.volumes.ask)
      throw new Error(
        `the books disagree after the workload: tradecore ${JSON.stringify(engine.volumes)}, ${PEER} ${JSON.stringify(peer.volumes)}`,
      );
    return [
      compared('throughput', engine.opsPerSecond, 'ops/s', PEER, peer.opsPerSecond),
      compared('latency p50', engine.p50, 'ns/op', PEER, peer.p50, false),
      compared('latency p99', engine.p99, 'ns/op', PEER, peer.p99, false),
      compared('memory per resting order', engine.bytesPerOrder, 'bytes', PEER, peer.bytesPerOrder, false),
      { name: 'operations in the workload', value: count, unit: 'ops' },
      { name: 'resting orders after the workload', value: engine.volumes.orders ?? 0, unit: 'orders' },
      { name: 'timer overhead (in the latencies)', value: timerOverhead(), unit: 'ns' },
    ];
  },
};
