import type { FastifyBaseLogger, FastifyRequest } from 'fastify';
import { type Account, accountDecider, accountStreamId } from '../../domain/broker/account/account.ts';
import { AccountDisabled, AccountNotFound } from '../../domain/broker/account/errors.ts';
import { InstrumentNotFound } from '../../domain/broker/instrument/errors.ts';
import { instrumentDecider, instrumentStreamId } from '../../domain/broker/instrument/instrument.ts';
import { loadAggregate } from '../../domain/shared/aggregate.ts';
import { RebuildStopped } from '../../projections/projector.ts';
import { cataloguePriceRecorded } from '../market-data/reference-prices.ts';
import { aggregateOf, handleCommand } from '../shared/command-handler.ts';
import { ADMIN_ACCOUNT_ID } from './auth.ts';
import {
  type App,
  answerCreate,
  metadataOf,
  principalOf,
  type RouteContext,
  requireRoles,
} from './context.ts';
import type { ProjectionsControl } from './ports.ts';
import { ApiProblem } from './problem.ts';
import { instrumentAnswer } from './routes-trading.ts';
import {
  AccountParams,
  DisableBody,
  HaltBody,
  InstrumentBody,
  InstrumentParams,
  NoBody,
  ProjectionParams,
  QuotesBody,
  ReferencePriceBody,
  RoleBody,
  RoleParams,
} from './schemas.ts';

const security = [{ bearerAuth: [] }];

/** How long an admin's listing or reference price waits for the market data to record its price. */
export const REFERENCE_PRICE_WAIT_MS = 5_000;

const accountAnswer = (accountId: string, account: Account) => ({
  accountId,
  username: account.username,
  roles: account.roles,
  status: account.status,
});

export function adminRoutes(app: App, context: RouteContext): void {
  const admins = { onRequest: requireRoles('admin') };

  const projections = () => {
    if (!context.projections)
      throw new ApiProblem(
        503,
        'PROJECTIONS_UNAVAILABLE',
        'the projections do not run in this process: the projector service (tradecore serve projector) serves these routes on its own port',
      );
    return context.projections;
  };

  app.get(
    '/v1/admin/projections',
    { ...admins, schema: { tags: ['admin'], summary: 'Projections: status, position, lag', security } },
    async () => ({ projections: await projections().status() }),
  );

  app.post(
    '/v1/admin/projections/:name/rebuild',
    {
      ...admins,
      schema: {
        tags: ['admin'],
        summary: 'Rebuild a projection from the first event (swapped in when caught up)',
        security,
        params: ProjectionParams,
        body: NoBody,
      },
    },
    async (request, reply) => {
      return reply.code(202).send(startRebuild(projections(), request.params.name, request.log));
    },
  );

  const accountCommand = async (
    request: FastifyRequest,
    accountId: string,
    command: Parameters<typeof accountDecider.decide>[0],
  ) => {
    const result = await handleCommand(
      context.broker,
      accountStreamId(accountId),
      accountDecider,
      command,
      metadataOf(request),
    ).catch((error: unknown) => {
      // The account's stream does not know the id it was asked under: the caller does.
      throw error instanceof AccountNotFound ? new AccountNotFound(accountId) : error;
    });
    return accountAnswer(accountId, result.state);
  };

  app.post(
    '/v1/admin/accounts/:id/roles',
    {
      ...admins,
      schema: { tags: ['admin'], summary: 'Grant a role', security, params: AccountParams, body: RoleBody },
    },
    async (request) =>
      accountCommand(request, request.params.id, {
        type: 'GrantRole',
        role: request.body.role,
        grantedBy: principalOf(request).accountId,
        at: context.now().toISOString(),
      }),
  );

  app.delete(
    '/v1/admin/accounts/:id/roles/:role',
    {
      ...admins,
      schema: { tags: ['admin'], summary: 'Revoke a role', security, params: RoleParams, body: NoBody },
    },
    async (request) => {
      const { id: accountId, role } = request.params;
      // Someone must always be able to administer: the built-in admin keeps the role, and an admin
      // leaves it only by another admin's hand.
      if (role === 'admin' && accountId === ADMIN_ACCOUNT_ID)
        throw new ApiProblem(
          409,
          'BUILT_IN_ADMIN',
          'the built-in admin account keeps its admin role: every start makes sure it can administer',
        );
      if (role === 'admin' && accountId === principalOf(request).accountId)
        throw new ApiProblem(
          409,
          'OWN_ACCOUNT',
          'an admin cannot revoke its own admin role: another admin may',
        );
      return accountCommand(request, accountId, {
        type: 'RevokeRole',
        role,
        revokedBy: principalOf(request).accountId,
        at: context.now().toISOString(),
      });
    },
  );

  app.post(
    '/v1/admin/accounts/:id/disable',
    {
      ...admins,
      schema: {
        tags: ['admin'],
        summary: 'Disable an account for good',
        description:
          'Its tokens stop working at once and it can no longer log in, trade or move cash. Its resting orders stay on the book until they fill or expire: cancel them as admin (DELETE /v1/orders/{id}). Again once disabled: 200, nothing changes.',
        security,
        params: AccountParams,
        body: DisableBody,
      },
    },
    async (request) => {
      const accountId = request.params.id;
      if (accountId === ADMIN_ACCOUNT_ID)
        throw new ApiProblem(
          409,
          'BUILT_IN_ADMIN',
          'the built-in admin account cannot be disabled: every start makes sure it can log in',
        );
      if (accountId === principalOf(request).accountId)
        throw new ApiProblem(409, 'OWN_ACCOUNT', 'an admin cannot disable its own account');
      try {
        return await accountCommand(request, accountId, {
          type: 'DisableAccount',
          reason: request.body.reason,
          disabledBy: principalOf(request).accountId,
          at: context.now().toISOString(),
        });
      } catch (error) {
        if (!(error instanceof AccountDisabled)) throw error;
        const { state } = await loadAggregate(
          context.broker,
          accountStreamId(accountId),
          aggregateOf(accountDecider),
        );
        return accountAnswer(accountId, state);
      }
    },
  );

  app.post(
    '/v1/admin/instruments',
    { ...admins, schema: { tags: ['admin'], summary: 'List an instrument', security, body: InstrumentBody } },
    async (request, reply) =>
      answerCreate(context, request, reply, async (run) => {
        const streamId = instrumentStreamId(request.body.symbol);
        // A run after a crash: the instrument as the crashed run listed it (not 409 for its own listing).
        const earlier = await run.earlier('InstrumentListed', streamId);
        if (earlier) {
          const { state } = await loadAggregate(context.broker, streamId, aggregateOf(instrumentDecider), {
            version: earlier.version,
          });
          await priceReachesMarketData(request, state.symbol, [earlier]);
          return { statusCode: 201, body: instrumentAnswer(state) };
        }
        const result = await handleCommand(
          context.broker,
          streamId,
          instrumentDecider,
          { type: 'ListInstrument', ...request.body, at: context.now().toISOString() },
          metadataOf(request),
          { expectedVersion: 'no_stream', newEventId: run.eventIds('InstrumentListed') },
        ).catch((error: unknown) => {
          if ((error as Error).name === 'WrongExpectedVersion')
            throw new ApiProblem(
              409,
              'INSTRUMENT_ALREADY_LISTED',
              `${request.body.symbol} is already listed`,
            );
          throw error;
        });
        // The B3 price band reads the market cache: the listing's price is its first reference,
        // which the market data takes from the listing event, here or in its own process.
        await priceReachesMarketData(request, result.state.symbol, result.events);
        return { statusCode: 201, body: instrumentAnswer(result.state) };
      }),
  );

  /**
   * Waits, within `referencePriceWaitMs`, for the market data to record the price an instrument
   * event sets (see `ReferencePriceFollower`), so that the answer comes once orders can use it.
   * When the market data is down or slow the answer still comes: the event is stored, and the
   * market data records its price when it follows the catalogue again.
   */
  const priceReachesMarketData = async (
    request: FastifyRequest,
    symbol: string,
    events: ReadonlyArray<{ id: string; type: string }>,
  ) => {
    const event = events.find(
      (candidate) => candidate.type === 'InstrumentListed' || candidate.type === 'ReferencePriceUpdated',
    );
    if (!event) return;
    const waitMs = context.referencePriceWaitMs ?? REFERENCE_PRICE_WAIT_MS;
    if (!(await cataloguePriceRecorded(context.b3, symbol, event.id, waitMs)))
      request.log.warn(
        { symbol, event: event.type, waitedMs: waitMs },
        'the market data has not recorded the reference price yet (is the market-data service running?)',
      );
  };

  const instrumentCommand =
    (toCommand: (body: never, at: string) => Parameters<typeof instrumentDecider.decide>[0]) =>
    async (request: { params: { symbol: string }; body: unknown }, metadata: ReturnType<typeof metadataOf>) =>
      (await runInstrumentCommand(toCommand)(request, metadata)).answer;

  const runInstrumentCommand =
    (toCommand: (body: never, at: string) => Parameters<typeof instrumentDecider.decide>[0]) =>
    async (
      request: { params: { symbol: string }; body: unknown },
      metadata: ReturnType<typeof metadataOf>,
    ) => {
      const { symbol } = request.params;
      const result = await handleCommand(
        context.broker,
        instrumentStreamId(symbol),
        instrumentDecider,
        toCommand(request.body as never, context.now().toISOString()),
        metadata,
      ).catch((error: unknown) => {
        // The path names no instrument: not a refused command.
        if (error instanceof InstrumentNotFound)
          throw new ApiProblem(404, 'INSTRUMENT_NOT_FOUND', `${symbol} is not listed`);
        throw error;
      });
      return { answer: instrumentAnswer(result.state), events: result.events };
    };

  const referencePrice = runInstrumentCommand((body: { referencePrice: number }, at) => ({
    type: 'UpdateReferencePrice',
    referencePrice: body.referencePrice,
    at,
  }));
  app.post(
    '/v1/admin/instruments/:symbol/reference-price',
    {
      ...admins,
      schema: {
        tags: ['admin'],
        summary: 'Set the reference price (the price band is around it)',
        security,
        params: InstrumentParams,
        body: ReferencePriceBody,
      },
    },
    async (request) => {
      const { answer, events } = await referencePrice(request, metadataOf(request));
      // The B3 price band reads the market cache: it moves to the price the admin just set.
      await priceReachesMarketData(request, answer.symbol, events);
      return answer;
    },
  );

  app.post(
    '/v1/admin/market/quotes',
    {
      ...admins,
      schema: {
        tags: ['admin'],
        summary: 'Switch the quote feed on or off (reference prices then stay where an admin sets them)',
        security,
        body: QuotesBody,
      },
    },
    async (request) => {
      if (!context.marketData)
        throw new ApiProblem(
          503,
          'MARKET_DATA_UNAVAILABLE',
          'the quote feed does not run in this process: the market-data service (tradecore serve market-data) serves this route on its own port, with the same admin token',
        );
      context.marketData.setQuotesEnabled(request.body.enabled);
      return { enabled: request.body.enabled };
    },
  );

  const halt = instrumentCommand((body: { reason: string }, at) => ({
    type: 'HaltTrading',
    reason: body.reason,
    at,
  }));
  app.post(
    '/v1/admin/instruments/:symbol/halt',
    {
      ...admins,
      schema: {
        tags: ['admin'],
        summary: 'Halt trading',
        security,
        params: InstrumentParams,
        body: HaltBody,
      },
    },
    async (request) => halt(request, metadataOf(request)),
  );

  const resume = instrumentCommand((_body, at) => ({ type: 'ResumeTrading', at }));
  app.post(
    '/v1/admin/instruments/:symbol/resume',
    {
      ...admins,
      schema: {
        tags: ['admin'],
        summary: 'Resume trading',
        security,
        params: InstrumentParams,
        body: NoBody,
      },
    },
    async (request) => resume(request, metadataOf(request)),
  );
}

/** How often a rebuild started over HTTP logs its progress, per read model. */
const REBUILD_LOG_INTERVAL_MS = 5_000;

/**
 * Starts rebuilding read model `name` (or `all`) and says so at once, for a 202: a rebuild takes as
 * long as the history, so its progress goes to the logs and the projections' status. 404 for a
 * name the projections do not know. Where the projections run: the API in `tradecore start`, the
 * projector's own port in connected mode.
 */
export function startRebuild(
  control: Pick<ProjectionsControl, 'projectors' | 'rebuild'>,
  name: string,
  log: FastifyBaseLogger,
): { projection: string; status: 'REBUILDING' } {
  if (control.projectors && name !== 'all' && !control.projectors.has(name))
    throw new ApiProblem(
      404,
      'PROJECTION_NOT_FOUND',
      `no projection ${name} (known: ${[...control.projectors.keys()].join(', ')}, or all)`,
    );
  // A line every few seconds per model, as the CLI prints to a log.
  const logged = new Map<string, number>();
  control
    .rebuild(name, (progress) => {
      const at = performance.now();
      if (at - (logged.get(progress.projection) ?? Number.NEGATIVE_INFINITY) < REBUILD_LOG_INTERVAL_MS)
        return;
      logged.set(progress.projection, at);
      log.info({ projection: progress.projection, progress }, 'rebuild progress');
    })
    .then(() => log.info({ projection: name }, 'rebuild done'))
    .catch((error: unknown) => {
      // Stopped with the server: the projector said so, and the live read model is as it was.
      if (!(error instanceof RebuildStopped)) log.error({ projection: name, err: error }, 'rebuild failed');
    });
  return { projection: name, status: 'REBUILDING' };
}
