import { z } from 'zod';
import { assertMay } from '../../domain/broker/account/account.ts';
import { AccountNotFound } from '../../domain/broker/account/errors.ts';
import { InstrumentNotFound } from '../../domain/broker/instrument/errors.ts';
import type { Instrument } from '../../domain/broker/instrument/instrument.ts';
import {
  custodySymbol,
  instrumentDecider,
  instrumentStreamId,
} from '../../domain/broker/instrument/instrument.ts';
import { orderDecider, orderStreamId } from '../../domain/broker/order/order.ts';
import type { Wallet } from '../../domain/broker/wallet/wallet.ts';
import { walletDecider, walletStreamId } from '../../domain/broker/wallet/wallet.ts';
import { loadAggregate } from '../../domain/shared/aggregate.ts';
import { formatCents } from '../../domain/shared/money.ts';
import { aggregateOf, handleCommand } from '../shared/command-handler.ts';
import {
  type App,
  accountOf,
  answerCreate,
  assertAccountAccess,
  decimalize,
  isAdmin,
  metadataOf,
  principalOf,
  type RouteContext,
  readModelsOf,
  requireRoles,
  walletAnswer,
} from './context.ts';
import { findEvent } from './idempotency.ts';
import { ApiProblem } from './problem.ts';
import {
  AccountParams,
  AmountBody,
  BookQuery,
  CandlesQuery,
  CustodyTransferBody,
  IdParam,
  InstrumentsQuery,
  NoBody,
  OrdersQuery,
  PlaceOrderBody,
  QuotesQuery,
  SymbolParams,
  TradesQuery,
} from './schemas.ts';

const security = [{ bearerAuth: [] }];

/** The account must exist, be active and trade: wallets and orders belong to traders. */
async function assertTrader(context: RouteContext, accountId: string): Promise<void> {
  assertMay(await accountOf(context, accountId), 'trader', accountId);
}

/**
 * A list filtered by an account no one has is 404 ACCOUNT_NOT_FOUND, as that account's own routes
 * answer, rather than an empty page (an admin's typo would look like an account with no orders).
 * Asked only of an empty page: a page with rows has its account.
 */
async function assertListedAccountExists(
  context: RouteContext,
  accountId: string | undefined,
  page: { items: readonly unknown[] },
): Promise<void> {
  if (accountId !== undefined && page.items.length === 0 && !(await accountOf(context, accountId)).registered)
    throw new AccountNotFound(accountId);
}

/**
 * The catalogue entry a traded symbol belongs to: its standard market (`PETR4`) or its fractional
 * one (`PETR4F`, when it has one); 422 INSTRUMENT_NOT_FOUND when none.
 */
async function listedInstrument(context: RouteContext, symbol: string): Promise<Instrument> {
  const { state } = await loadAggregate(
    context.broker,
    instrumentStreamId(custodySymbol(symbol)),
    aggregateOf(instrumentDecider),
    { cache: context.caches.instruments },
  );
  if (!state.listed || (symbol !== state.symbol && symbol !== state.fractionalSymbol))
    throw new InstrumentNotFound(symbol);
  return state;
}

/** 404 for a market data read of a symbol that does not trade (an empty answer says nothing). */
async function assertTraded(context: RouteContext, symbol: string): Promise<void> {
  if (!(await isTraded(context, symbol)))
    throw new ApiProblem(404, 'INSTRUMENT_NOT_FOUND', `${symbol} is not listed`);
}

/** Whether `symbol` trades: the standard or fractional market of a listed instrument. */
export async function isTraded(context: RouteContext, symbol: string): Promise<boolean> {
  return (await tradedInstrument(context, symbol)) !== undefined;
}

/** The listed instrument `symbol` is the standard or fractional market of; undefined when none. */
async function tradedInstrument(context: RouteContext, symbol: string): Promise<Instrument | undefined> {
  return listedInstrument(context, symbol).catch((error: unknown) => {
    if (error instanceof InstrumentNotFound) return undefined;
    throw error;
  });
}

/**
 * The instrument whose quotes `symbol` reads: quotes are an instrument's, and its fractional market
 * (`PETR4F`) trades the same share at the same price, so it reads `PETR4`'s. 404 when not listed.
 */
async function quotedInstrument(context: RouteContext, symbol: string): Promise<Instrument> {
  const instrument = await tradedInstrument(context, symbol);
  if (!instrument) throw new ApiProblem(404, 'INSTRUMENT_NOT_FOUND', `${symbol} is not listed`);
  return instrument;
}

export function cashOf(wallet: Wallet) {
  return { available: formatCents(wallet.cash.available), reserved: formatCents(wallet.cash.reserved) };
}

/** What a catalogue answer shows of an instrument: the aggregate's state, or a row of the instruments read model. */
type CatalogueEntry = Pick<
  Instrument,
  'symbol' | 'name' | 'lotSize' | 'tickSize' | 'fractionalSymbol' | 'referencePrice' | 'status' | 'haltReason'
>;

export function instrumentAnswer(instrument: CatalogueEntry) {
  return {
    symbol: instrument.symbol,
    name: instrument.name,
    lotSize: instrument.lotSize,
    tickSize: formatCents(instrument.tickSize),
    fractionalSymbol: instrument.fractionalSymbol,
    referencePrice: formatCents(instrument.referencePrice),
    status: instrument.status,
    haltReason: instrument.haltReason,
  };
}

export function tradingRoutes(app: App, context: RouteContext): void {
  const traders = { onRequest: requireRoles('trader', 'admin') };

  /** A wallet command's answer: the wallet right after its event (`version`). */
  const walletAfter = (accountId: string, version: number, wallet: Wallet) => {
    // As `GET …/wallet` shows them: positions still held, with what they cost.
    const positions = Object.entries(wallet.positions)
      .filter(([, held]) => held.available !== 0 || held.reserved !== 0)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([symbol, held]) => ({
        symbol,
        available: held.available,
        reserved: held.reserved,
        costBasis: formatCents(held.costBasis),
      }));
    return { statusCode: 201, body: { accountId, version, cash: cashOf(wallet), positions } };
  };
  /** The answer of a wallet command whose event is stored already, at `version`. */
  const walletAt = async (accountId: string, version: number) => {
    const { state } = await loadAggregate(
      context.broker,
      walletStreamId(accountId),
      aggregateOf(walletDecider),
      { version },
    );
    return walletAfter(accountId, version, state);
  };

  const walletCommand = (
    path: string,
    summary: string,
    body: typeof AmountBody | typeof CustodyTransferBody,
    /** The event the command appends: what a run after a crash looks for. */
    eventType: string,
    toCommand: (input: never) => Parameters<typeof walletDecider.decide>[0],
  ) =>
    app.post(
      path,
      { ...traders, schema: { tags: ['accounts'], summary, security, params: AccountParams, body } },
      async (request, reply) => {
        const accountId = request.params.id;
        assertAccountAccess(request, accountId);
        return answerCreate(context, request, reply, async (run) => {
          const streamId = walletStreamId(accountId);
          // A run after a crash: the wallet as the crashed run's event left it, and nothing again
          // (a withdrawal decided again on today's wallet could even be refused).
          const earlier = await run.earlier(eventType, streamId);
          if (earlier) return walletAt(accountId, earlier.version);
          await assertTrader(context, accountId);
          const symbol = (request.body as { symbol?: string }).symbol;
          // Custody holds listed instruments only: a share of something nobody trades is no position.
          if (symbol !== undefined) await listedInstrument(context, symbol);
          // In the wallet's lane: after the order process's reservation, not racing it.
          const result = await context.walletLanes.run(streamId, async () => {
            // Asked again once its turn came: a busy wallet's queue can hold a command for seconds,
            // and an account disabled or no longer a trader meanwhile moves no more cash.
            await assertTrader(context, accountId);
            return handleCommand(
              context.broker,
              streamId,
              walletDecider,
              toCommand(request.body as never),
              metadataOf(request),
              { newEventId: run.eventIds(eventType), cache: context.caches.wallets },
            );
          });
          if (result.idempotent) {
            // Another run under the key (one that outlived its lease) appended the same event first.
            const [event] = result.events;
            const stored =
              event && (await findEvent(context.broker, streamId, event.id, result.positions[0]! - 1));
            if (stored) return walletAt(accountId, stored.version);
          }
          return walletAfter(accountId, result.version, result.state);
        });
      },
    );

  walletCommand(
    '/v1/accounts/:id/deposits',
    'Deposit cash',
    AmountBody,
    'CashDeposited',
    (body: { amount: number }) => ({ type: 'Deposit', amount: body.amount }),
  );
  walletCommand(
    '/v1/accounts/:id/withdrawals',
    'Withdraw cash (never below zero available)',
    AmountBody,
    'CashWithdrawn',
    (body: { amount: number }) => ({ type: 'Withdraw', amount: body.amount }),
  );
  walletCommand(
    '/v1/accounts/:id/custody-transfers',
    'Transfer shares into custody',
    CustodyTransferBody,
    'SharesTransferredIn',
    (body: { symbol: string; quantity: number; unitCost?: number }) => ({
      type: 'TransferSharesIn',
      symbol: body.symbol,
      quantity: body.quantity,
      unitCost: body.unitCost,
    }),
  );

  app.get(
    '/v1/accounts/:id/wallet',
    {
      ...traders,
      schema: {
        tags: ['accounts'],
        summary: 'Cash and positions (read model)',
        security,
        params: AccountParams,
      },
    },
    async (request) => {
      assertAccountAccess(request, request.params.id);
      const row = await readModelsOf(context).wallet(request.params.id);
      if (row) return walletAnswer(request.params.id, row);
      // A trader who has not moved any cash or shares yet has an empty wallet, not a missing one;
      // an account that never held any and is not a trader (an admin, an auditor) has none.
      const account = await accountOf(context, request.params.id);
      if (!account.registered) throw new AccountNotFound(request.params.id);
      if (!account.roles.includes('trader'))
        throw new ApiProblem(
          404,
          'WALLET_NOT_FOUND',
          `account ${request.params.id} has no wallet: it never held cash or shares, and it is not a trader`,
        );
      return { accountId: request.params.id, cash: { available: '0.00', reserved: '0.00' }, positions: [] };
    },
  );

  app.post(
    '/v1/orders',
    {
      ...traders,
      schema: {
        tags: ['orders'],
        summary: 'Place an order',
        description:
          'Validated against the instrument (lot, tick, type, time in force) and recorded as OrderPlaced; the order process manager reserves and routes it. Send an Idempotency-Key to retry safely.',
        security,
        body: PlaceOrderBody,
        headers: z.object({ 'idempotency-key': z.string().optional() }),
      },
    },
    async (request, reply) => {
      const body = request.body;
      assertAccountAccess(request, body.accountId);
      const placed = (orderId: string) => ({
        statusCode: 202,
        body: { orderId, status: 'PENDING_NEW' },
        location: `/v1/orders/${orderId}`,
      });
      return answerCreate(context, request, reply, async (run) => {
        const orderId = run.id('order');
        // A run after a crash: the order the crashed run placed, whatever changed since (a halt,
        // a revoked role), and no second one.
        const earlier = await run.earlier('OrderPlaced', orderStreamId(orderId));
        if (earlier) return placed((earlier.data as { orderId: string }).orderId);
        const [, instrument] = await Promise.all([
          assertTrader(context, body.accountId),
          listedInstrument(context, body.symbol),
        ]);
        await handleCommand(
          context.broker,
          orderStreamId(orderId),
          orderDecider,
          {
            type: 'PlaceOrder',
            orderId,
            accountId: body.accountId,
            symbol: body.symbol,
            side: body.side,
            orderType: body.type,
            quantity: body.quantity,
            price: body.price ?? null,
            stopPrice: body.stopPrice ?? null,
            timeInForce: body.timeInForce,
            expiresAt: body.expiresAt ?? null,
            instrument,
            at: context.now().toISOString(),
          },
          metadataOf(request),
          // The same event id in every run under the key: a run racing one that outlived its lease
          // meets its OrderPlaced (the store answers idempotently) instead of a conflict.
          { expectedVersion: 'no_stream', newEventId: run.eventIds('OrderPlaced') },
        );
        return placed(orderId);
      });
    },
  );

  app.delete(
    '/v1/orders/:id',
    {
      ...traders,
      schema: {
        tags: ['orders'],
        summary: 'Cancel what is left of an order (again once canceled: 200, nothing changes)',
        security,
        params: z.strictObject({ id: IdParam }),
        body: NoBody,
      },
    },
    async (request, reply) => {
      const orderId = request.params.id;
      const { state: order } = await loadAggregate(
        context.broker,
        orderStreamId(orderId),
        aggregateOf(orderDecider),
      );
      if (!order.placed) throw new ApiProblem(404, 'ORDER_NOT_FOUND', `no order ${orderId}`);
      const principal = assertAccountAccess(request, order.accountId);
      const result = await handleCommand(
        context.broker,
        orderStreamId(orderId),
        orderDecider,
        { type: 'RequestCancel', requestedBy: principal.accountId, at: context.now().toISOString() },
        metadataOf(request),
      );
      // Canceled already (a repeat): nothing is asked of B3, the answer is the order's final state.
      return reply
        .code(result.state.status === 'CANCELED' ? 200 : 202)
        .send({ orderId, status: result.state.status, cancelRequested: true });
    },
  );

  app.get(
    '/v1/orders/:id',
    {
      ...traders,
      schema: {
        tags: ['orders'],
        summary: 'One order (read model)',
        security,
        params: z.strictObject({ id: IdParam }),
      },
    },
    async (request) => {
      const row = await readModelsOf(context).order(request.params.id);
      if (!row) throw new ApiProblem(404, 'ORDER_NOT_FOUND', `no order ${request.params.id}`);
      assertAccountAccess(request, String((row as { accountId?: unknown }).accountId));
      return decimalize(row);
    },
  );

  app.get(
    '/v1/orders',
    {
      ...traders,
      schema: {
        tags: ['orders'],
        summary: "Orders, newest first (a trader's own when accountId is absent)",
        security,
        querystring: OrdersQuery,
      },
    },
    async (request) => {
      const principal = principalOf(request);
      const accountId = request.query.accountId ?? (isAdmin(principal) ? undefined : principal.accountId);
      if (accountId !== undefined) assertAccountAccess(request, accountId);
      const page = await readModelsOf(context).orders({ ...request.query, accountId });
      await assertListedAccountExists(context, accountId, page);
      return decimalize(page);
    },
  );

  app.get(
    '/v1/trades',
    {
      ...traders,
      schema: { tags: ['market'], summary: 'The trades tape', security, querystring: TradesQuery },
    },
    async (request) => {
      const principal =
        request.query.accountId === undefined
          ? principalOf(request)
          : assertAccountAccess(request, request.query.accountId);
      const page = await readModelsOf(context).trades(request.query);
      await assertListedAccountExists(context, request.query.accountId, page);
      if (isAdmin(principal)) return decimalize(page);
      return decimalize({ ...page, items: page.items.map((trade) => ownSideOf(trade, principal.accountId)) });
    },
  );

  app.get(
    '/v1/market/:symbol/book',
    {
      ...traders,
      schema: {
        tags: ['market'],
        summary: 'Bids and asks by price level',
        security,
        params: SymbolParams,
        querystring: BookQuery,
      },
    },
    async (request) => {
      const { symbol } = request.params;
      const [book, instrument] = await Promise.all([
        readModelsOf(context).book(symbol, request.query.depth),
        tradedInstrument(context, symbol),
      ]);
      // A book the engine never opened is one of a listed symbol, or none at all.
      if (!book || (book.status === 'NOT_OPEN' && !instrument))
        throw new ApiProblem(404, 'BOOK_NOT_FOUND', `no book for ${symbol}: it is not listed`);
      // The status is B3's: the engine halts and resumes the book itself when an admin asks. The
      // catalogue records the halt first and the broker refuses new orders from then on; until the
      // engine has it too (a moment, or longer while the engine is down) the book says HALTED, with
      // the catalogue's reason. A resume shows once B3 has reopened the book.
      const catalogueHalted = instrument?.status === 'HALTED';
      if (book.status === 'HALTED')
        return decimalize({ ...book, haltReason: book.haltReason ?? instrument?.haltReason ?? null });
      return decimalize({
        ...book,
        ...(catalogueHalted ? { status: 'HALTED', haltReason: instrument.haltReason } : {}),
      });
    },
  );

  app.get(
    '/v1/market/:symbol/quote',
    {
      ...traders,
      schema: {
        tags: ['market'],
        summary: "The latest quote (a fractional ticker answers its instrument's)",
        security,
        params: SymbolParams,
      },
    },
    async (request) => {
      const instrument = await quotedInstrument(context, request.params.symbol);
      const quote = await readModelsOf(context).quote(instrument.symbol);
      if (!quote)
        throw new ApiProblem(404, 'QUOTE_NOT_FOUND', `no quote for ${instrument.symbol} yet: it is listed`);
      return decimalize(quote);
    },
  );

  app.get(
    '/v1/market/:symbol/quotes',
    {
      ...traders,
      schema: {
        tags: ['market'],
        summary: "Quote history, newest first (a fractional ticker reads its instrument's)",
        security,
        params: SymbolParams,
        querystring: QuotesQuery,
      },
    },
    async (request) => {
      const readModels = readModelsOf(context);
      if (!readModels.quotes) throw new ApiProblem(503, 'READ_MODELS_UNAVAILABLE', 'no quote history here');
      const instrument = await quotedInstrument(context, request.params.symbol);
      return decimalize(await readModels.quotes(instrument.symbol, request.query));
    },
  );

  app.get(
    '/v1/market/:symbol/candles',
    {
      ...traders,
      schema: {
        tags: ['market'],
        summary: 'OHLCV candles (default: the last 24 hours)',
        security,
        params: SymbolParams,
        querystring: CandlesQuery,
      },
    },
    async (request) => {
      const to = request.query.to ? new Date(request.query.to) : context.now();
      const from = request.query.from ? new Date(request.query.from) : new Date(to.getTime() - 86_400_000);
      if (from > to)
        throw new ApiProblem(
          400,
          'INVALID_RANGE',
          request.query.to
            ? '"from" must not be after "to"'
            : '"from" must not be in the future (without "to", it ends now)',
        );
      const candles = await readModelsOf(context).candles(
        request.params.symbol,
        request.query.interval,
        from,
        to,
      );
      const answer = Array.isArray(candles) ? { items: candles } : candles;
      if (answer.items.length === 0) await assertTraded(context, request.params.symbol);
      return decimalize(answer);
    },
  );

  app.get(
    '/v1/instruments',
    {
      ...traders,
      schema: {
        tags: ['market'],
        summary: 'The instrument catalogue, by ticker (read model)',
        description:
          'One item per instrument, as GET /v1/instruments/{symbol} answers it (its fractional ticker is its fractionalSymbol), ordered by symbol; status filters OPEN or HALTED.',
        security,
        querystring: InstrumentsQuery,
      },
    },
    async (request) => {
      const { items, nextCursor } = await readModelsOf(context).instruments(request.query);
      return { items: items.map(instrumentAnswer), ...(nextCursor === undefined ? {} : { nextCursor }) };
    },
  );

  app.get(
    '/v1/instruments/:symbol',
    {
      ...traders,
      schema: {
        tags: ['market'],
        summary: 'A catalogue entry',
        description: 'A fractional ticker (PETR4F) answers the instrument it trades (PETR4).',
        security,
        params: SymbolParams,
      },
    },
    async (request) => {
      const instrument = await tradedInstrument(context, request.params.symbol);
      if (!instrument)
        throw new ApiProblem(404, 'INSTRUMENT_NOT_FOUND', `${request.params.symbol} is not listed`);
      return instrumentAnswer(instrument);
    },
  );
}

/**
 * A trade as a trader sees it on the tape: who bought and who sold stays private, but for the
 * trader's own side (its order and account ids).
 */
function ownSideOf(trade: object, accountId: string | undefined): object {
  const { buyOrderId, buyAccountId, sellOrderId, sellAccountId, ...tape } = trade as TradeParties;
  return {
    ...tape,
    ...(buyAccountId === accountId ? { buyOrderId, buyAccountId } : {}),
    ...(sellAccountId === accountId ? { sellOrderId, sellAccountId } : {}),
  };
}

type TradeParties = Record<'buyOrderId' | 'buyAccountId' | 'sellOrderId' | 'sellAccountId', unknown>;
