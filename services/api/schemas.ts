import { z } from 'zod';
import { OrderSide, OrderStatus, OrderType, TimeInForce } from '../../domain/broker/order/events.ts';
import { FRACTIONAL_SYMBOL, STANDARD_SYMBOL } from '../../domain/broker/schemas.ts';
import { InvalidDecimalAmount, toCents } from '../../domain/shared/money.ts';
import { CANDLE_INTERVAL_NAMES, DEFAULT_CANDLE_INTERVAL } from '../../projections/read-models/candles.ts';

/** The API's edge schemas: decimal strings in, integer cents inside (domain/shared/money.ts converts). */

/** A decimal amount with at most two decimals (`"32.50"`), parsed to cents, above (or from) zero. */
function decimalAbove(minimum: 'zero' | 'one-cent') {
  return z
    .string()
    .max(20)
    .regex(
      /^\d+(\.\d{1,2})?$/,
      minimum === 'zero'
        ? 'must be a decimal of zero or more with at most two decimals, e.g. "32.50"'
        : 'must be a positive decimal with at most two decimals, e.g. "32.50"',
    )
    .transform((text, context) => {
      try {
        const cents = toCents(text);
        if (cents > 0 || minimum === 'zero') return cents;
        context.addIssue({ code: 'custom', message: 'must be greater than zero' });
      } catch (error) {
        if (!(error instanceof InvalidDecimalAmount)) throw error;
        context.addIssue({ code: 'custom', message: 'too large' });
      }
      return z.NEVER;
    })
    .meta({ type: 'string', example: '32.50' });
}

/** A strictly positive decimal amount with at most two decimals (`"32.50"`), parsed to cents. */
export const PositiveDecimal = decimalAbove('one-cent');

/** A decimal amount of zero or more (`"0.00"`, `"32.50"`), parsed to cents: a cost can be nothing. */
export const NonNegativeDecimal = decimalAbove('zero');

/**
 * An ISO 8601 instant with its offset, between 1970 and 9999: what every store of the read models
 * (Postgres, MySQL, Mongo) and the events can hold.
 */
export const Instant = z.iso
  .datetime({ offset: true })
  .refine((text) => {
    const year = new Date(text).getUTCFullYear();
    return year >= 1970 && year <= 9999;
  }, 'must be between 1970 and 9999')
  .meta({ example: '2026-11-27T14:00:00Z' });

/** A whole positive number of shares, within the exact integer range. */
export const Shares = z.number().int().positive().max(Number.MAX_SAFE_INTEGER).meta({ example: 100 });

export const Ticker = z
  .string()
  .max(12)
  .refine(
    (text) => STANDARD_SYMBOL.test(text) || FRACTIONAL_SYMBOL.test(text),
    'must be a B3 ticker such as PETR4 or PETR4F',
  )
  .meta({ example: 'PETR4' });

export const StandardSymbolParam = z
  .string()
  .max(12)
  .regex(
    STANDARD_SYMBOL,
    'must be an instrument’s standard ticker such as PETR4 (a fractional ticker such as PETR4F is managed through its instrument, PETR4)',
  );

/** Ids in paths: what a stream id can hold, no more. */
export const IdParam = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[A-Za-z0-9_.:-]+$/, 'must be letters, digits, "_", ".", ":" or "-"');

export const Limit = z.coerce.number().int().min(1).max(500).default(50);
export const Cursor = z.string().min(1).max(500);

export const Credentials = z.strictObject({
  username: z.string().min(3).max(32).meta({ example: 'alice' }),
  password: z.string().min(8).max(200).meta({ example: 'correct horse battery staple' }),
});

export const AccountParams = z.strictObject({ id: IdParam });
export const AmountBody = z.strictObject({ amount: PositiveDecimal });
export const CustodyTransferBody = z.strictObject({
  symbol: Ticker,
  quantity: Shares,
  /**
   * Acquisition cost per share, for the average cost; zero for shares that cost nothing (a gift, a
   * bonus issue); the position's current average cost when absent.
   */
  unitCost: NonNegativeDecimal.optional(),
});

export const PlaceOrderBody = z.strictObject({
  accountId: IdParam,
  symbol: Ticker,
  side: OrderSide,
  type: OrderType,
  quantity: Shares,
  price: PositiveDecimal.optional().describe('limit price (LIMIT, STOP_LIMIT)'),
  stopPrice: PositiveDecimal.optional().describe('trigger price (STOP, STOP_LIMIT)'),
  timeInForce: TimeInForce.optional().describe('DAY when absent'),
  expiresAt: Instant.optional().describe('GTD only'),
});

export const OrdersQuery = z.strictObject({
  accountId: IdParam.optional(),
  status: OrderStatus.optional(),
  symbol: Ticker.optional(),
  limit: Limit,
  cursor: Cursor.optional(),
});
export const TradesQuery = z.strictObject({
  symbol: Ticker.optional(),
  accountId: IdParam.optional(),
  limit: Limit,
  cursor: Cursor.optional(),
});
export const SymbolParams = z.strictObject({ symbol: Ticker });
export const BookQuery = z.strictObject({ depth: z.coerce.number().int().min(1).max(100).default(10) });
/** The read model's intervals (`projections/read-models/candles.ts`): one list for schema, OpenAPI and query. */
export const CandleInterval = z.enum(CANDLE_INTERVAL_NAMES);
export const CandlesQuery = z.strictObject({
  interval: CandleInterval.default(DEFAULT_CANDLE_INTERVAL).describe(
    `candle length: ${CANDLE_INTERVAL_NAMES.join(', ')}; ${DEFAULT_CANDLE_INTERVAL} when absent`,
  ),
  from: Instant.optional(),
  to: Instant.optional(),
});
export const QuotesQuery = z.strictObject({ limit: Limit, cursor: Cursor.optional() });

export const StreamParams = z.strictObject({ streamId: IdParam });
export const StreamQuery = z.strictObject({
  from: z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER).default(0),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});
export const StateQuery = z
  .strictObject({
    version: z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
    at: Instant.optional(),
  })
  .refine((query) => query.version === undefined || query.at === undefined, {
    message: 'give version or at, not both',
    path: ['at'],
  });
export const CorrelationParams = z.strictObject({ correlationId: IdParam });
export const TraceQuery = z.strictObject({ limit: Limit, cursor: Cursor.optional() });
/** An event as the audit routes show it: exactly as stored (amounts in cents), password hashes redacted. */
export const AuditEventView = z.object({
  store: z.enum(['broker', 'b3']).optional(),
  streamId: z.string(),
  version: z.number().int(),
  position: z.number().int(),
  id: z.string(),
  type: z.string(),
  data: z.unknown(),
  metadata: z.record(z.string(), z.unknown()),
  recordedAt: z.string().meta({ format: 'date-time' }),
});
export const TraceResponse = z.object({
  correlationId: z.string(),
  events: z.array(AuditEventView),
  nextCursor: z.string().optional().describe('pass back as `cursor` for the next page'),
});

export const RoleBody = z.strictObject({ role: z.enum(['trader', 'auditor', 'admin']) });
export const RoleParams = z.strictObject({ id: IdParam, role: z.enum(['trader', 'auditor', 'admin']) });
export const ProjectionParams = z.strictObject({
  name: z
    .string()
    .min(1)
    .max(100)
    .regex(/^[A-Za-z0-9_.-]+$/),
});
export const InstrumentBody = z.strictObject({
  symbol: StandardSymbolParam,
  name: z.string().min(1).max(200),
  lotSize: Shares,
  tickSize: PositiveDecimal,
  fractional: z.boolean(),
  referencePrice: PositiveDecimal,
});
export const InstrumentParams = z.strictObject({ symbol: StandardSymbolParam });
export const ReferencePriceBody = z.strictObject({ referencePrice: PositiveDecimal });
export const QuotesBody = z.strictObject({ enabled: z.boolean() });
export const HaltBody = z.strictObject({ reason: z.string().min(1).max(500) });
/** No body, or `{}`: for the commands that need nothing more than their path. */
export const NoBody = z.strictObject({}).nullish();
