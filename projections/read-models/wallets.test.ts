import { describe, expect, it } from 'vitest';
import type { WalletEvent } from '../../domain/broker/wallet/events.ts';
import { initialWallet, evolve as walletEvolve } from '../../domain/broker/wallet/wallet.ts';
import { asRecorded, MemoryTables, projectionSpecification, recorded } from './testing.ts';
import { WALLET_CASH, WALLET_POSITIONS, walletsProjection } from './wallets.ts';
import { tradingWorkload } from './workload.ts';

const given = projectionSpecification(walletsProjection);
const wallet = 'wallet-a1';
const deposited = (amount: number) => recorded(wallet, 'CashDeposited', { amount });
const reserved = () =>
  recorded(wallet, 'CashReserved', {
    orderId: 'o1',
    symbol: 'PETR4',
    quantity: 300,
    price: 3_250,
    amount: 975_000,
    basis: 'LIMIT_PRICE',
  });

describe('wallets read model', () => {
  it('credits a deposit to available cash', () =>
    given(deposited(100_000))
      .when(deposited(50_000))
      .thenRow(WALLET_CASH, { account_id: 'a1' }, { available: 150_000, reserved: 0 }));

  it('moves reserved cash out of available', () =>
    given(deposited(1_000_000))
      .when(reserved())
      .thenRow(WALLET_CASH, { account_id: 'a1' }, { available: 25_000, reserved: 975_000 }));

  it('settles a buy: shares in, reservation consumed, the price improvement released', () =>
    given(deposited(1_000_000), reserved())
      .when(
        recorded(wallet, 'BuySettled', {
          executionId: 'x1',
          orderId: 'o1',
          symbol: 'PETR4',
          quantity: 100,
          price: 3_200,
          amount: 320_000,
          released: 5_000,
          fromAvailable: 0,
        }),
      )
      .thenRow(WALLET_CASH, { account_id: 'a1' }, { available: 30_000, reserved: 650_000 })
      .thenRow(
        WALLET_POSITIONS,
        { account_id: 'a1', symbol: 'PETR4' },
        { available: 100, reserved: 0, cost_basis: 320_000 },
      ));

  it('settles a buy above its reservation: the excess comes out of available cash, below zero if need be', () =>
    given(deposited(1_000_000), reserved())
      .when(
        recorded(wallet, 'BuySettled', {
          executionId: 'x1',
          orderId: 'o1',
          symbol: 'PETR4',
          quantity: 300,
          price: 3_500,
          amount: 1_050_000,
          released: 0,
          fromAvailable: 75_000,
        }),
      )
      .thenRow(WALLET_CASH, { account_id: 'a1' }, { available: -50_000, reserved: 0 })
      .thenRow(
        WALLET_POSITIONS,
        { account_id: 'a1', symbol: 'PETR4' },
        { available: 300, reserved: 0, cost_basis: 1_050_000 },
      ));

  it('releases what a canceled sell had reserved', () =>
    given(
      recorded(wallet, 'SharesTransferredIn', { symbol: 'VALE3', quantity: 500, unitCost: 6_000 }),
      recorded(wallet, 'SharesReserved', { orderId: 'o2', symbol: 'VALE3', quantity: 200 }),
    )
      .when(
        recorded(wallet, 'ReservationReleased', {
          orderId: 'o2',
          symbol: 'VALE3',
          side: 'SELL',
          cash: 0,
          shares: 200,
        }),
      )
      .thenRow(
        WALLET_POSITIONS,
        { account_id: 'a1', symbol: 'VALE3' },
        { available: 500, reserved: 0, cost_basis: 3_000_000 },
      ));

  it('agrees with the wallet decider after a trading day', () => {
    const tables = new MemoryTables();
    const states = new Map<string, ReturnType<typeof initialWallet>>();
    let version = 0;
    for (const item of tradingWorkload({ seed: 7, requests: 600, accounts: 5 })) {
      if (!item.streamId.startsWith('wallet-')) continue;
      const accountId = item.streamId.slice('wallet-'.length);
      const event = asRecorded(item.streamId, item.event, ++version);
      tables.apply(walletsProjection.project(event));
      states.set(
        accountId,
        walletEvolve(states.get(accountId) ?? initialWallet(), item.event as unknown as WalletEvent),
      );
    }
    expect(states.size).toBe(5);
    for (const [accountId, state] of states) {
      expect(tables.row(WALLET_CASH, { account_id: accountId })).toMatchObject(state.cash);
      for (const [symbol, position] of Object.entries(state.positions))
        expect(tables.row(WALLET_POSITIONS, { account_id: accountId, symbol })).toMatchObject({
          available: position.available,
          reserved: position.reserved,
          cost_basis: position.costBasis,
        });
    }
  });
});
