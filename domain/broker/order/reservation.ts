import { type Cents, priceBandUpperEdge } from '../../shared/money.ts';
import type { WalletCommand } from '../wallet/wallet.ts';
import type { Order } from './order.ts';

/**
 * What a placed order must hold in its account's wallet before the broker accepts it:
 * - a sell reserves its shares (from the custody position, for the standard and fractional market alike),
 *   with the most per share it expects to sell at (its limit price, or for a market or stop sell the
 *   price band's upper edge when a reference price is known), so that the wallet refuses proceeds it
 *   could not keep exactly before the order trades;
 * - a LIMIT or STOP_LIMIT buy reserves quantity × limit price;
 * - a MARKET or STOP buy has no price of its own, so it reserves quantity × the upper edge of the price
 *   band around the reference price (reference × (1 + band %), rounded down to the cent): the exchange
 *   rejects any execution beyond the band, so this covers the fills while the reference price holds,
 *   and settlement releases the difference; a stop buy that fills after the band moved up pays the
 *   excess from available cash (the wallet's SettleExecution).
 */
export function reservationFor(
  order: Order,
  market: { referencePrice: Cents; priceBandPercent: number },
): Extract<WalletCommand, { type: 'ReserveCash' | 'ReserveShares' }> {
  const { orderId, custodySymbol: symbol, quantity } = order;
  if (order.side === 'SELL') {
    const proceedsPrice =
      order.price ??
      (market.referencePrice > 0
        ? priceBandUpperEdge(market.referencePrice, market.priceBandPercent)
        : undefined);
    return {
      type: 'ReserveShares',
      orderId,
      symbol,
      quantity,
      ...(proceedsPrice !== undefined ? { proceedsPrice } : {}),
    };
  }
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
