import { z } from 'zod';
import { OrderSide, OrderStatus, OrderType, TimeInForce } from '../../domain/broker/order/events.ts';

/**
 * The main answers' bodies, for the OpenAPI document (`openapi.ts`) and for the tests that hold the
 * real answers to them. Documentation only: routes do not serialize through these (a response
 * schema on a route would make fastify serialize, and so strip or change, what the route answers).
 * Money is a decimal string (`"32.50"`), instants are ISO 8601 strings.
 */

const Money = z
  .string()
  .regex(/^-?\d+\.\d{2}$/)
  .meta({ example: '32.50' });
const Instant = z.string().meta({ format: 'date-time', example: '2026-11-27T14:00:00.000Z' });
const Count = z.number().int().nonnegative();

/** `POST /v1/auth/login`. */
export const LoginAnswer = z.strictObject({
  token: z.string().describe('a JWT: send it as `Authorization: Bearer …`'),
  tokenType: z.literal('Bearer'),
  expiresAt: Instant,
  accountId: z.string(),
  roles: z.array(z.enum(['trader', 'auditor', 'admin'])),
});

const Cash = z.strictObject({ available: Money, reserved: Money });
const Position = z.strictObject({
  symbol: z.string(),
  available: Count.describe('shares'),
  reserved: Count.describe('shares'),
  costBasis: Money.describe('what the shares held cost, in total'),
});

/** `GET /v1/accounts/{id}/wallet`: the wallets read model. */
export const WalletAnswer = z.strictObject({
  accountId: z.string(),
  cash: Cash,
  positions: z.array(Position),
  updatedAt: Instant.nullable().optional().describe('absent for a wallet that never moved'),
  version: z.number().int().nullable().optional().describe('the wallet stream version the answer includes'),
});

/** A deposit's, withdrawal's or custody transfer's `201`: the wallet the command left. */
export const WalletChangeAnswer = z.strictObject({
  accountId: z.string(),
  version: z.number().int().describe('the wallet stream version after the command'),
  cash: Cash,
  positions: z.array(Position),
});

/** `POST /v1/orders`: `202`. */
export const OrderPlacedAnswer = z.strictObject({ orderId: z.string(), status: z.literal('PENDING_NEW') });

/** `DELETE /v1/orders/{id}`: `202`, the cancel asked of B3 for an order still open. */
export const CancelRequestedAnswer = z.strictObject({
  orderId: z.string(),
  status: OrderStatus.extract(['PENDING_NEW', 'NEW', 'PARTIALLY_FILLED']).describe(
    'the order’s status as the cancel is asked; GET /v1/orders/{id} shows CANCELED once B3 has canceled what is left',
  ),
  cancelRequested: z.literal(true),
});

/** `DELETE /v1/orders/{id}`: `200`, an order canceled already (nothing changes). */
export const CanceledAlreadyAnswer = z.strictObject({
  orderId: z.string(),
  status: z.literal('CANCELED'),
  cancelRequested: z.literal(true),
});

/** `GET /v1/orders/{id}`: the orders read model. */
export const OrderAnswer = z.strictObject({
  orderId: z.string(),
  accountId: z.string(),
  symbol: z.string().describe('the traded ticker: PETR4, or PETR4F on the fractional market'),
  custodySymbol: z.string().describe('the custody position it trades: PETR4 for both'),
  market: z.string(),
  side: OrderSide,
  type: OrderType,
  timeInForce: TimeInForce,
  quantity: Count,
  price: Money.nullable().describe('the limit price; null for MARKET and STOP'),
  stopPrice: Money.nullable(),
  expiresAt: Instant.nullable(),
  status: OrderStatus,
  filledQuantity: Count,
  remainingQuantity: Count,
  averagePrice: Money.nullable().describe('null before the first execution'),
  cancelRequested: z.boolean(),
  rejectReason: z.string().nullable(),
  rejectDetail: z.string().nullable(),
  cancelReason: z
    .string()
    .nullable()
    .describe(
      'why a CANCELED order was canceled (CANCELED_BY_TRADER, CANCELED_BY_ADMIN, …) or an EXPIRED one expired (END_OF_DAY, GOOD_TILL_DATE)',
    ),
  placedAt: Instant,
  updatedAt: Instant,
  version: z.number().int().describe('the order stream version the answer includes'),
  executions: z.array(
    z.strictObject({
      executionId: z.string(),
      quantity: Count,
      price: Money,
      executedAt: Instant,
      filledQuantity: Count,
      remainingQuantity: Count,
    }),
  ),
});

/** `GET /v1/trades`: a page of the tape. */
export const TradesPageAnswer = z.strictObject({
  items: z.array(
    z.strictObject({
      tradeId: z.string(),
      symbol: z.string(),
      price: Money,
      quantity: Count,
      aggressorSide: OrderSide,
      executedAt: Instant,
      buyOrderId: z.string().optional().describe("a trader sees its own side's ids only"),
      buyAccountId: z.string().optional(),
      sellOrderId: z.string().optional(),
      sellAccountId: z.string().optional(),
      side: OrderSide.optional().describe('with `accountId`: the side that account took'),
    }),
  ),
  nextCursor: z.string().optional().describe('pass back as `cursor` for the next page'),
});

/**
 * `GET /v1/market/{symbol}/quote`, and each item of the history: the quotes read model. The feeds
 * (random walk, replay, Brapi) and an admin's price record a price and nothing else.
 */
export const QuoteAnswer = z.strictObject({
  symbol: z.string().describe("the instrument's ticker: a fractional ticker (PETR4F) reads PETR4's quote"),
  bid: Money.nullable().describe('best bid; null from every feed this system has (they send a price only)'),
  ask: Money.nullable().describe('best ask; null from every feed this system has'),
  bidSize: Count.describe('shares at the best bid; 0 when bid is null'),
  askSize: Count.describe('shares at the best ask; 0 when ask is null'),
  last: Money.nullable().describe('the price: what the B3 price band is centred on'),
  volume: Count.describe(
    "shares traded in the session, as the source reports it; 0 from this system's feeds",
  ),
  source: z
    .string()
    .describe('`random-walk`, `replay:<file>`, `brapi`, or `admin` for a price an admin pinned'),
  at: Instant.describe('when the source observed the price'),
  sequence: Count.describe(
    'the version of the quote in its `quotes-{symbol}` stream (from 0): the history’s order',
  ),
});

/** `GET /v1/market/{symbol}/quotes`: quote history, newest first. */
export const QuotesPageAnswer = z.strictObject({
  items: z.array(QuoteAnswer),
  nextCursor: z.string().optional().describe('pass back as `cursor` for the next page'),
});

/** `GET /v1/market/{symbol}/candles`: OHLCV candles, oldest first. */
export const CandlesAnswer = z.strictObject({
  items: z.array(
    z.strictObject({
      symbol: z.string(),
      interval: z.string().describe('the interval asked for (1m when none was)'),
      start: Instant.describe('the bucket start, aligned to UTC'),
      open: Money,
      high: Money,
      low: Money,
      close: Money,
      volume: Count.describe('shares traded'),
      vwap: Money.describe('volume-weighted average price, rounded to the cent'),
      trades: Count,
    }),
  ),
});

const DepthLevel = z.strictObject({
  price: Money,
  quantity: Count.describe('shares shown at the level: an iceberg counts with its current slice only'),
  orders: Count,
});

/** `GET /v1/market/{symbol}/book`: the book-depth read model. */
export const BookAnswer = z.strictObject({
  symbol: z.string(),
  status: z.enum(['NOT_OPEN', 'OPEN', 'HALTED']).describe("the B3 engine's status of the book"),
  haltReason: z.string().nullable().describe('why it is halted; null otherwise'),
  referencePrice: Money.nullable().describe(
    "the centre of the price band B3 applies to the next order: the latest quote when it is an admin's price or newer than the price the engine last recorded in the book, else that one; null before the book opens",
  ),
  lastTradePrice: Money.nullable().describe('null before the first trade'),
  sequence: Count.describe('the sequence of the last book event the answer includes'),
  bids: z.array(DepthLevel).describe('best (highest) first'),
  asks: z.array(DepthLevel).describe('best (lowest) first'),
});

/** `GET /v1/instruments/{symbol}`, and each item of the catalogue: one instrument. */
export const InstrumentAnswer = z.strictObject({
  symbol: z
    .string()
    .describe('the standard ticker, which custody holds: PETR4 (a fractional ticker answers it)'),
  name: z.string(),
  lotSize: Count.describe('shares per round lot on the standard market'),
  tickSize: Money.describe('the minimum price increment'),
  fractionalSymbol: z
    .string()
    .nullable()
    .describe('the fractional-market ticker (PETR4F), trading 1 to lotSize − 1 shares; null when none'),
  referencePrice: Money.describe("the catalogue's reference price: the listing's, or an admin's latest"),
  status: z.enum(['OPEN', 'HALTED']).describe('HALTED: the broker refuses new orders'),
  haltReason: z.string().nullable().describe('why it is halted; null while open'),
});

/** `GET /v1/instruments`: a page of the catalogue, by symbol. */
export const InstrumentsPageAnswer = z.strictObject({
  items: z.array(InstrumentAnswer),
  nextCursor: z.string().optional().describe('pass back as `cursor` for the next page'),
});

/** The answers the document describes with a schema, by route and status. */
export const ANSWERS: Record<string, Record<number, z.ZodType>> = {
  'POST /v1/auth/login': { 200: LoginAnswer },
  'GET /v1/accounts/{id}/wallet': { 200: WalletAnswer },
  'POST /v1/accounts/{id}/deposits': { 201: WalletChangeAnswer },
  'POST /v1/accounts/{id}/withdrawals': { 201: WalletChangeAnswer },
  'POST /v1/accounts/{id}/custody-transfers': { 201: WalletChangeAnswer },
  'POST /v1/orders': { 202: OrderPlacedAnswer },
  'DELETE /v1/orders/{id}': { 202: CancelRequestedAnswer, 200: CanceledAlreadyAnswer },
  'GET /v1/orders/{id}': { 200: OrderAnswer },
  'GET /v1/trades': { 200: TradesPageAnswer },
  'GET /v1/market/{symbol}/quote': { 200: QuoteAnswer },
  'GET /v1/market/{symbol}/quotes': { 200: QuotesPageAnswer },
  'GET /v1/market/{symbol}/candles': { 200: CandlesAnswer },
  'GET /v1/market/{symbol}/book': { 200: BookAnswer },
  'GET /v1/instruments': { 200: InstrumentsPageAnswer },
  'GET /v1/instruments/{symbol}': { 200: InstrumentAnswer },
  'POST /v1/admin/instruments': { 201: InstrumentAnswer },
  'POST /v1/admin/instruments/{symbol}/reference-price': { 200: InstrumentAnswer },
  'POST /v1/admin/instruments/{symbol}/halt': { 200: InstrumentAnswer },
  'POST /v1/admin/instruments/{symbol}/resume': { 200: InstrumentAnswer },
};

/**
 * An answer's JSON Schema for the document. Without `additionalProperties: false`: an answer may
 * gain fields, and a client should not break when it does (the tests hold the answers to exactly
 * these fields).
 */
export function answerSchema(schema: z.ZodType): Record<string, unknown> {
  const { $schema: _, ...json } = z.toJSONSchema(schema, { io: 'output' }) as Record<string, unknown>;
  return openObjects(json) as Record<string, unknown>;
}

function openObjects(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(openObjects);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([key, item]) => !(key === 'additionalProperties' && item === false))
      .map(([key, item]) => [key, openObjects(item)]),
  );
}
