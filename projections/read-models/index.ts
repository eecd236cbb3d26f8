import type { ProjectionDefinition } from '../model.ts';
import { b3AuditProjection, brokerAuditProjection } from './audit.ts';
import { bookDepthProjection } from './book-depth.ts';
import { candlesProjection } from './candles.ts';
import { instrumentsProjection } from './instruments.ts';
import { ordersProjection } from './orders.ts';
import { quotesProjection } from './quotes.ts';
import { tradesProjection } from './trades.ts';
import { walletsProjection } from './wallets.ts';

/** Every read model tradecore serves, by name: what `startProjections` runs and the CLI rebuilds. */
export const readModelProjections: readonly ProjectionDefinition[] = [
  ordersProjection,
  walletsProjection,
  instrumentsProjection,
  tradesProjection,
  bookDepthProjection,
  candlesProjection,
  quotesProjection,
  brokerAuditProjection,
  b3AuditProjection,
];

export {
  b3AuditProjection,
  bookDepthProjection,
  brokerAuditProjection,
  candlesProjection,
  instrumentsProjection,
  ordersProjection,
  quotesProjection,
  tradesProjection,
  walletsProjection,
};
