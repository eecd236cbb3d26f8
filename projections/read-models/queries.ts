import { z } from 'zod';
import { custodySymbol, type TradingStatus } from '../../domain/broker/instrument/instrument.ts';
import { STANDARD_SYMBOL } from '../../domain/broker/schemas.ts';
import type { FindOptions, ProjectionDefinition, Row, Value } from '../model.ts';
import type { ReadModelStore } from '../store.ts';
import { type AuditEntry, type AuditTrace, readAuditTrace, readWholeAuditTrace } from './audit-trace.ts';
import { BOOK_ORDERS, BOOKS, bookDepthProjection } from './book-depth.ts';
import { CANDLE_INTERVALS, CANDLES, type CandleInterval, candlesProjection } from './candles.ts';
import { CursorPosition, decodeCursor, encodeCursor, type Keyset } from './cursor.ts';
import { INSTRUMENTS, instrumentsProjection } from './instruments.ts';
import { EXECUTIONS, ORDERS, ordersProjection } from './orders.ts';
import { LATEST_QUOTES, QUOTES, quotesProjection } from './quotes.ts';
import { TRADE_PARTIES, TRADES, tradesProjection } from './trades.ts';
import { WALLET_CASH, WALLET_POSITIONS, walletsProjection } from './wallets.ts';

export type { AuditEntry, AuditTrace } from './audit-trace.ts';
export { CursorPosition, decodeCursor, encodeCursor, InvalidCursor, type Keyset } from './cursor.ts';

/**
 * The read side the HTTP API calls: every answer comes from a read model, never from an event
 * store. Amounts and prices are integer cents, quantities integer shares, instants Dates (the
 * API formats them). Lists are keyset-paginated: the cursor is an opaque base64url token naming
 * the last row returned, so a page never skips or repeats a row when others are written meanwhile.
 */

/** The store serving each kind of read model; in embedded mode all three are one PGlite store. */
export interface ReadModelStores {
  mysql: ReadModelStore;
  postgres: ReadModelStore;
  mongo: ReadModelStore;
  /** Where the read models live, for people. */
  description?: string;
  close(): Promise<void>;
}

export function storeFor(
  stores: Pick<ReadModelStores, 'mysql' | 'postgres' | 'mongo'>,
  projection: ProjectionDefinition,
): ReadModelStore {
  return stores[projection.store];
}

export interface Page<Item> {
  items: Item[];
  /** Present when more items may follow: pass it back as `cursor` for the next page. */
  nextCursor?: string;
}

export type OrderStatus =
  | 'PENDING_NEW'
  | 'NEW'
  | 'PARTIALLY_FILLED'
  | 'FILLED'
  | 'CANCELED'
  | 'REJECTED'
  | 'EXPIRED';

export interface OrderView {
  orderId: string;
  accountId: string;
  symbol: string;
  custodySymbol: string;
  market: string;
  side: 'BUY' | 'SELL';
  type: string;
  timeInForce: string;
  quantity: number;
  /** Limit price in cents, null for a market order. */
  price: number | null;
  stopPrice: number | null;
  expiresAt: Date | null;
  status: OrderStatus;
  filledQuantity: number;
  remainingQuantity: number;
  /** Cents, null before the first execution. */
  averagePrice: number | null;
  cancelRequested: boolean;
  rejectReason: string | null;
  rejectDetail: string | null;
  /** Why a CANCELED order was canceled (CANCELED_BY_TRADER, CANCELED_BY_ADMIN, SELF_TRADE_PREVENTION, …). */
  cancelReason: string | null;
  placedAt: Date;
  updatedAt: Date;
  /** The version of the `order-{orderId}` stream this view includes. */
  version: number;
}

export interface ExecutionView {
  executionId: string;
  quantity: number;
  price: number;
  executedAt: Date;
  filledQuantity: number;
  remainingQuantity: number;
}

export interface OrderDetail extends OrderView {
  executions: ExecutionView[];
}

export interface WalletView {
  accountId: string;
  cash: { available: number; reserved: number };
  positions: Array<{ symbol: string; available: number; reserved: number; costBasis: number }>;
  updatedAt: Date | null;
  version: number | null;
}

export interface TradeView {
  tradeId: string;
  symbol: string;
  price: number;
  quantity: number;
  buyOrderId: string;
  buyAccountId: string;
  sellOrderId: string;
  sellAccountId: string;
  aggressorSide: 'BUY' | 'SELL';
  executedAt: Date;
  /** With `accountId`: the side that account took. */
  side?: 'BUY' | 'SELL';
}

export interface DepthLevel {
  price: number;
  /** Shares shown: an iceberg counts with its current slice only. */
  quantity: number;
  orders: number;
}

export interface BookView {
  symbol: string;
  /** The B3 engine's status of the book. */
  status: 'NOT_OPEN' | 'OPEN' | 'HALTED';
  /** Why the engine halted it, while it is halted (null otherwise, or for a halt recorded without one). */
  haltReason: string | null;
  /** The centre of the price band as the engine would apply it now (`bandReferencePrice`); null before the book opens. */
  referencePrice: number | null;
  lastTradePrice: number | null;
  /** The book sequence the view includes. */
  sequence: number;
  /** Best first. */
  bids: DepthLevel[];
  asks: DepthLevel[];
}

export interface QuoteView {
  symbol: string;
  bid: number | null;
  ask: number | null;
  bidSize: number;
  askSize: number;
  last: number | null;
  volume: number;
  source: string;
  at: Date;
  sequence: number;
}

export interface CandleView {
  symbol: string;
  interval: CandleInterval;
  start: Date;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
  /** Volume-weighted average price in cents (rounded). */
  vwap: number;
  trades: number;
}

/** A catalogue entry, as `GET /v1/instruments/{symbol}` answers it (in cents). */
export interface InstrumentView {
  /** The standard (custody) ticker. */
  symbol: string;
  name: string;
  lotSize: number;
  /** Cents. */
  tickSize: number;
  fractionalSymbol: string | null;
  /** Cents. */
  referencePrice: number;
  status: TradingStatus;
  haltReason: string | null;
}

export interface ReadModels {
  wallet(accountId: string): Promise<WalletView | undefined>;
  order(orderId: string): Promise<OrderDetail | undefined>;
  orders(query: {
    accountId?: string;
    status?: OrderStatus;
    symbol?: string;
    limit: number;
    cursor?: string;
  }): Promise<Page<OrderView>>;
  trades(query: {
    symbol?: string;
    accountId?: string;
    limit: number;
    cursor?: string;
  }): Promise<Page<TradeView>>;
  /** The catalogue by ticker, optionally only the instruments with that status. */
  instruments(query: {
    status?: TradingStatus;
    limit: number;
    cursor?: string;
  }): Promise<Page<InstrumentView>>;
  book(symbol: string, depth: number): Promise<BookView>;
  quote(symbol: string): Promise<QuoteView | undefined>;
  quotes(symbol: string, query: { limit: number; cursor?: string }): Promise<Page<QuoteView>>;
  /** Candles starting in [from, to], oldest first; at most `MAX_CANDLES`. */
  candles(symbol: string, interval: CandleInterval, from: Date, to: Date): Promise<CandleView[]>;
  /** Every event of one request, across streams and both stores, in the order they happened. */
  trace(correlationId: string): Promise<AuditEntry[]>;
  /** The same, a page at a time (`audit-trace.ts`). */
  auditTrace(correlationId: string, query: { limit: number; cursor?: string }): Promise<AuditTrace>;
}

export const MAX_PAGE = 500;
export const MAX_CANDLES = 5000;

/** The lists whose keyset is one position (`placed_position`, `position`, a quote's `sequence`). */
const byPosition: Keyset<[number]> = z.tuple([CursorPosition]);
/** The catalogue's keyset: an instrument's standard ticker. */
const bySymbol: Keyset<[string]> = z.tuple([z.string().regex(STANDARD_SYMBOL)]);

const clamp = (limit: number): number => Math.min(MAX_PAGE, Math.max(1, Math.floor(limit) || 1));
const num = (value: Value | undefined): number => Number(value ?? 0);
const numOrNull = (value: Value | undefined): number | null =>
  value === null || value === undefined ? null : Number(value);
const date = (value: Value | undefined): Date => (value instanceof Date ? value : new Date(String(value)));
const dateOrNull = (value: Value | undefined): Date | null =>
  value === null || value === undefined ? null : date(value);
const text = (value: Value | undefined): string => String(value ?? '');
const textOrNull = (value: Value | undefined): string | null =>
  value === null || value === undefined ? null : String(value);

export function createReadModels(stores: Pick<ReadModelStores, 'mysql' | 'postgres' | 'mongo'>): ReadModels {
  const find = (projection: ProjectionDefinition, table: string, options: FindOptions) =>
    storeFor(stores, projection).find(projection, table, options);

  /** One keyset page: reads limit + 1 rows to know whether a next page exists. */
  async function page<Item>(
    projection: ProjectionDefinition,
    table: string,
    list: string,
    options: {
      where: Row;
      orderBy: Array<[string, 'asc' | 'desc']>;
      /** What the cursor's values must be, one per `orderBy` column. */
      keyset: Keyset<Value[]>;
      limit: number;
      cursor?: string;
    },
    view: (row: Row) => Item,
  ): Promise<Page<Item>> {
    const limit = clamp(options.limit);
    const after = decodeCursor(list, options.cursor, options.keyset);
    const rows = await find(projection, table, {
      where: options.where,
      orderBy: options.orderBy,
      limit: limit + 1,
      after,
    });
    const items = rows.slice(0, limit);
    const last = items.at(-1);
    return {
      items: items.map(view),
      ...(rows.length > limit && last
        ? {
            nextCursor: encodeCursor(
              list,
              options.orderBy.map(([column]) => last[column] as Value),
            ),
          }
        : {}),
    };
  }

  return {
    async wallet(accountId) {
      const [cash] = await find(walletsProjection, WALLET_CASH, {
        where: { account_id: accountId },
        limit: 1,
      });
      if (!cash) return undefined;
      const positions = await find(walletsProjection, WALLET_POSITIONS, {
        where: { account_id: accountId },
        orderBy: [['symbol', 'asc']],
      });
      return {
        accountId,
        cash: { available: num(cash.available), reserved: num(cash.reserved) },
        positions: positions
          .filter((row) => num(row.available) !== 0 || num(row.reserved) !== 0)
          .map((row) => ({
            symbol: text(row.symbol),
            available: num(row.available),
            reserved: num(row.reserved),
            costBasis: num(row.cost_basis),
          })),
        updatedAt: dateOrNull(cash.updated_at),
        version: numOrNull(cash.stream_version),
      };
    },

    async order(orderId) {
      const [row] = await find(ordersProjection, ORDERS, { where: { order_id: orderId }, limit: 1 });
      if (!row || row.account_id === null) return undefined;
      const executions = await find(ordersProjection, EXECUTIONS, {
        where: { order_id: orderId },
        orderBy: [
          ['position', 'asc'],
          ['execution_id', 'asc'],
        ],
      });
      return {
        ...orderView(row),
        executions: executions.map((execution) => ({
          executionId: text(execution.execution_id),
          quantity: num(execution.quantity),
          price: num(execution.price),
          executedAt: date(execution.executed_at),
          filledQuantity: num(execution.filled_quantity),
          remainingQuantity: num(execution.remaining_quantity),
        })),
      };
    },

    orders({ accountId, status, symbol, limit, cursor }) {
      const where: Row = {};
      if (accountId !== undefined) where.account_id = accountId;
      if (status !== undefined) where.status = status;
      if (symbol !== undefined) where.symbol = symbol;
      return page(
        ordersProjection,
        ORDERS,
        filteredList('orders', where),
        { where, orderBy: [['placed_position', 'desc']], keyset: byPosition, limit, cursor },
        orderView,
      );
    },

    async trades({ symbol, accountId, limit, cursor }) {
      const where: Row = {};
      if (symbol !== undefined) where.symbol = symbol;
      const options = {
        where,
        orderBy: [['position', 'desc']] as Array<[string, 'asc' | 'desc']>,
        keyset: byPosition,
        limit,
        cursor,
      };
      if (accountId === undefined)
        return page(tradesProjection, TRADES, filteredList('trades', where), options, tradeView);
      // An account's tape: a page of its parties, then their trades by id (the same cursor).
      where.account_id = accountId;
      const parties = await page(
        tradesProjection,
        TRADE_PARTIES,
        filteredList('trades', where),
        options,
        (row) => row,
      );
      const trades = await find(tradesProjection, TRADES, {
        oneOf: { trade_id: parties.items.map((party) => party.trade_id as Value) },
      });
      const byId = new Map(trades.map((trade) => [trade.trade_id, trade]));
      // Both rows come from one event in one batch; a store without transactions (Mongo) may
      // show a party a moment before its trade: the party is left out until the trade is there.
      const items = parties.items.flatMap((party) => {
        const trade = byId.get(party.trade_id);
        return trade ? [tradeView({ ...trade, side: party.side as Value })] : [];
      });
      return { ...parties, items };
    },

    instruments({ status, limit, cursor }) {
      const where: Row = status === undefined ? {} : { status };
      return page(
        instrumentsProjection,
        INSTRUMENTS,
        filteredList('instruments', where),
        {
          where,
          orderBy: [['symbol', 'asc']],
          keyset: bySymbol,
          limit,
          cursor,
        },
        instrumentView,
      );
    },

    async book(symbol, depth) {
      const levels = Math.min(1000, Math.max(1, Math.floor(depth) || 1));
      const [[status], [quote], bids, asks] = await Promise.all([
        find(bookDepthProjection, BOOKS, { where: { symbol }, limit: 1 }),
        // The instrument's quote: a fractional book (PETR4F) trades against PETR4's price.
        find(quotesProjection, LATEST_QUOTES, { where: { symbol: custodySymbol(symbol) }, limit: 1 }),
        depthOf(symbol, 'BUY', levels),
        depthOf(symbol, 'SELL', levels),
      ]);
      const opened = numOrNull(status?.reference_price);
      const recorded = (status?.status as BookView['status'] | undefined) ?? 'NOT_OPEN';
      return {
        symbol,
        // A book opens with its reference price: one resumed before it ever opened is not open yet.
        status: recorded === 'OPEN' && opened === null ? 'NOT_OPEN' : recorded,
        haltReason:
          recorded === 'HALTED' ? ((status?.halt_reason as string | null | undefined) ?? null) : null,
        referencePrice: bandReferencePrice(
          opened === null ? null : { price: opened, at: dateOrNull(status?.reference_price_at) },
          quote && { last: numOrNull(quote.last), at: date(quote.quoted_at), source: text(quote.source) },
        ),
        lastTradePrice: numOrNull(status?.last_trade_price),
        sequence: num(status?.sequence),
        bids,
        asks,
      };
    },

    async quote(symbol) {
      const [row] = await find(quotesProjection, LATEST_QUOTES, { where: { symbol }, limit: 1 });
      return row ? quoteView(row) : undefined;
    },

    quotes(symbol, { limit, cursor }) {
      return page(
        quotesProjection,
        QUOTES,
        `quotes:${symbol}`,
        { where: { symbol }, orderBy: [['sequence', 'desc']], keyset: byPosition, limit, cursor },
        quoteView,
      );
    },

    async candles(symbol, interval, from, to) {
      if (!Object.hasOwn(CANDLE_INTERVALS, interval))
        throw new RangeError(`unknown candle interval ${interval}`);
      const candles: CandleView[] = [];
      // `after` is exclusive: start just before `from`.
      let after: Value[] = [new Date(from.getTime() - 1)];
      while (candles.length < MAX_CANDLES) {
        const rows = await find(candlesProjection, CANDLES, {
          where: { symbol, interval },
          orderBy: [['bucket_start', 'asc']],
          limit: Math.min(1000, MAX_CANDLES - candles.length),
          after,
        });
        for (const row of rows) {
          if (date(row.bucket_start).getTime() > to.getTime()) return candles;
          candles.push(candleView(row));
        }
        if (rows.length < 1000) break;
        after = [rows.at(-1)!.bucket_start as Value];
      }
      return candles;
    },

    trace(correlationId) {
      return readWholeAuditTrace(stores, correlationId);
    },

    auditTrace(correlationId, query) {
      return readAuditTrace(stores, correlationId, query);
    },
  };

  /** Sums resting orders into price levels, best first, reading the (symbol, side, price) index a page at a time. */
  async function depthOf(symbol: string, side: 'BUY' | 'SELL', levels: number): Promise<DepthLevel[]> {
    const direction = side === 'BUY' ? 'desc' : 'asc';
    const orderBy: Array<[string, 'asc' | 'desc']> = [
      ['price', direction],
      ['order_id', 'asc'],
    ];
    const result: DepthLevel[] = [];
    let after: Value[] | undefined;
    for (;;) {
      const rows = await find(bookDepthProjection, BOOK_ORDERS, {
        where: { symbol, side, resting: true },
        orderBy,
        limit: 500,
        after,
      });
      for (const row of rows) {
        const price = num(row.price);
        const displayed = num(row.displayed);
        if (displayed <= 0) continue;
        const level = result.at(-1);
        if (level?.price === price) {
          level.quantity += displayed;
          level.orders += 1;
        } else {
          if (result.length === levels) return result;
          result.push({ price, quantity: displayed, orders: 1 });
        }
      }
      if (rows.length < 500) return result;
      const last = rows.at(-1)!;
      after = [last.price as Value, last.order_id as Value];
    }
  }
}

/**
 * A list's name in its cursors, with the filters it was asked with: a cursor of one account's
 * orders is no cursor of another's (its positions would skip or repeat the other's rows).
 */
function filteredList(list: string, where: Row): string {
  const filters = Object.entries(where).sort(([a], [b]) => (a < b ? -1 : 1));
  return filters.length === 0
    ? list
    : `${list}?${new URLSearchParams(filters.map(([name, value]): [string, string] => [name, String(value)]))}`;
}

/**
 * The price the B3 engine's price band is centred on now. The engine reads it from the B3 market cache as each order arrives, and records it in the book
 * (BookOpened, ReferencePriceSet) only then; the cache holds the last quote the market data
 * recorded (`lastRecordedPrice` refills it from there), so a price an admin set, or the feed's next
 * quote, is the band's before any book event says so. Hence the latest quote when it is an admin's
 * (pinned: the cache keeps it until the next admin price) or was observed after the engine recorded
 * its price; otherwise the recorded price (the quote that gave it may not be projected yet). A book
 * not open yet opens at the cache's price with its first order: the latest quote, or none.
 */
export function bandReferencePrice(
  recorded: { price: number; at: Date | null } | null,
  quote: { last: number | null; at: Date; source: string } | undefined,
): number | null {
  if (recorded === null) return quote?.last ?? null;
  if (!quote || quote.last === null) return recorded.price;
  if (quote.source === 'admin' || recorded.at === null || quote.at > recorded.at) return quote.last;
  return recorded.price;
}

function orderView(row: Row): OrderView {
  const quantity = num(row.quantity);
  const filled = num(row.filled_quantity);
  const status = text(row.status) as OrderStatus;
  const open = status === 'PENDING_NEW' || status === 'NEW' || status === 'PARTIALLY_FILLED';
  return {
    orderId: text(row.order_id),
    accountId: text(row.account_id),
    symbol: text(row.symbol),
    custodySymbol: text(row.custody_symbol),
    market: text(row.market),
    side: text(row.side) as 'BUY' | 'SELL',
    type: text(row.type),
    timeInForce: text(row.time_in_force),
    quantity,
    price: numOrNull(row.price),
    stopPrice: numOrNull(row.stop_price),
    expiresAt: dateOrNull(row.expires_at),
    status,
    filledQuantity: filled,
    remainingQuantity: open ? quantity - filled : 0,
    averagePrice: numOrNull(row.average_price),
    cancelRequested: row.cancel_requested === true || row.cancel_requested === 1,
    rejectReason: textOrNull(row.reject_reason),
    rejectDetail: textOrNull(row.reject_detail),
    cancelReason: textOrNull(row.cancel_reason),
    placedAt: date(row.placed_at),
    updatedAt: date(row.updated_at),
    version: num(row.stream_version),
  };
}

function instrumentView(row: Row): InstrumentView {
  return {
    symbol: text(row.symbol),
    name: text(row.name),
    lotSize: num(row.lot_size),
    tickSize: num(row.tick_size),
    fractionalSymbol: textOrNull(row.fractional_symbol),
    referencePrice: num(row.reference_price),
    status: text(row.status) as TradingStatus,
    haltReason: textOrNull(row.halt_reason),
  };
}

function tradeView(row: Row): TradeView {
  return {
    tradeId: text(row.trade_id),
    symbol: text(row.symbol),
    price: num(row.price),
    quantity: num(row.quantity),
    buyOrderId: text(row.buy_order_id),
    buyAccountId: text(row.buy_account_id),
    sellOrderId: text(row.sell_order_id),
    sellAccountId: text(row.sell_account_id),
    aggressorSide: text(row.aggressor_side) as 'BUY' | 'SELL',
    executedAt: date(row.executed_at),
    ...(row.side ? { side: text(row.side) as 'BUY' | 'SELL' } : {}),
  };
}

function quoteView(row: Row): QuoteView {
  return {
    symbol: text(row.symbol),
    bid: numOrNull(row.bid),
    ask: numOrNull(row.ask),
    bidSize: num(row.bid_size),
    askSize: num(row.ask_size),
    last: numOrNull(row.last),
    volume: num(row.volume),
    source: text(row.source),
    at: date(row.quoted_at),
    sequence: num(row.sequence),
  };
}

function candleView(row: Row): CandleView {
  const volume = num(row.volume);
  return {
    symbol: text(row.symbol),
    interval: text(row.interval) as CandleInterval,
    start: date(row.bucket_start),
    open: num(row.open),
    high: num(row.high),
    low: num(row.low),
    close: num(row.close),
    volume,
    vwap: volume > 0 ? Math.round(num(row.notional) / volume) : 0,
    trades: num(row.trades),
  };
}
