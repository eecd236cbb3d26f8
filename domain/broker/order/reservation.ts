import type { Cents } from '../../shared/money.ts';
import type { WalletCommand } from '../wallet/wallet.ts';
import type { Order } from './order.ts';

/**
 * What a placed order must hold in its account's wallet before the broker accepts it:
 * - a sell reserves its shares (from the custody position, for the standard and fractional market alike);
 * - a LIMIT or STOP_LIMIT buy reserves quantity × limit price;
 * - a MARKET or STOP buy has no price of its own, so it reserves quantity × the upper edge of the price
 *   band around the reference price (reference × (1 + band %), rounded down to the cent): the exchange
 *   rejects any execution beyond the band, so this covers every possible fill, and settlement releases
 *   the difference between it and the execution price.
 */
export function reservationFor(
  order: Order,
  market: { referencePrice: Cents; priceBandPercent: number },
): Extract<WalletCommand, { type: 'ReserveCash' | 'ReserveShares' }> {
  const { orderId, custodySymbol: symbol, quantity } = order;
  if (order.side === 'SELL') return { type: 'ReserveShares', orderId, symbol, quantity };
  const pricing =
    order.price !== null
      ? { kind: 'LIMIT' as const, limitPrice: order.price }
      : {
          kind: 'MARKET' as const,
          referencePrice: market.referencePrice,
          priceBandPercent: market.priceBandPercent,
        };
  return { type: 'ReserveCash', orderId, symbol, quantity, pricing };
}
