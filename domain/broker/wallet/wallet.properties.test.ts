import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { replay } from '../../shared/decider.ts';
import { DomainError } from '../../shared/domain-error.ts';
import { EventSchemas } from '../../shared/event-schemas.ts';
import type { WalletEvent } from './events.ts';
import { walletEvents } from './events.ts';
import { initialWallet, type Wallet, type WalletCommand, walletDecider } from './wallet.ts';

const schemas = new EventSchemas([...walletEvents]);
const metadata = {
  correlationId: 'c',
  causationId: 'c',
  actor: 'property',
  occurredAt: '2025-03-14T13:00:00Z',
};

const symbol = fc.constantFrom('PETR4', 'PETR4F', 'VALE3');
const orderId = fc.constantFrom('o1', 'o2', 'o3', 'o4');
const executionId = fc.constantFrom('x1', 'x2', 'x3', 'x4', 'x5', 'x6');
const quantity = fc.integer({ min: 1, max: 400 });
const price = fc.integer({ min: 1, max: 5_000 });

const walletCommand: fc.Arbitrary<WalletCommand> = fc.oneof(
  fc.record({ type: fc.constant('Deposit' as const), amount: fc.integer({ min: 1, max: 2_000_000 }) }),
  fc.record({ type: fc.constant('Withdraw' as const), amount: fc.integer({ min: 1, max: 2_000_000 }) }),
  fc.record({ type: fc.constant('TransferSharesIn' as const), symbol, quantity, unitCost: price }),
  fc.record({ type: fc.constant('TransferSharesOut' as const), symbol, quantity }),
  fc.record({
    type: fc.constant('ReserveCash' as const),
    orderId,
    symbol,
    quantity,
    pricing: fc.oneof(
      fc.record({ kind: fc.constant('LIMIT' as const), limitPrice: price }),
      fc.record({
        kind: fc.constant('MARKET' as const),
        referencePrice: price,
        priceBandPercent: fc.constantFrom(2.5, 5, 10, 20),
      }),
    ),
  }),
  fc.record({ type: fc.constant('ReserveShares' as const), orderId, symbol, quantity }),
  fc.record({ type: fc.constant('SettleExecution' as const), executionId, orderId, quantity, price }),
  fc.record({ type: fc.constant('ReleaseReservation' as const), orderId }),
);

/** Applies a command the way the application service does: a domain rejection leaves the wallet as it was. */
function apply(wallet: Wallet, command: WalletCommand): { wallet: Wallet; events: WalletEvent[] } {
  try {
    const events = walletDecider.decide(command, wallet);
    return { wallet: events.reduce(walletDecider.evolve, wallet), events };
  } catch (error) {
    if (error instanceof DomainError) return { wallet, events: [] };
    throw error;
  }
}

/** A run of commands, one after another as `apply` takes them: the wallet it ends with, and its events. */
function run(commands: WalletCommand[]): { wallet: Wallet; history: WalletEvent[] } {
  let wallet = initialWallet();
  const history: WalletEvent[] = [];
  for (const command of commands) {
    const outcome = apply(wallet, command);
    wallet = outcome.wallet;
    history.push(...outcome.events);
  }
  return { wallet, history };
}

/**
 * Nothing goes below zero, except available cash by what fills above their reservation took from it
 * (`owed`: the sum of their `fromAvailable`), which B3 had traded and the wallet had to book.
 */
function expectNothingNegative(wallet: Wallet, owed = 0): void {
  expect(wallet.cash.available).toBeGreaterThanOrEqual(-owed);
  expect(wallet.cash.reserved).toBeGreaterThanOrEqual(0);
  for (const held of Object.values(wallet.positions)) {
    expect(held.available).toBeGreaterThanOrEqual(0);
    expect(held.reserved).toBeGreaterThanOrEqual(0);
    expect(held.costBasis).toBeGreaterThanOrEqual(0);
  }
  for (const reservation of Object.values(wallet.reservations)) {
    expect(reservation.quantity).toBeGreaterThan(0);
    if (reservation.side === 'BUY') expect(reservation.amount).toBe(reservation.quantity * reservation.price);
  }
}

/** Reserved cash and shares are exactly what the open reservations hold. */
function expectReservationsAddUp(wallet: Wallet): void {
  const reservations = Object.values(wallet.reservations);
  const cash = reservations.reduce((sum, r) => sum + (r.side === 'BUY' ? r.amount : 0), 0);
  expect(wallet.cash.reserved).toBe(cash);
  for (const [symbol, held] of Object.entries(wallet.positions)) {
    const shares = reservations.reduce(
      (sum, r) => sum + (r.side === 'SELL' && r.symbol === symbol ? r.quantity : 0),
      0,
    );
    expect(held.reserved).toBe(shares);
  }
}

const totalCash = (wallets: Wallet[]) =>
  wallets.reduce((sum, w) => sum + w.cash.available + w.cash.reserved, 0);
const totalShares = (wallets: Wallet[], symbol: string) =>
  wallets.reduce(
    (sum, w) => sum + (w.positions[symbol]?.available ?? 0) + (w.positions[symbol]?.reserved ?? 0),
    0,
  );

describe('wallet properties', () => {
  it('no wallet goes below zero but by fills above their reservation, and reservations always add up, over random command sequences', () =>
    fc.assert(
      fc.property(fc.array(walletCommand, { maxLength: 60 }), (commands) => {
        let wallet = initialWallet();
        let owed = 0;
        for (const command of commands) {
          const before = wallet.cash.available;
          const outcome = apply(wallet, command);
          wallet = outcome.wallet;
          for (const event of outcome.events)
            if (event.type === 'BuySettled') owed += event.data.fromAvailable;
          expectNothingNegative(wallet, owed);
          expectReservationsAddUp(wallet);
          // Only a settlement takes available cash below zero, or further below it.
          if (command.type !== 'SettleExecution' && wallet.cash.available < 0)
            expect(wallet.cash.available).toBeGreaterThanOrEqual(before);
        }
      }),
      { numRuns: 500 },
    ));

  it('replaying the events of any run rebuilds exactly the state of that run, and every event passes its schema', () =>
    fc.assert(
      fc.property(fc.array(walletCommand, { maxLength: 60 }), (commands) => {
        const { wallet, history } = run(commands);
        for (const [index, event] of history.entries())
          schemas.encode({ id: `e${index}`, ...event, metadata });
        // Through JSON too: what the event store returns is what was stored, not the live objects.
        const stored = JSON.parse(JSON.stringify(history)) as WalletEvent[];
        expect(replay(walletDecider, stored)).toEqual(wallet);
      }),
      { numRuns: 300 },
    ));

  it('folding many events at once (evolveAll) gives what evolving one by one does, and leaves the state it started from as it was', () =>
    fc.assert(
      fc.property(fc.array(walletCommand, { maxLength: 60 }), fc.nat(), (commands, cut) => {
        const { wallet, history } = run(commands);
        const at = history.length === 0 ? 0 : cut % (history.length + 1);
        const middle = walletDecider.evolveAll!(initialWallet(), history.slice(0, at));
        const middleAsItWas = structuredClone(middle);
        expect(walletDecider.evolveAll!(middle, history.slice(at))).toEqual(wallet);
        expect(middle).toEqual(middleAsItWas);
        // And again from the same middle: nothing of the first fold leaked into it.
        expect(walletDecider.evolveAll!(middle, history.slice(at))).toEqual(wallet);
      }),
      { numRuns: 300 },
    ));

  it('a command on a wallet never throws anything but a domain rejection', () =>
    fc.assert(
      fc.property(fc.array(walletCommand, { maxLength: 40 }), (commands) => {
        let wallet = initialWallet();
        for (const command of commands) wallet = apply(wallet, command).wallet; // apply rethrows anything else
      }),
    ));

  // A trade between a buyer's and a seller's wallet: both sides settle the same execution, or neither does.
  const trade = fc.record({
    executionId: fc.nat({ max: 40 }).map((n) => `x${n}`),
    buyOrder: fc.constantFrom('b1', 'b2'),
    sellOrder: fc.constantFrom('s1', 's2'),
    quantity: fc.integer({ min: 1, max: 80 }),
    // Mostly within both reservations' prices, sometimes above the buyer's: a rejection, nothing settles.
    price: fc.integer({ min: 2_000, max: 3_400 }),
  });
  const step = fc.oneof(
    { weight: 5, arbitrary: trade.map((t) => ({ kind: 'trade' as const, ...t })) },
    {
      weight: 1,
      arbitrary: fc
        .constantFrom('b1', 'b2', 's1', 's2')
        .map((o) => ({ kind: 'release' as const, orderId: o })),
    },
  );

  it('a trade settled between a buyer and a seller conserves cash and shares', () => {
    let settledTrades = 0;
    fc.assert(
      fc.property(
        fc.integer({ min: 2_100_000, max: 5_000_000 }),
        fc.integer({ min: 600, max: 1_000 }),
        fc.tuple(fc.integer({ min: 100, max: 500 }), fc.integer({ min: 40, max: 99 })),
        fc.tuple(fc.integer({ min: 100, max: 500 }), fc.integer({ min: 40, max: 99 })),
        fc.array(step, { minLength: 5, maxLength: 30 }),
        (cash, shares, [buy1, buy2], [sell1, sell2], steps) => {
          let buyer = apply(initialWallet(), { type: 'Deposit', amount: cash }).wallet;
          let seller = apply(initialWallet(), {
            type: 'TransferSharesIn',
            symbol: 'PETR4',
            quantity: shares,
            unitCost: 2_500,
          }).wallet;
          buyer = apply(buyer, {
            type: 'ReserveCash',
            orderId: 'b1',
            symbol: 'PETR4',
            quantity: buy1,
            pricing: { kind: 'LIMIT', limitPrice: 3_500 },
          }).wallet;
          buyer = apply(buyer, {
            type: 'ReserveCash',
            orderId: 'b2',
            symbol: 'PETR4F',
            quantity: buy2,
            pricing: { kind: 'MARKET', referencePrice: 3_000, priceBandPercent: 10 },
          }).wallet;
          seller = apply(seller, {
            type: 'ReserveShares',
            orderId: 's1',
            symbol: 'PETR4',
            quantity: sell1,
          }).wallet;
          seller = apply(seller, {
            type: 'ReserveShares',
            orderId: 's2',
            symbol: 'PETR4F',
            quantity: sell2,
          }).wallet;

          for (const s of steps) {
            const cashBefore = totalCash([buyer, seller]);
            const sharesBefore = totalShares([buyer, seller], 'PETR4');
            if (s.kind === 'release') {
              const owner = s.orderId.startsWith('b') ? 'buyer' : 'seller';
              if (owner === 'buyer')
                buyer = apply(buyer, { type: 'ReleaseReservation', orderId: s.orderId }).wallet;
              else seller = apply(seller, { type: 'ReleaseReservation', orderId: s.orderId }).wallet;
            } else {
              const settle = (orderId: string): WalletCommand => ({
                type: 'SettleExecution',
                executionId: s.executionId,
                orderId,
                quantity: s.quantity,
                price: s.price,
              });
              let buyerEvents: WalletEvent[];
              let sellerEvents: WalletEvent[];
              try {
                buyerEvents = walletDecider.decide(settle(s.buyOrder), buyer);
                sellerEvents = walletDecider.decide(settle(s.sellOrder), seller);
              } catch (error) {
                if (error instanceof DomainError) continue;
                throw error;
              }
              // Redelivered executions settle nothing on either side; a fresh one settles on both.
              if (buyerEvents.length !== sellerEvents.length) continue;
              buyer = buyerEvents.reduce(walletDecider.evolve, buyer);
              seller = sellerEvents.reduce(walletDecider.evolve, seller);
              settledTrades += buyerEvents.length;
            }
            expect(totalCash([buyer, seller])).toBe(cashBefore);
            expect(totalShares([buyer, seller], 'PETR4')).toBe(sharesBefore);
            expectNothingNegative(buyer);
            expectNothingNegative(seller);
          }
        },
      ),
      { numRuns: 500 },
    );
    // The property is only worth something if many generated trades actually settle.
    expect(settledTrades).toBeGreaterThan(1_000);
  });
});
