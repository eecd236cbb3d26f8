import type { BookCommand, ModifyOrder, PlaceOrder } from './commands.ts';

/**
 * A deliberately simple matcher for the property tests: one plain array of resting orders, a
 * linear scan for the best one every time, a clock for time priority. Slow and obviously right;
 * the engine's trades and queues must equal its own.
 */

export interface ReferenceTrade {
  restingOrderId: string;
  incomingOrderId: string;
  price: number;
  quantity: number;
}

interface Order {
  id: string;
  account: string;
  buy: boolean;
  market: boolean;
  tif: PlaceOrder['timeInForce'];
  price: number;
  stopPrice: number;
  quantity: number;
  remaining: number;
  visible: number;
  display: number;
  /** When the order last joined its queue. */
  time: number;
  arrival: number;
}

export class ReferenceMatcher {
  readonly trades: ReferenceTrade[] = [];
  private resting: Order[] = [];
  private stops: Order[] = [];
  private clock = 0;
  private last = 0;
  private low = 0;
  private high = 0;

  execute(command: BookCommand): void {
    this.clock++;
    switch (command.type) {
      case 'OpenBook':
        this.low = Math.ceil((command.referencePrice * (10_000 - command.priceBandBps)) / 10_000);
        this.high = Math.floor((command.referencePrice * (10_000 + command.priceBandBps)) / 10_000);
        break;
      case 'PlaceOrder':
        this.place(command);
        break;
      case 'CancelOrder': {
        const order = this.find(command.orderId, command.accountId);
        if (order) this.remove(order);
        break;
      }
      case 'ModifyOrder':
        this.modify(command);
        break;
      default:
        throw new Error(`the reference matcher does not model ${command.type}`);
    }
  }

  /** Resting orders as `[id, remaining]`, bids best first then asks best first, each price in time order. */
  book(): { bids: [string, number][]; asks: [string, number][] } {
    const sorted = (buy: boolean) =>
      this.resting
        .filter((order) => order.buy === buy)
        .sort((a, b) =>
          a.price !== b.price ? (buy ? b.price - a.price : a.price - b.price) : a.time - b.time,
        )
        .map((order): [string, number] => [order.id, order.remaining]);
    return { bids: sorted(true), asks: sorted(false) };
  }

  private inBand(price: number): boolean {
    return price >= this.low && price <= this.high;
  }

  private find(id: string, account: string): Order | undefined {
    return [...this.resting, ...this.stops].find((order) => order.id === id && order.account === account);
  }

  private remove(order: Order): void {
    this.resting = this.resting.filter((other) => other !== order);
    this.stops = this.stops.filter((other) => other !== order);
  }

  private place(command: PlaceOrder): void {
    const limited = command.orderType === 'LIMIT' || command.orderType === 'STOP_LIMIT';
    const stop = command.orderType === 'STOP' || command.orderType === 'STOP_LIMIT';
    if (
      this.find(command.orderId, command.accountId) ||
      [...this.resting, ...this.stops].some((o) => o.id === command.orderId)
    )
      return;
    if (limited && !this.inBand(command.price!)) return;
    if (stop && !this.inBand(command.stopPrice!)) return;
    const order: Order = {
      id: command.orderId,
      account: command.accountId,
      buy: command.side === 'BUY',
      market: !limited,
      tif: command.timeInForce,
      price: command.price ?? 0,
      stopPrice: command.stopPrice ?? 0,
      quantity: command.quantity,
      remaining: command.quantity,
      visible: 0,
      display: command.displayQuantity ?? 0,
      time: 0,
      arrival: this.clock,
    };
    if (stop) this.stops.push(order);
    else this.enter(order);
    this.triggerStops();
  }

  private modify(command: ModifyOrder): void {
    const order = this.find(command.orderId, command.accountId);
    if (!order) return;
    const filled = order.quantity - order.remaining;
    if (command.quantity !== undefined && command.quantity <= filled) return;
    if (command.price !== undefined && (order.price === 0 || !this.inBand(command.price))) return;
    const price = command.price ?? order.price;
    const quantity = command.quantity ?? order.quantity;
    const parked = this.stops.includes(order);
    const lost = !parked && (price !== order.price || quantity > order.quantity);
    order.price = price;
    order.quantity = quantity;
    order.remaining = quantity - filled;
    if (parked) return;
    if (lost) {
      this.remove(order);
      this.enter(order);
      this.triggerStops();
    } else if (order.display === 0 || order.remaining < order.visible) order.visible = order.remaining;
  }

  private best(incoming: Order): Order | undefined {
    let best: Order | undefined;
    for (const order of this.resting) {
      if (order.buy === incoming.buy) continue;
      if (
        best === undefined ||
        (incoming.buy ? order.price < best.price : order.price > best.price) ||
        (order.price === best.price && order.time < best.time)
      )
        best = order;
    }
    return best;
  }

  private crosses(incoming: Order, price: number): boolean {
    if (incoming.market) return incoming.buy ? price <= this.high : price >= this.low;
    return incoming.buy ? price <= incoming.price : price >= incoming.price;
  }

  private enter(order: Order): void {
    if (order.market) {
      const best = this.best(order);
      if (!best || !this.crosses(order, best.price)) return;
    }
    if (order.tif === 'FOK') {
      const available = this.resting
        .filter(
          (other) =>
            other.buy !== order.buy && other.account !== order.account && this.crosses(order, other.price),
        )
        .reduce((sum, other) => sum + other.remaining, 0);
      if (available < order.remaining) return;
    }
    for (;;) {
      if (order.remaining === 0) return;
      const best = this.best(order);
      if (!best || !this.crosses(order, best.price)) break;
      if (best.account === order.account) {
        this.remove(best);
        continue;
      }
      const quantity = Math.min(order.remaining, best.visible);
      this.trades.push({ restingOrderId: best.id, incomingOrderId: order.id, price: best.price, quantity });
      this.last = best.price;
      best.remaining -= quantity;
      best.visible -= quantity;
      order.remaining -= quantity;
      if (best.remaining === 0) this.remove(best);
      else if (best.visible === 0) {
        best.visible = Math.min(best.display, best.remaining);
        best.time = ++this.clock;
      }
    }
    if (order.market || order.tif === 'IOC' || order.tif === 'FOK') return;
    order.visible = order.display === 0 ? order.remaining : Math.min(order.display, order.remaining);
    order.time = ++this.clock;
    this.resting.push(order);
  }

  private triggerStops(): void {
    for (;;) {
      if (this.last === 0) return;
      const fired = this.stops.filter((stop) =>
        stop.buy ? this.last >= stop.stopPrice : this.last <= stop.stopPrice,
      );
      if (fired.length === 0) return;
      // Buys fire lowest stop first, sells highest first; ties and the two sides by arrival.
      const first = (buy: boolean) =>
        fired
          .filter((stop) => stop.buy === buy)
          .sort((a, b) =>
            a.stopPrice !== b.stopPrice
              ? buy
                ? a.stopPrice - b.stopPrice
                : b.stopPrice - a.stopPrice
              : a.arrival - b.arrival,
          )[0];
      const candidates = [first(true), first(false)].filter((stop) => stop !== undefined);
      const stop = candidates.sort((a, b) => a.arrival - b.arrival)[0]!;
      this.stops = this.stops.filter((other) => other !== stop);
      this.enter(stop);
    }
  }
}
