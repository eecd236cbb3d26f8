import type { RecordedEvent } from '../../domain/shared/event-store.ts';
import type { Change, ProjectionDefinition } from '../model.ts';
import { type RecordedWalletEvent, streamEntity } from './events.ts';

/**
 * Wallets (`GET /v1/accounts/{id}/wallet`): cash and custody positions per account, in integer
 * cents and shares. Every wallet event is a set of increments, the same arithmetic as the wallet
 * decider's `evolve`, so the projection never reads a row first.
 */
export const WALLET_CASH = 'wallet_cash';
export const WALLET_POSITIONS = 'wallet_positions';

export const walletsProjection: ProjectionDefinition = {
  name: 'wallets',
  version: 1,
  source: 'broker',
  store: 'mysql',
  tables: [
    {
      name: WALLET_CASH,
      columns: {
        account_id: { type: 'text' },
        available: { type: 'bigint' },
        reserved: { type: 'bigint' },
        updated_at: { type: 'timestamp' },
        stream_version: { type: 'int' },
      },
      primaryKey: ['account_id'],
    },
    {
      name: WALLET_POSITIONS,
      columns: {
        account_id: { type: 'text' },
        symbol: { type: 'text' },
        available: { type: 'bigint' },
        reserved: { type: 'bigint' },
        /** What the held shares cost, in cents: the average cost is cost_basis ÷ (available + reserved). */
        cost_basis: { type: 'bigint' },
      },
      primaryKey: ['account_id', 'symbol'],
    },
  ],
  project(event: RecordedEvent): Change[] {
    const accountId = streamEntity(event.streamId, 'wallet');
    if (!accountId) return [];
    return projectWallet(accountId, event as RecordedWalletEvent);
  },
};

function projectWallet(accountId: string, event: RecordedWalletEvent): Change[] {
  const stamp = { updated_at: new Date(event.metadata.occurredAt), stream_version: event.version };
  const cash = (available: number, reserved = 0): Change => ({
    kind: 'upsert',
    table: WALLET_CASH,
    key: { account_id: accountId },
    set: stamp,
    add: { available, reserved },
  });
  const shares = (symbol: string, available: number, reserved: number, costBasis = 0): Change => ({
    kind: 'upsert',
    table: WALLET_POSITIONS,
    key: { account_id: accountId, symbol },
    add: { available, reserved, cost_basis: costBasis },
  });
  switch (event.type) {
    case 'CashDeposited':
      return [cash(event.data.amount)];
    case 'CashWithdrawn':
      return [cash(-event.data.amount)];
    case 'SharesTransferredIn': {
      const { symbol, quantity, unitCost } = event.data;
      return [cash(0), shares(symbol, quantity, 0, quantity * unitCost)];
    }
    case 'SharesTransferredOut': {
      const { symbol, quantity, costBasisRemoved } = event.data;
      return [cash(0), shares(symbol, -quantity, 0, -costBasisRemoved)];
    }
    case 'CashReserved':
      return [cash(-event.data.amount, event.data.amount)];
    case 'SharesReserved':
      return [cash(0), shares(event.data.symbol, -event.data.quantity, event.data.quantity)];
    case 'BuySettled': {
      const { symbol, quantity, amount, released, fromAvailable } = event.data;
      return [
        cash(released - fromAvailable, -(amount + released - fromAvailable)),
        shares(symbol, quantity, 0, amount),
      ];
    }
    case 'SellSettled': {
      const { symbol, quantity, amount, costBasisRemoved } = event.data;
      return [cash(amount), shares(symbol, 0, -quantity, -costBasisRemoved)];
    }
    case 'ReservationReleased': {
      const { symbol, cash: releasedCash, shares: releasedShares } = event.data;
      const changes = [cash(releasedCash, -releasedCash)];
      if (releasedShares > 0) changes.push(shares(symbol, releasedShares, -releasedShares));
      return changes;
    }
    default:
      return [];
  }
}
