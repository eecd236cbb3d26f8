import { describe, expect, it } from 'vitest';
import { EventSchemas } from '../../shared/event-schemas.ts';
import type { RecordedEvent } from '../../shared/event-store.ts';
import { specification } from '../../shared/testing.ts';
import { InvalidAmount, InvalidPrice, InvalidQuantity, InvalidSymbol } from '../errors.ts';
import {
  AmountTooLarge,
  BalanceTooLarge,
  CostBasisTooLarge,
  DuplicateReservation,
  ExecutionExceedsReservation,
  InsufficientFunds,
  InsufficientShares,
  InvalidPriceBand,
  PositionTooLarge,
  ReservationNotFound,
} from './errors.ts';
import { type WalletEvent, walletEvents } from './events.ts';
import { buyReservationPrice, walletDecider } from './wallet.ts';

const given = specification(walletDecider, { events: walletEvents });

const deposited = (amount: number): WalletEvent => ({ type: 'CashDeposited', data: { amount } });
const transferredIn = (symbol: string, quantity: number, unitCost = 3000): WalletEvent => ({
  type: 'SharesTransferredIn',
  data: { symbol, quantity, unitCost },
});
const cashReserved = (orderId: string, quantity: number, price: number): WalletEvent => ({
  type: 'CashReserved',
  data: { orderId, symbol: 'PETR4', quantity, price, amount: quantity * price, basis: 'LIMIT_PRICE' },
});
const sharesReserved = (orderId: string, quantity: number, symbol = 'PETR4'): WalletEvent => ({
  type: 'SharesReserved',
  data: { orderId, symbol, quantity },
});
const buySettled = (
  executionId: string,
  orderId: string,
  quantity: number,
  price: number,
  reserved: number,
): WalletEvent => ({
  type: 'BuySettled',
  data: {
    executionId,
    orderId,
    symbol: 'PETR4',
    quantity,
    price,
    amount: quantity * price,
    released: Math.max(0, quantity * (reserved - price)),
    fromAvailable: Math.max(0, quantity * (price - reserved)),
  },
});

describe('deposits and withdrawals', () => {
  it('credits a deposit to available cash', () =>
    given([])
      .when({ type: 'Deposit', amount: 100_000 })
      .then([deposited(100_000)]));
  it('refuses a deposit that is not a whole positive number of cents', () => {
    given([]).when({ type: 'Deposit', amount: 0 }).thenThrows(InvalidAmount);
    given([]).when({ type: 'Deposit', amount: 10.5 }).thenThrows(InvalidAmount);
    given([]).when({ type: 'Deposit', amount: -100 }).thenThrows(InvalidAmount);
  });
  it('refuses a deposit that would overflow exact cents, saying so', () => {
    given([deposited(Number.MAX_SAFE_INTEGER - 10)])
      .when({ type: 'Deposit', amount: 100 })
      .thenThrows(BalanceTooLarge, { amount: 100, balance: Number.MAX_SAFE_INTEGER - 10 });
    expect(() =>
      walletDecider.decide(
        { type: 'Deposit', amount: 100 },
        walletDecider.evolve(walletDecider.initial(), deposited(Number.MAX_SAFE_INTEGER - 10)),
      ),
    ).toThrow(
      'a deposit of 1.00 would take the balance of 90071992547409.81 past the largest amount kept exactly',
    );
  });
  it('withdraws up to the available cash', () =>
    given([deposited(100_000)])
      .when({ type: 'Withdraw', amount: 100_000 })
      .then([{ type: 'CashWithdrawn', data: { amount: 100_000 } }]));
  it('refuses a withdrawal above the available cash', () =>
    given([deposited(10_000)])
      .when({ type: 'Withdraw', amount: 10_001 })
      .thenThrows(InsufficientFunds, { requested: 10_001, available: 10_000 }));
  it('says the amounts of a refused withdrawal as decimals', () =>
    expect(() =>
      walletDecider.decide(
        { type: 'Withdraw', amount: 10_001 },
        walletDecider.evolve(walletDecider.initial(), deposited(10_000)),
      ),
    ).toThrow('requested 100.01, 100.00 available'));
  it('does not let reserved cash be withdrawn', () =>
    given([deposited(100_000), cashReserved('o1', 100, 900)])
      .when({ type: 'Withdraw', amount: 20_000 })
      .thenThrows(InsufficientFunds, { available: 10_000 }));
  it('refuses a withdrawal that is not a whole positive number of cents', () =>
    given([deposited(100)])
      .when({ type: 'Withdraw', amount: 0 })
      .thenThrows(InvalidAmount));
});

describe('custody transfers', () => {
  it('brings shares into custody at their declared cost', () =>
    given([])
      .when({ type: 'TransferSharesIn', symbol: 'PETR4', quantity: 300, unitCost: 3000 })
      .then([transferredIn('PETR4', 300, 3000)]));
  it('keeps the average cost when no cost is declared', () =>
    given([transferredIn('PETR4', 100, 3000)])
      .when({ type: 'TransferSharesIn', symbol: 'PETR4', quantity: 100 })
      .then([transferredIn('PETR4', 100, 3000)]));
  it('files a fractional ticker under its custody position', () =>
    given([])
      .when({ type: 'TransferSharesIn', symbol: 'PETR4F', quantity: 7, unitCost: 3000 })
      .then([transferredIn('PETR4', 7, 3000)]));
  it('refuses a symbol that is not a B3 ticker', () =>
    given([]).when({ type: 'TransferSharesIn', symbol: 'ACME', quantity: 1 }).thenThrows(InvalidSymbol));
  it('refuses a quantity that is not a whole positive number', () =>
    given([]).when({ type: 'TransferSharesIn', symbol: 'PETR4', quantity: 1.5 }).thenThrows(InvalidQuantity));
  it('refuses a negative declared cost', () =>
    given([])
      .when({ type: 'TransferSharesIn', symbol: 'PETR4', quantity: 1, unitCost: -1 })
      .thenThrows(InvalidPrice));
  it('refuses a cost past the exact range as AMOUNT_TOO_LARGE, naming the amount, not the quantity', () => {
    const refusal = () =>
      walletDecider.decide(
        { type: 'TransferSharesIn', symbol: 'ABCD7', quantity: 1000, unitCost: 9_999_999_999_999 },
        walletDecider.initial(),
      );
    given([])
      .when({ type: 'TransferSharesIn', symbol: 'ABCD7', quantity: 1000, unitCost: 9_999_999_999_999 })
      .thenThrows(AmountTooLarge, {
        what: 'cost',
        quantity: 1000,
        price: 9_999_999_999_999,
        amount: '99999999999990.00',
      });
    expect(refusal).toThrow(
      'the cost of 1000 × 99999999999.99 = 99999999999990.00 is past the largest amount kept exactly, 90071992547409.91',
    );
  });
  it("refuses a transfer that would take the position's cost basis past the exact range", () =>
    // Each transfer's cost is exact (8 999 999 999 999 100 cents); the two together are not.
    given([transferredIn('VALE3', 900, 9_999_999_999_999)])
      .when({ type: 'TransferSharesIn', symbol: 'VALE3', quantity: 900, unitCost: 9_999_999_999_999 })
      .thenThrows(CostBasisTooLarge, {
        symbol: 'VALE3',
        costBasis: 8_999_999_999_999_100,
        adding: 8_999_999_999_999_100,
      }));
  it('counts the cost an open buy will add when it settles', () =>
    given([deposited(9_000_000_000_000_000), cashReserved('o1', 100, 80_000_000_000_000)])
      .when({ type: 'TransferSharesIn', symbol: 'PETR4', quantity: 100, unitCost: 20_000_000_000_000 })
      .thenThrows(CostBasisTooLarge, { costBasis: 8_000_000_000_000_000, adding: 2_000_000_000_000_000 }));
  it('refuses a transfer that would take the position past the exact number of shares', () =>
    given([transferredIn('PETR4', Number.MAX_SAFE_INTEGER - 10, 0)])
      .when({ type: 'TransferSharesIn', symbol: 'PETR4', quantity: 100, unitCost: 0 })
      .thenThrows(PositionTooLarge, { held: Number.MAX_SAFE_INTEGER - 10, adding: 100 }));
  it('accepts a zero declared cost: shares transferred in at no cost', () =>
    given([])
      .when({ type: 'TransferSharesIn', symbol: 'PETR4', quantity: 100, unitCost: 0 })
      .then([transferredIn('PETR4', 100, 0)]));
  it('transfers shares out with their share of the cost basis', () =>
    given([transferredIn('PETR4', 300, 3000)])
      .when({ type: 'TransferSharesOut', symbol: 'PETR4', quantity: 100 })
      .then([
        { type: 'SharesTransferredOut', data: { symbol: 'PETR4', quantity: 100, costBasisRemoved: 300_000 } },
      ]));
  it('refuses to transfer out more than the available shares', () =>
    given([transferredIn('PETR4', 300), sharesReserved('o1', 200)])
      .when({ type: 'TransferSharesOut', symbol: 'PETR4', quantity: 200 })
      .thenThrows(InsufficientShares, { symbol: 'PETR4', requested: 200, available: 100 }));
  it('removes a position that no longer holds shares', () =>
    given([transferredIn('PETR4', 100)])
      .when({ type: 'TransferSharesOut', symbol: 'PETR4', quantity: 100 })
      .thenState((wallet) => expect(wallet.positions).toEqual({})));
});

describe('reserving cash for a buy', () => {
  it('reserves quantity × limit price', () =>
    given([deposited(500_000)])
      .when({
        type: 'ReserveCash',
        orderId: 'o1',
        symbol: 'PETR4',
        quantity: 100,
        pricing: { kind: 'LIMIT', limitPrice: 3250 },
      })
      .then([cashReserved('o1', 100, 3250)]));
  it('moves the amount from available to reserved cash', () =>
    given([deposited(500_000)])
      .when({
        type: 'ReserveCash',
        orderId: 'o1',
        symbol: 'PETR4',
        quantity: 100,
        pricing: { kind: 'LIMIT', limitPrice: 3250 },
      })
      .thenState((wallet) => expect(wallet.cash).toEqual({ available: 175_000, reserved: 325_000 })));
  it('reserves quantity × the price band upper edge for a market buy', () =>
    given([deposited(500_000)])
      .when({
        type: 'ReserveCash',
        orderId: 'o1',
        symbol: 'PETR4',
        quantity: 100,
        pricing: { kind: 'MARKET', referencePrice: 3250, priceBandPercent: 10 },
      })
      .then([
        {
          type: 'CashReserved',
          data: {
            orderId: 'o1',
            symbol: 'PETR4',
            quantity: 100,
            price: 3575,
            amount: 357_500,
            basis: 'PRICE_BAND_UPPER_EDGE',
          },
        },
      ]));
  it('rounds the band edge down to the cent', () => {
    expect(buyReservationPrice({ kind: 'MARKET', referencePrice: 3333, priceBandPercent: 2.5 }).price).toBe(
      3416,
    );
    expect(buyReservationPrice({ kind: 'LIMIT', limitPrice: 1 }).price).toBe(1);
  });
  it('refuses a price band outside 0–100 % or with more than two decimals', () => {
    const reserve = (priceBandPercent: number) =>
      given([deposited(1_000_000)])
        .when({
          type: 'ReserveCash',
          orderId: 'o1',
          symbol: 'PETR4',
          quantity: 1,
          pricing: { kind: 'MARKET', referencePrice: 3250, priceBandPercent },
        })
        .thenThrows(InvalidPriceBand);
    reserve(0);
    reserve(101);
    reserve(2.555);
    reserve(Number.NaN);
  });
  it('refuses a buy the available cash cannot pay for', () =>
    given([deposited(10_000)])
      .when({
        type: 'ReserveCash',
        orderId: 'o1',
        symbol: 'PETR4',
        quantity: 100,
        pricing: { kind: 'LIMIT', limitPrice: 3250 },
      })
      .thenThrows(InsufficientFunds, { requested: 325_000, available: 10_000 }));
  it('refuses a non-positive limit price', () =>
    given([deposited(10_000)])
      .when({
        type: 'ReserveCash',
        orderId: 'o1',
        symbol: 'PETR4',
        quantity: 1,
        pricing: { kind: 'LIMIT', limitPrice: 0 },
      })
      .thenThrows(InvalidPrice));
  it('refuses a non-positive reference price for a market buy', () =>
    given([deposited(10_000)])
      .when({
        type: 'ReserveCash',
        orderId: 'o1',
        symbol: 'PETR4',
        quantity: 1,
        pricing: { kind: 'MARKET', referencePrice: 0, priceBandPercent: 10 },
      })
      .thenThrows(InvalidPrice));
  it('refuses a sell whose proceeds at its price would take the balance past the exact range', () => {
    given([deposited(Number.MAX_SAFE_INTEGER - 1_000), transferredIn('PETR4', 100)])
      .when({ type: 'ReserveShares', orderId: 'o1', symbol: 'PETR4', quantity: 100, proceedsPrice: 3250 })
      .thenThrows(BalanceTooLarge, {
        what: 'sale',
        amount: 325_000,
        balance: Number.MAX_SAFE_INTEGER - 1_000,
      });
    given([deposited(Number.MAX_SAFE_INTEGER - 1_000_000), transferredIn('PETR4', 100)])
      .when({ type: 'ReserveShares', orderId: 'o1', symbol: 'PETR4', quantity: 100, proceedsPrice: 3250 })
      .then([sharesReserved('o1', 100)]);
    given([transferredIn('PETR4', 1000)])
      .when({
        type: 'ReserveShares',
        orderId: 'o1',
        symbol: 'PETR4',
        quantity: 1000,
        proceedsPrice: 9_999_999_999_999,
      })
      .thenThrows(AmountTooLarge, { what: 'proceeds', amount: '99999999999990.00' });
  });
  it('refuses a reservation past the exact range as AMOUNT_TOO_LARGE, naming the amount', () =>
    given([deposited(10_000)])
      .when({
        type: 'ReserveCash',
        orderId: 'o1',
        symbol: 'PETR4',
        quantity: 100,
        pricing: { kind: 'LIMIT', limitPrice: 999_999_999_999_999 },
      })
      .thenThrows(AmountTooLarge, { what: 'reservation', quantity: 100, amount: '999999999999999.00' }));
  it('refuses a market buy as AMOUNT_TOO_LARGE when the band over its reference price ends past the exact range', () =>
    given([deposited(10_000)])
      .when({
        type: 'ReserveCash',
        orderId: 'o1',
        symbol: 'PETR4',
        quantity: 100,
        pricing: { kind: 'MARKET', referencePrice: 9_000_000_000_000_000, priceBandPercent: 10 },
      })
      .thenThrows(AmountTooLarge, { what: 'reservation', price: Number.MAX_SAFE_INTEGER }));
  it("refuses a buy whose settlement would take the position's cost basis past the exact range", () =>
    given([deposited(2_000_000_000_000_000), transferredIn('PETR4', 100, 80_000_000_000_000)])
      .when({
        type: 'ReserveCash',
        orderId: 'o1',
        symbol: 'PETR4',
        quantity: 100,
        pricing: { kind: 'LIMIT', limitPrice: 20_000_000_000_000 },
      })
      .thenThrows(CostBasisTooLarge, { costBasis: 8_000_000_000_000_000, adding: 2_000_000_000_000_000 }));
  it('refuses a quantity that is not a whole positive number', () =>
    given([deposited(10_000)])
      .when({
        type: 'ReserveCash',
        orderId: 'o1',
        symbol: 'PETR4',
        quantity: 0,
        pricing: { kind: 'LIMIT', limitPrice: 1 },
      })
      .thenThrows(InvalidQuantity));
  it('changes nothing when the same reservation is asked again', () =>
    given([deposited(500_000), cashReserved('o1', 100, 3250)])
      .when({
        type: 'ReserveCash',
        orderId: 'o1',
        symbol: 'PETR4',
        quantity: 100,
        pricing: { kind: 'LIMIT', limitPrice: 3250 },
      })
      .thenNothing());
  it('refuses a second reservation with other terms for the same order', () =>
    given([deposited(500_000), cashReserved('o1', 100, 3250)])
      .when({
        type: 'ReserveCash',
        orderId: 'o1',
        symbol: 'PETR4',
        quantity: 100,
        pricing: { kind: 'LIMIT', limitPrice: 3300 },
      })
      .thenThrows(DuplicateReservation));
  it('refuses to reserve again for an order whose reservation ended', () =>
    given([
      deposited(500_000),
      cashReserved('o1', 100, 3250),
      {
        type: 'ReservationReleased',
        data: { orderId: 'o1', symbol: 'PETR4', side: 'BUY', cash: 325_000, shares: 0 },
      },
    ])
      .when({
        type: 'ReserveCash',
        orderId: 'o1',
        symbol: 'PETR4',
        quantity: 100,
        pricing: { kind: 'LIMIT', limitPrice: 3250 },
      })
      .thenThrows(DuplicateReservation));
});

describe('reserving shares for a sell', () => {
  it('reserves available shares', () =>
    given([transferredIn('PETR4', 300)])
      .when({ type: 'ReserveShares', orderId: 'o2', symbol: 'PETR4', quantity: 200 })
      .then([sharesReserved('o2', 200)]));
  it('reserves a fractional sell from the custody position', () =>
    given([transferredIn('PETR4', 300)])
      .when({ type: 'ReserveShares', orderId: 'o2', symbol: 'PETR4F', quantity: 42 })
      .then([sharesReserved('o2', 42)]));
  it('moves the shares from available to reserved', () =>
    given([transferredIn('PETR4', 300)])
      .when({ type: 'ReserveShares', orderId: 'o2', symbol: 'PETR4', quantity: 200 })
      .thenState((wallet) =>
        expect(wallet.positions.PETR4).toMatchObject({ available: 100, reserved: 200 }),
      ));
  it('refuses a sell of more shares than are available', () =>
    given([transferredIn('PETR4', 100)])
      .when({ type: 'ReserveShares', orderId: 'o2', symbol: 'PETR4', quantity: 200 })
      .thenThrows(InsufficientShares, { requested: 200, available: 100 }));
  it('refuses a sell of shares the wallet does not hold', () =>
    given([])
      .when({ type: 'ReserveShares', orderId: 'o2', symbol: 'VALE3', quantity: 100 })
      .thenThrows(InsufficientShares));
  it('changes nothing when the same reservation is asked again', () =>
    given([transferredIn('PETR4', 300), sharesReserved('o2', 200)])
      .when({ type: 'ReserveShares', orderId: 'o2', symbol: 'PETR4', quantity: 200 })
      .thenNothing());
  it('refuses a second reservation with other terms for the same order', () =>
    given([transferredIn('PETR4', 300), sharesReserved('o2', 200)])
      .when({ type: 'ReserveShares', orderId: 'o2', symbol: 'PETR4', quantity: 100 })
      .thenThrows(DuplicateReservation));
  it('refuses a symbol that is not a B3 ticker', () =>
    given([])
      .when({ type: 'ReserveShares', orderId: 'o2', symbol: '', quantity: 1 })
      .thenThrows(InvalidSymbol));
});

describe('settling an execution', () => {
  const buyer = [deposited(1_000_000), cashReserved('o1', 200, 3300)];
  const seller = [transferredIn('PETR4', 300, 3000), sharesReserved('o2', 200)];

  it('pays a buy at the execution price and releases the difference', () =>
    given(buyer)
      .when({ type: 'SettleExecution', executionId: 'x1', orderId: 'o1', quantity: 100, price: 3250 })
      .then([buySettled('x1', 'o1', 100, 3250, 3300)]));
  it('turns reserved cash into shares for the buyer', () =>
    given(buyer)
      .when({ type: 'SettleExecution', executionId: 'x1', orderId: 'o1', quantity: 100, price: 3250 })
      .thenState((wallet) => {
        expect(wallet.cash).toEqual({ available: 1_000_000 - 660_000 + 5_000, reserved: 330_000 });
        expect(wallet.positions.PETR4).toEqual({
          available: 100,
          reserved: 0,
          costBasis: 325_000,
          averageCost: 3250,
        });
        expect(wallet.reservations.o1).toEqual({
          side: 'BUY',
          symbol: 'PETR4',
          quantity: 100,
          price: 3300,
          amount: 330_000,
        });
      }));
  it('closes the reservation when the last share is bought', () =>
    given([...buyer, buySettled('x1', 'o1', 100, 3250, 3300)])
      .when({ type: 'SettleExecution', executionId: 'x2', orderId: 'o1', quantity: 100, price: 3300 })
      .thenState((wallet) => {
        expect(wallet.reservations).toEqual({});
        expect(wallet.cash).toEqual({ available: 1_000_000 - 325_000 - 330_000, reserved: 0 });
        expect(wallet.closedOrders).toEqual({ o1: true });
        expect(wallet.positions.PETR4).toMatchObject({ available: 200, averageCost: 3275 });
      }));
  it('credits a sell at the execution price from reserved shares', () =>
    given(seller)
      .when({ type: 'SettleExecution', executionId: 'x1', orderId: 'o2', quantity: 100, price: 3250 })
      .then([
        {
          type: 'SellSettled',
          data: {
            executionId: 'x1',
            orderId: 'o2',
            symbol: 'PETR4',
            quantity: 100,
            price: 3250,
            amount: 325_000,
            costBasisRemoved: 300_000,
          },
        },
      ]));
  it('keeps the average cost of what is left after a sell', () =>
    given(seller)
      .when({ type: 'SettleExecution', executionId: 'x1', orderId: 'o2', quantity: 100, price: 3250 })
      .thenState((wallet) => {
        expect(wallet.cash).toEqual({ available: 325_000, reserved: 0 });
        expect(wallet.positions.PETR4).toEqual({
          available: 100,
          reserved: 100,
          costBasis: 600_000,
          averageCost: 3000,
        });
      }));
  it('settles the same execution once', () =>
    given([...buyer, buySettled('x1', 'o1', 100, 3250, 3300)])
      .when({ type: 'SettleExecution', executionId: 'x1', orderId: 'o1', quantity: 100, price: 3250 })
      .thenNothing());
  it('refuses an execution for an order without a reservation', () =>
    given(buyer)
      .when({ type: 'SettleExecution', executionId: 'x1', orderId: 'nope', quantity: 100, price: 3250 })
      .thenThrows(ReservationNotFound, { orderId: 'nope' }));
  it('refuses an execution for more shares than are reserved', () =>
    given(buyer)
      .when({ type: 'SettleExecution', executionId: 'x1', orderId: 'o1', quantity: 300, price: 3250 })
      .thenThrows(ExecutionExceedsReservation, { quantity: 300, reserved: 200 }));
  it('books a buy execution above the reserved price, the excess taken from available cash', () =>
    given(buyer)
      .when({ type: 'SettleExecution', executionId: 'x1', orderId: 'o1', quantity: 100, price: 3400 })
      .then([buySettled('x1', 'o1', 100, 3400, 3300)]));
  it('takes available cash below zero when it cannot cover the excess: a debit that blocks buys and withdrawals', () => {
    // 200 reserved at 33.00 with nothing else available, both fills at 35.00.
    const allIn = [deposited(660_000), cashReserved('o1', 200, 3300)];
    const filled = [
      ...allIn,
      buySettled('x1', 'o1', 100, 3500, 3300),
      buySettled('x2', 'o1', 100, 3500, 3300),
    ];
    given(allIn)
      .when({ type: 'SettleExecution', executionId: 'x1', orderId: 'o1', quantity: 100, price: 3500 })
      .thenState((wallet) => {
        expect(wallet.cash).toEqual({ available: -20_000, reserved: 330_000 });
        expect(wallet.reservations.o1).toMatchObject({ quantity: 100, amount: 330_000 });
      });
    given(filled).when({ type: 'ReleaseReservation', orderId: 'o1' }).thenNothing();
    given(filled)
      .when({ type: 'Withdraw', amount: 1 })
      .thenThrows(InsufficientFunds, { requested: 1, available: -40_000 });
    given(filled)
      .when({
        type: 'ReserveCash',
        orderId: 'o3',
        symbol: 'PETR4',
        quantity: 1,
        pricing: { kind: 'LIMIT', limitPrice: 1 },
      })
      .thenThrows(InsufficientFunds, { available: -40_000 });
    expect(() =>
      walletDecider.decide(
        { type: 'Withdraw', amount: 1 },
        filled.reduce(walletDecider.evolve, walletDecider.initial()),
      ),
    ).toThrow('the wallet owes 400.00 for a fill above its reservation');
    // Conserved: 6 600.00 in, 7 000.00 paid for 200 shares, 400.00 owed.
    given(filled)
      .when({ type: 'Deposit', amount: 40_000 })
      .thenState((wallet) => {
        expect(wallet.cash).toEqual({ available: 0, reserved: 0 });
        expect(wallet.positions.PETR4).toMatchObject({ available: 200, costBasis: 700_000 });
        expect(wallet.reservations).toEqual({});
      });
  });
  it('upcasts a version 1 BuySettled, from before fills above the reservation were booked', () => {
    const schemas = new EventSchemas(walletEvents);
    const stored = {
      id: 'e1',
      streamId: 'wallet-a1',
      version: 1,
      position: 1,
      type: 'BuySettled',
      data: {
        executionId: 'x1',
        orderId: 'o1',
        symbol: 'PETR4',
        quantity: 100,
        price: 3250,
        amount: 325_000,
        released: 5_000,
      },
      metadata: { schemaVersion: 1 },
    } as unknown as RecordedEvent;
    expect(schemas.decode(stored)).toMatchObject({
      data: { released: 5_000, fromAvailable: 0 },
      metadata: { schemaVersion: 2 },
    });
  });
  it('books a sale whose proceeds take the balance past the exact range: B3 has traded', () =>
    given([deposited(Number.MAX_SAFE_INTEGER - 1_000), ...seller])
      .when({ type: 'SettleExecution', executionId: 'x1', orderId: 'o2', quantity: 100, price: 3250 })
      .then([
        {
          type: 'SellSettled',
          data: {
            executionId: 'x1',
            orderId: 'o2',
            symbol: 'PETR4',
            quantity: 100,
            price: 3250,
            amount: 325_000,
            costBasisRemoved: 300_000,
          },
        },
      ]));
  it('refuses a non-positive execution price', () =>
    given(seller)
      .when({ type: 'SettleExecution', executionId: 'x1', orderId: 'o2', quantity: 100, price: 0 })
      .thenThrows(InvalidPrice));
  it('refuses a non-positive execution quantity', () =>
    given(seller)
      .when({ type: 'SettleExecution', executionId: 'x1', orderId: 'o2', quantity: 0, price: 3000 })
      .thenThrows(InvalidQuantity));
});

describe('releasing what an ended order left', () => {
  it('returns the unused cash of a buy', () =>
    given([deposited(1_000_000), cashReserved('o1', 200, 3300), buySettled('x1', 'o1', 100, 3250, 3300)])
      .when({ type: 'ReleaseReservation', orderId: 'o1' })
      .then([
        {
          type: 'ReservationReleased',
          data: { orderId: 'o1', symbol: 'PETR4', side: 'BUY', cash: 330_000, shares: 0 },
        },
      ]));
  it('leaves no cash reserved afterwards', () =>
    given([deposited(1_000_000), cashReserved('o1', 200, 3300)])
      .when({ type: 'ReleaseReservation', orderId: 'o1' })
      .thenState((wallet) => expect(wallet.cash).toEqual({ available: 1_000_000, reserved: 0 })));
  it('returns the unsold shares of a sell', () =>
    given([transferredIn('PETR4', 300), sharesReserved('o2', 200)])
      .when({ type: 'ReleaseReservation', orderId: 'o2' })
      .thenState((wallet) => expect(wallet.positions.PETR4).toMatchObject({ available: 300, reserved: 0 })));
  it('changes nothing for an order with nothing left', () =>
    given([]).when({ type: 'ReleaseReservation', orderId: 'o1' }).thenNothing());
});
