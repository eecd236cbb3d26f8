import type { IncomingMessage, ServerResponse } from 'node:http';
import type {
  FastifyBaseLogger,
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
  RawServerDefault,
} from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { type Account, accountDecider, accountStreamId } from '../../domain/broker/account/account.ts';
import type { Instrument } from '../../domain/broker/instrument/instrument.ts';
import type { Wallet } from '../../domain/broker/wallet/wallet.ts';
import { type AggregateCache, loadAggregate } from '../../domain/shared/aggregate.ts';
import type { EventStore } from '../../domain/shared/event-store.ts';
import { formatCents } from '../../domain/shared/money.ts';
import { NoAnswer, withTimeout } from '../../projections/deadline.ts';
import { aggregateOf, type CommandMetadata } from '../shared/command-handler.ts';
import type { KeyedLanes } from '../shared/keyed-lanes.ts';
import type { Principal, Session, TokenIssuer } from './auth.ts';
import {
  type CreateRun,
  fingerprintOf,
  IDEMPOTENCY_KEY,
  type StoredAnswer,
  unkeyedRun,
  withIdempotency,
} from './idempotency.ts';
import type { ProjectionsControl, ReadinessCheck, ReadModels } from './ports.ts';
import { ApiProblem } from './problem.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The request chain's id: the caller's `x-correlation-id`, or one generated here. */
    correlationId: string;
    /** The bearer token's account, when a valid token came with the request. */
    principal?: Principal;
    /** When that token was issued and expires (epoch ms): a stream lasts until then, or until revoked. */
    tokenLife?: TokenLife;
    /**
     * A bearer token came that is malformed, forged, expired or revoked, and why (`checkedSession`): the
     * routes that need a caller refuse it (401 INVALID_TOKEN), the public ones (login, register,
     * health) serve as anonymous.
     */
    invalidToken?: string;
  }
}

/**
 * What the admin routes need of the quote feed (services/market-data/feed.ts). Reference prices
 * need nothing of it: the feed takes them from the instrument events, wherever it runs.
 */
export interface MarketDataControl {
  setQuotesEnabled(enabled: boolean): void;
}

export interface ApiDeps {
  /** The broker event store: accounts, wallets, orders, instruments, and the API's own streams. */
  broker: EventStore;
  /** The B3 event store, read by the audit routes. */
  b3: EventStore;
  tokens: TokenIssuer;
  /** The read side; the read routes answer 503 while it is absent. */
  readModels?: ReadModels;
  projections?: ProjectionsControl;
  /**
   * The quote feed, when it runs in this process (`tradecore start`): admins switch quotes off, so
   * tests and demos can be deterministic. Absent: that route answers 503 (the market-data service
   * serves it on its own port).
   */
  marketData?: MarketDataControl;
  /**
   * How long an admin's listing or reference price waits for the market data (in this process or
   * the market-data service) to record the price before answering anyway (default 5,000 ms).
   */
  referencePriceWaitMs?: number;
  /** How long a read waits for its read-model store before answering 503 (READ_MODEL_DEADLINE_MS). */
  readModelDeadlineMs?: number;
  /**
   * The lanes wallet commands take turns in, by wallet stream, shared with the order process when
   * it runs in this process: a deposit waits for a reservation instead of conflicting with it
   * (default: the API's own, so that its own wallet commands take turns at least).
   */
  walletLanes?: KeyedLanes;
  /** Extra dependencies `/health/ready` checks (the event stores are always checked). */
  readiness?: Record<string, ReadinessCheck>;
  /** A pino logger; silent when absent. */
  logger?: FastifyBaseLogger;
  /** Login attempts allowed per client address and window (default 10 a minute). */
  loginRateLimit?: { max: number; timeWindowMs: number };
  /** Largest accepted request body in bytes (default 16 KiB). */
  bodyLimit?: number;
  /** How long a request may take to arrive before `408` (default REQUEST_TIMEOUT_MS, 30 s). */
  requestTimeoutMs?: number;
  now?: () => Date;
}

export type App = FastifyInstance<
  RawServerDefault,
  IncomingMessage,
  ServerResponse,
  FastifyBaseLogger,
  ZodTypeProvider
>;

export interface RouteContext extends ApiDeps {
  now: () => Date;
  walletLanes: KeyedLanes;
  /**
   * Accounts and instruments as this process last loaded them (read on every order), and wallets
   * (a wallet command then folds only the events since, not a long history from the first).
   */
  caches: {
    accounts: AggregateCache<Account>;
    instruments: AggregateCache<Instrument>;
    wallets: AggregateCache<Wallet>;
  };
}

/** Event metadata for a request: its correlation id, the HTTP request id as the cause, the caller as the actor. */
export function metadataOf(
  request: FastifyRequest,
  actor = request.principal?.accountId ?? 'anonymous',
): CommandMetadata {
  return { correlationId: request.correlationId, causationId: `http-${request.id}`, actor };
}

/** What a request keeps of its token: when it was issued and expires, and its count of password changes. */
export type TokenLife = Pick<Session, 'issuedAtMs' | 'expiresAtMs' | 'passwordChanges'>;

/**
 * The token of an `Authorization: Bearer …` header (the scheme is case-insensitive, RFC 9110): ''
 * for the scheme alone or with more than a token after it, undefined with no header or another scheme.
 */
export function bearerTokenOf(request: FastifyRequest): string | undefined {
  const [scheme, token, ...rest] = request.headers.authorization?.trim().split(/\s+/) ?? [];
  if (scheme?.toLowerCase() !== 'bearer') return undefined;
  // Anything after the token is not a token of ours: refused as one, not ignored.
  return rest.length > 0 ? '' : (token ?? '');
}

export function principalOf(request: FastifyRequest): Principal {
  if (request.principal) return request.principal;
  if (request.invalidToken)
    throw new ApiProblem(401, 'INVALID_TOKEN', `the bearer token ${request.invalidToken}`);
  throw unauthenticated(request);
}

/** 401 for a request without a bearer token, saying so of an `Authorization` in another scheme. */
export function unauthenticated(request: FastifyRequest): ApiProblem {
  const header = request.headers.authorization;
  return new ApiProblem(
    401,
    'UNAUTHENTICATED',
    header !== undefined && header.trim() !== '' && bearerTokenOf(request) === undefined
      ? `the Authorization header must be "Bearer <token>" (the token POST /v1/auth/login answers), not "${header.trim().split(/\s+/)[0]!.slice(0, 20)} …"`
      : 'a valid bearer token is required',
  );
}

export const isAdmin = (principal: Principal): boolean => principal.roles.includes('admin');

/** Where accounts are read: the broker store, through a cache of what this process last loaded. */
export interface AccountSource {
  broker: EventStore;
  caches: { accounts: AggregateCache<Account> };
}

/** The account as it is now (from the process's cache, brought up to date). */
export async function accountOf(context: AccountSource, accountId: string): Promise<Account> {
  const { state } = await loadAggregate(
    context.broker,
    accountStreamId(accountId),
    aggregateOf(accountDecider),
    {
      cache: context.caches.accounts,
    },
  );
  return state;
}

/**
 * What a session stands for as `account` has it now: why the account revokes its token, or its
 * principal less the roles the account no longer holds. The REST check and the stream's both ask it.
 */
export function standingOf(
  account: Pick<Account, 'registered' | 'status' | 'passwordChanges' | 'passwordChangedAt' | 'roles'>,
  session: Pick<Session, 'principal' | 'passwordChanges' | 'issuedAtMs'>,
): { revoked: 'account disabled' | 'password changed' } | { principal: Principal } {
  const revoked = revocationOf(account, session);
  if (revoked) return { revoked };
  const { principal } = session;
  const roles = principal.roles.filter((role) => account.roles.includes(role));
  return { principal: roles.length === principal.roles.length ? principal : { ...principal, roles } };
}

/**
 * A bearer token's session as its account has it now, or why it has none, said after "the bearer
 * token" or "the access token": expired, revoked (and by what), or not a token of ours. The account
 * is read on every request, so that a revoked role takes effect at once: a revoked admin cannot act,
 * nor grant itself the role again, and a revoked trader reads nothing more, with the token it still
 * holds; its principal is the token's less the roles the account no longer holds.
 */
export async function checkedSession(
  context: AccountSource & { tokens: TokenIssuer },
  token: string,
): Promise<{ session: Session } | { refusal: string }> {
  const checked = await context.tokens.check(token);
  if (checked === 'expired') return { refusal: 'has expired: log in again' };
  if (checked === 'invalid') return { refusal: 'is malformed or forged: log in again' };
  const standing = standingOf(await accountOf(context, checked.principal.accountId), checked);
  if ('revoked' in standing)
    return {
      refusal: `was revoked (${standing.revoked === 'account disabled' ? 'its account is disabled' : 'its password changed since it was issued'}): log in again`,
    };
  return { session: { ...checked, principal: standing.principal } };
}

/** `checkedSession`'s session, undefined when the token is malformed, forged, expired or revoked. */
export async function verifiedSession(
  context: AccountSource & { tokens: TokenIssuer },
  token: string,
): Promise<Session | undefined> {
  const checked = await checkedSession(context, token);
  return 'session' in checked ? checked.session : undefined;
}

/**
 * Why the account revokes a session's token (its stream closes with this reason): disabled (or
 * never registered), or its password changed since; undefined while the token stands.
 */
function revocationOf(
  account: Pick<Account, 'registered' | 'status' | 'passwordChanges' | 'passwordChangedAt'>,
  session: Pick<Session, 'passwordChanges' | 'issuedAtMs'>,
): 'account disabled' | 'password changed' | undefined {
  if (!account.registered || account.status === 'DISABLED') return 'account disabled';
  if (passwordChangedSince(account, session)) return 'password changed';
  return undefined;
}

/**
 * Whether the account's password changed after the session's token was given: by the count of
 * changes its login was checked against (`pwc`, which every login and change puts in its token),
 * or, for a token without one (signed before `pwc` existed), by its `iat`.
 */
export function passwordChangedSince(
  account: Pick<Account, 'passwordChanges' | 'passwordChangedAt'>,
  session: Pick<Session, 'passwordChanges' | 'issuedAtMs'>,
): boolean {
  if (session.passwordChanges !== undefined) return account.passwordChanges > session.passwordChanges;
  return account.passwordChangedAt !== null && session.issuedAtMs < Date.parse(account.passwordChangedAt);
}

/** A trader reaches its own account only; an admin reaches every account. */
export function assertAccountAccess(request: FastifyRequest, accountId: string): Principal {
  const principal = principalOf(request);
  if (isAdmin(principal)) return principal;
  if (principal.roles.includes('trader') && principal.accountId === accountId) return principal;
  throw new ApiProblem(403, 'NOT_YOUR_ACCOUNT', 'this token does not give access to that account');
}

/**
 * An `onRequest` guard: 401 without a valid token, 403 when the token holds none of the roles.
 * It runs before validation, so that anonymous callers learn nothing from the schema.
 */
export function requireRoles(...roles: Principal['roles']) {
  return async (request: FastifyRequest) => {
    const principal = principalOf(request);
    if (!principal.roles.some((role) => roles.includes(role)))
      throw new ApiProblem(403, 'FORBIDDEN_ROLE', `this route needs one of the roles: ${roles.join(', ')}`);
  };
}

/** An `onRequest` guard for a route any valid token may call: 401 without one, before validation. */
export async function requireToken(request: FastifyRequest): Promise<void> {
  principalOf(request);
}

/** The read models (bounded by their deadline in `buildApi`), or 503 where this process has none. */
export function readModelsOf(context: RouteContext): ReadModels {
  if (!context.readModels)
    throw new ApiProblem(503, 'READ_MODELS_UNAVAILABLE', 'the read models are not available in this process');
  return context.readModels;
}

/**
 * How long a read waits for its read-model store: a store that hangs (a Mongo server out of
 * memory, holding its connections) answers `503 READ_MODELS_UNAVAILABLE` then, instead of holding
 * the request for the driver's 30 s and answering 500.
 */
export const READ_MODEL_DEADLINE_MS = 10_000;

/** `readModels` with every read bounded by `deadlineMs`. */
export function readsWithDeadline(readModels: ReadModels, deadlineMs: number): ReadModels {
  return new Proxy(readModels, {
    get(target, name, receiver) {
      const value = Reflect.get(target, name, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) =>
        withTimeout(Promise.resolve(value.apply(target, args)), deadlineMs).catch((error: unknown) => {
          if (!(error instanceof NoAnswer)) throw error;
          throw new ApiProblem(
            503,
            'READ_MODELS_UNAVAILABLE',
            `a read-model store did not answer within ${deadlineMs / 1000} s; retry later`,
            {},
            { 'retry-after': '5' },
          );
        });
    },
  });
}

/**
 * Answers a create through the idempotency store when the request carries an `Idempotency-Key`,
 * or runs it directly. Replays say so in the `idempotent-replayed: true` header. The work names
 * what it makes through its `CreateRun` (services/api/idempotency.ts), and answers from what an
 * earlier run under the key made, when one crashed.
 */
export async function answerCreate(
  context: RouteContext,
  request: FastifyRequest,
  reply: FastifyReply,
  work: (run: CreateRun) => Promise<StoredAnswer>,
): Promise<FastifyReply> {
  const header = request.headers['idempotency-key'];
  if (header === undefined) return send(reply, await work(unkeyedRun()));
  // Node joins a repeated header into one value ("a, b"), which the key's pattern would refuse
  // without saying why.
  const given = request.raw.rawHeaders.filter(
    (name, index) => index % 2 === 0 && name.toLowerCase() === 'idempotency-key',
  ).length;
  if (given > 1 || Array.isArray(header))
    throw new ApiProblem(
      400,
      'INVALID_IDEMPOTENCY_KEY',
      `Idempotency-Key is given ${Math.max(given, 2)} times: give it once`,
    );
  if (typeof header !== 'string' || !IDEMPOTENCY_KEY.test(header))
    throw new ApiProblem(
      400,
      'INVALID_IDEMPOTENCY_KEY',
      'Idempotency-Key must be 1 to 100 of A–Z, a–z, 0–9, "_", ".", ":", "-"',
    );
  const actor = request.principal?.accountId ?? 'anonymous';
  const answer = await withIdempotency(
    context.broker,
    {
      actor,
      key: header,
      fingerprint: fingerprintOf(
        context.tokens.fingerprintKey,
        request.method,
        request.url.split('?')[0] ?? request.url,
        request.body,
      ),
      metadata: metadataOf(request),
      now: context.now,
    },
    work,
  );
  if (answer.replayed) reply.header('idempotent-replayed', 'true');
  return send(reply, answer);
}

function send(reply: FastifyReply, answer: StoredAnswer): FastifyReply {
  if (answer.location) reply.header('location', answer.location);
  return reply.code(answer.statusCode).send(answer.body);
}

/** Keys of read-model rows that hold cents (converted to decimal strings at this edge). */
const MONEY_KEYS = new Set([
  'amount',
  'price',
  'averagePrice',
  'limitPrice',
  'stopPrice',
  'referencePrice',
  'notional',
  'filledNotional',
  'costBasis',
  'averageCost',
  'unitCost',
  'open',
  'high',
  'low',
  'close',
  'last',
  'lastPrice',
  'bid',
  'ask',
  'bestBid',
  'bestAsk',
  'vwap',
  'turnover',
  'volumeNotional',
  'lastTradePrice',
]);

/**
 * Turns the cents of a read-model answer into decimal strings (`3250` → `"32.50"`), recursively.
 * An amount that is not a whole number of cents within the exact range (which the wallet refuses to
 * create) throws: answering it as a raw, rounded number would show an amount nobody holds.
 */
export function decimalize<T>(value: T): T {
  if (Array.isArray(value)) return value.map(decimalize) as T;
  if (value === null || typeof value !== 'object' || value instanceof Date) return value;
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
    out[key] = MONEY_KEYS.has(key) && typeof item === 'number' ? moneyOf(key, item) : decimalize(item);
  }
  return out as T;
}

function moneyOf(key: string, cents: number): string {
  if (!Number.isSafeInteger(cents))
    throw new RangeError(`${key} is not a whole number of cents within the exact range: ${cents}`);
  return formatCents(cents);
}

/** A wallet row's cash is money, its positions' available/reserved are shares. */
export function walletAnswer(accountId: string, row: object): Record<string, unknown> {
  const cash = ((row as { cash?: unknown }).cash ?? {}) as Record<string, unknown>;
  const money = (value: unknown) => (typeof value === 'number' ? formatCents(value) : value);
  return {
    ...decimalize(row),
    accountId,
    cash: { ...cash, available: money(cash.available ?? 0), reserved: money(cash.reserved ?? 0) },
  };
}
