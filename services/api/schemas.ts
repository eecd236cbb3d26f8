import { z } from 'zod';
import { USERNAME, USERNAME_RULE } from '../../domain/broker/account/username.ts';
import { OrderSide, OrderStatus, OrderType, TimeInForce } from '../../domain/broker/order/events.ts';
import { STANDARD_SYMBOL, TRADED_SYMBOL } from '../../domain/broker/schemas.ts';
import { InvalidDecimalAmount, LARGEST_EXACT_AMOUNT, toCents } from '../../domain/shared/money.ts';
import { CANDLE_INTERVAL_NAMES, DEFAULT_CANDLE_INTERVAL } from '../../projections/read-models/candles.ts';
import { readModelProjections } from '../../projections/read-models/index.ts';

/** The API's edge schemas: decimal strings in, integer cents inside (domain/shared/money.ts converts). */

/**
 * The options of the check that an amount is above zero: it runs only when the amount passed every
 * other check (as the transform after them would), so that a malformed amount gets one error. zod
 * takes `when` on every check, though its types leave it out of a regex's options.
 */
const aboveZero: Parameters<z.ZodString['regex']>[1] = Object.assign(
  { message: 'must be greater than zero' },
  { when: (payload: z.core.ParsePayload) => payload.issues.length === 0 },
);

/**
 * A decimal amount with at most two decimals (`"32.50"`), parsed to cents, above (or from) zero.
 * Both rules are patterns, so that the OpenAPI document states them: the decimal's shape, and, once
 * it has that shape, a digit other than 0 (above zero), which alone says why `"0.00"` is refused.
 */
function decimalAbove(minimum: 'zero' | 'one-cent') {
  const decimal = z
    .string()
    .max(20)
    .regex(
      /^\d+(\.\d{1,2})?$/,
      minimum === 'zero'
        ? 'must be a decimal of zero or more with at most two decimals, e.g. "32.50"'
        : 'must be a positive decimal with at most two decimals, e.g. "32.50"',
    );
  const checked = minimum === 'zero' ? decimal : decimal.regex(/[1-9]/, aboveZero);
  return (
    checked
      .transform((text, context) => {
        try {
          return toCents(text);
        } catch (error) {
          if (!(error instanceof InvalidDecimalAmount)) throw error;
          context.addIssue({ code: 'custom', message: `too large: at most "${LARGEST_EXACT_AMOUNT}"` });
        }
        return z.NEVER;
      })
      // The largest amount kept exactly is no pattern: the document says it in words.
      .meta({ type: 'string', example: '32.50', description: AT_MOST })
  );
}

/** How an amount's upper bound reads in the document; a field that describes itself ends with it. */
const AT_MOST = `at most "${LARGEST_EXACT_AMOUNT}"`;

/** A strictly positive decimal amount with at most two decimals (`"32.50"`), parsed to cents. */
export const PositiveDecimal = decimalAbove('one-cent');

/** A decimal amount of zero or more (`"0.00"`, `"32.50"`), parsed to cents: a cost can be nothing. */
export const NonNegativeDecimal = decimalAbove('zero');

/** What a timestamp in a request must look like, said the same way wherever one is refused. */
const INSTANT_FORMAT =
  'must be an ISO 8601 date and time with seconds and a time zone: Z or an offset such as -03:00 (e.g. "2026-11-27T14:00:00Z" or "2026-11-27T11:00:00-03:00")';
const INSTANT_RANGE = 'must be between 1970-01-01T00:00:00Z and 9999-12-31T23:59:59Z';
const INSTANT_DESCRIPTION =
  'ISO 8601 with seconds and a time zone (Z or an offset such as -03:00), 1970 to 9999, no leap second (:60); taken as the same instant in UTC';

const isoDateTime = z.iso.datetime({ offset: true });

/**
 * An ISO 8601 instant with its time zone (`Z` or an offset), normalised to UTC
 * (`2026-11-27T22:00:00+05:00` → `2026-11-27T17:00:00.000Z`), between 1970 and 9999: what every
 * store of the read models (Postgres, MySQL, Mongo) and the events can hold. One error when it is
 * not one, saying what it must be.
 */
function instant(where: 'body' | 'query') {
  return z
    .string()
    .transform((given, context) => {
      // A `+` in a query string means a space (form encoding): an offset sent as `+05:00` instead of
      // `%2B05:00` arrives as ` 05:00`, which is the same instant.
      const spaced = where === 'query' ? given.replace(/ (\d{2}:\d{2})$/, '+$1') : given;
      // RFC 3339, as the document's `date-time`: a lower-case `t` and `z` are the same.
      const text = spaced.toUpperCase();
      if (!isoDateTime.safeParse(text).success) {
        context.addIssue({ code: 'custom', message: INSTANT_FORMAT });
        return z.NEVER;
      }
      const time = new Date(text);
      const year = time.getUTCFullYear();
      if (year < 1970 || year > 9999) {
        context.addIssue({ code: 'custom', message: INSTANT_RANGE });
        return z.NEVER;
      }
      return time.toISOString();
    })
    .meta({
      type: 'string',
      format: 'date-time',
      description: INSTANT_DESCRIPTION,
      example: '2026-11-27T14:00:00Z',
    });
}

/** A timestamp in a JSON body. */
export const Instant = instant('body');
/** A timestamp in a query string, where an unencoded `+` of the offset arrives as a space. */
export const InstantParam = instant('query');

/** A whole positive number of shares, within the exact integer range. */
export const Shares = z.number().int().positive().max(Number.MAX_SAFE_INTEGER).meta({ example: 100 });

/** A ticker of either market; a pattern, so that the OpenAPI document states it. */
export const Ticker = z
  .string()
  .max(12)
  .regex(TRADED_SYMBOL, 'must be a B3 ticker such as PETR4 or PETR4F')
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
  .min(1, 'must not be empty')
  .max(200, 'must be at most 200 characters')
  .regex(/^[A-Za-z0-9_.:-]+$/, 'must be letters, digits, "_", ".", ":" or "-"');

/**
 * A whole number in a query string, from `minimum` to `maximum`. Anything else, an empty value
 * (`limit=`) included, gets one error saying what it must be (`Number('')` would have made it 0).
 * A default is given as the text it stands for (a prefault): zod leaves a transform's default out of
 * the OpenAPI document, a prefault in, as that text; the document (openapi.ts) gives it as the number.
 */
function queryInteger(minimum: number, maximum: number) {
  const range = `a whole number from ${minimum} to ${maximum}`;
  return z
    .string()
    .transform((text, context) => {
      const value = /^\d{1,16}$/.test(text) ? Number(text) : Number.NaN;
      if (value >= minimum && value <= maximum) return value;
      context.addIssue({
        code: 'custom',
        message: text === '' ? `is empty: give ${range}, or leave it out` : `must be ${range}`,
      });
      return z.NEVER;
    })
    .meta({ type: 'integer', minimum, maximum });
}

/** A UTF-16 surrogate without its other half: no Unicode character, and no text PostgreSQL keeps. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * Free text of `min` to `max` characters that the stores can keep: no NUL and no unpaired
 * surrogate, which PostgreSQL refuses in text and jsonb (a 500 at the write, or at the read of a
 * login's username, instead of a 400 naming the field).
 */
export const Text = (min: number, max: number) =>
  z
    .string()
    .min(min)
    .max(max)
    .refine(
      (text) => !text.includes('\u0000') && !LONE_SURROGATE.test(text),
      'must not hold a NUL character or an unpaired surrogate (\\u0000, \\ud800…\\udfff alone)',
    );

/** What a caller may send as `x-correlation-id`; anything else is replaced by a fresh id. */
export const CORRELATION_ID = /^[A-Za-z0-9_.:-]{1,128}$/;

/** A correlation id, as `x-correlation-id` takes it: longer ones never exist. */
export const CorrelationIdParam = z
  .string()
  .regex(CORRELATION_ID, 'must be 1 to 128 letters, digits, "_", ".", ":" or "-", as correlation ids are');

export const Limit = queryInteger(1, 500).prefault('50');
export const Cursor = z.string().min(1).max(500);

const Password = z.string().min(8).max(200).meta({ example: 'correct horse battery staple' });
/**
 * A password being set: also no NUL and no unpaired surrogate, which the hash's UTF-8 encoding
 * would turn into U+FFFD, so that distinct passwords would be one. (Logging in takes any, so that a
 * password set before this rule still works.)
 */
const NewPassword = Text(8, 200).meta({ example: 'correct horse battery staple' });

export const Credentials = z.strictObject({
  username: Text(3, 32).meta({ example: 'alice' }),
  password: Password,
});

/**
 * `USERNAME` in either case. Without the `u` flag, a case-insensitive class matches ASCII letters
 * only: the Kelvin sign (U+212A), which JavaScript lower-cases to "k", is not one.
 */
const USERNAME_ANY_CASE = new RegExp(USERNAME.source, 'i');

/**
 * A new account's credentials: the username checked against the account's own rule (the domain's,
 * which it is kept lower-cased for), so that a bad one is a field error like a bad length.
 */
export const RegisterBody = z.strictObject({
  username: z
    .string()
    // Checked as given, not lower-cased first.
    .refine(
      (text) => USERNAME_ANY_CASE.test(text),
      `must be ${USERNAME_RULE} (capitals are taken as lower case)`,
    )
    .meta({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{2,31}$', minLength: 3, maxLength: 32, example: 'alice' }),
  password: NewPassword,
});

export const AccountParams = z.strictObject({ id: IdParam });

/**
 * A new password. The account's own holder gives its current one too; an admin resetting another
 * account's password does not.
 */
export const PasswordChangeBody = z.strictObject({
  currentPassword: z.string().min(1).max(200).optional(),
  newPassword: NewPassword,
});

export const DisableBody = z.strictObject({ reason: Text(1, 500).meta({ example: 'left the firm' }) });
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
  price: PositiveDecimal.optional().describe(`limit price (LIMIT, STOP_LIMIT), ${AT_MOST}`),
  stopPrice: PositiveDecimal.optional().describe(`trigger price (STOP, STOP_LIMIT), ${AT_MOST}`),
  timeInForce: TimeInForce.optional().describe('DAY when absent'),
  expiresAt: Instant.optional().describe(`GTD only: ${INSTANT_DESCRIPTION}`),
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
export const InstrumentsQuery = z.strictObject({
  status: z.enum(['OPEN', 'HALTED']).optional().describe('only the instruments with this status'),
  limit: Limit,
  cursor: Cursor.optional(),
});
export const BookQuery = z.strictObject({ depth: queryInteger(1, 100).prefault('10') });
/** The read model's intervals (`projections/read-models/candles.ts`): one list for schema, OpenAPI and query. */
export const CandleInterval = z.enum(CANDLE_INTERVAL_NAMES);
export const CandlesQuery = z.strictObject({
  interval: CandleInterval.default(DEFAULT_CANDLE_INTERVAL).describe(
    `candle length: ${CANDLE_INTERVAL_NAMES.join(', ')}; ${DEFAULT_CANDLE_INTERVAL} when absent`,
  ),
  from: InstantParam.optional(),
  to: InstantParam.optional(),
});
export const QuotesQuery = z.strictObject({ limit: Limit, cursor: Cursor.optional() });

export const StreamParams = z.strictObject({ streamId: IdParam });
/** Events in one read of a stream: at most, and when not asked. The API's and `tradecore audit stream`'s. */
export const AUDIT_STREAM_MAX_LIMIT = 1000;
export const AUDIT_STREAM_DEFAULT_LIMIT = 100;
export const StreamQuery = z.strictObject({
  from: queryInteger(0, Number.MAX_SAFE_INTEGER).prefault('0'),
  limit: queryInteger(1, AUDIT_STREAM_MAX_LIMIT).prefault(String(AUDIT_STREAM_DEFAULT_LIMIT)),
});
export const StateQuery = z
  .strictObject({
    version: queryInteger(0, Number.MAX_SAFE_INTEGER).optional(),
    at: InstantParam.optional(),
  })
  .refine((query) => query.version === undefined || query.at === undefined, {
    message: 'give version or at, not both',
    path: ['at'],
  });
export const CorrelationParams = z.strictObject({ correlationId: CorrelationIdParam });
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
    .regex(/^[A-Za-z0-9_.-]+$/, 'must be a projection name (letters, digits, "_", "." or "-") or "all"')
    .describe(
      `a read model's projection, or all: ${readModelProjections.map((projection) => projection.name).join(', ')}`,
    ),
});
export const InstrumentBody = z.strictObject({
  symbol: StandardSymbolParam,
  name: Text(1, 200),
  lotSize: Shares,
  tickSize: PositiveDecimal,
  fractional: z.boolean(),
  referencePrice: PositiveDecimal,
});
export const InstrumentParams = z.strictObject({ symbol: StandardSymbolParam });
export const ReferencePriceBody = z.strictObject({ referencePrice: PositiveDecimal });
export const QuotesBody = z.strictObject({ enabled: z.boolean() });
export const HaltBody = z.strictObject({ reason: Text(1, 500) });
/** No body, or `{}`: for the commands that need nothing more than their path. */
export const NoBody = z.strictObject({}).nullish();
