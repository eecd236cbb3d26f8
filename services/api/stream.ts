import fastifyWebsocket from '@fastify/websocket';
import { z } from 'zod';
import { TRADED_SYMBOL } from '../../domain/broker/schemas.ts';
import type { EventStore, RecordedEvent, Subscription } from '../../domain/shared/event-store.ts';
import type { Principal } from './auth.ts';
import {
  type App,
  accountOf,
  bearerTokenOf,
  checkedSession,
  decimalize,
  isAdmin,
  passwordChangedSince,
  principalOf,
  type RouteContext,
  standingOf,
  type TokenLife,
} from './context.ts';
import { ApiProblem } from './problem.ts';
import { isTraded } from './routes-trading.ts';
import { Ticker } from './schemas.ts';

/**
 * Live updates over WebSocket, `GET /v1/stream?symbols=PETR4,VALE3` (token in `Authorization:
 * Bearer …` or, for browsers, `?access_token=`): each symbol's trades and book changes, and the
 * caller's own order updates. Messages are JSON: `{channel: 'trade' | 'book' | 'order', …}`.
 * Both event stores are followed from their head once, and fanned out to every socket; where this
 * process runs the projections, a message goes out once the read model behind it (the tape, the
 * book depth, the orders) has its event, so a read after it shows it.
 */
const ENDED = new Set(['OrderFilled', 'OrderRejected', 'OrderCanceled', 'OrderExpired']);

/** The longest a message waits for the read model behind it (see `StreamHub.readable`). */
const READ_MODEL_WAIT_MS = 2_000;

/**
 * The most a stream's socket may hold that its client has not taken yet (bytes, 1 MiB): past it the
 * client has fallen behind (paused, or slower than its symbols' traffic), and its stream is closed
 * rather than held in the server's memory without end.
 */
export const STREAM_BUFFER_LIMIT_BYTES = 1024 * 1024;

/** RFC 6455 close code 1013, Try Again Later: the client fell behind; it may reconnect and read faster. */
const TRY_AGAIN_LATER = 1013;

/** What the hub needs of a `ws` socket. */
interface Socket {
  readonly readyState: number;
  /** Bytes sent and not yet taken by the client (queued in the process, not the kernel's buffer). */
  readonly bufferedAmount: number;
  send(text: string): void;
  close(code?: number, reason?: string): void;
  on(event: 'close', listener: () => void): unknown;
}

interface Client {
  socket: Socket;
  /** The token's, less the roles revoked since the stream opened. */
  principal: Principal;
  symbols: Set<string>;
  /** The token the stream was opened with: when it expires, and what a password change revokes. */
  token: TokenLife;
  expiry?: NodeJS.Timeout;
}

/** RFC 6455 close code: the stream may no longer be read (token expired or revoked, role revoked). */
const POLICY_VIOLATION = 1008;

/** The longest `setTimeout` takes; a token that lives longer is checked again then. */
const LONGEST_TIMER_MS = 2 ** 31 - 1;

/** Tickers separated by commas, empty items skipped: the pattern the OpenAPI document states. */
const TICKER = TRADED_SYMBOL.source.slice(1, -1);
const TICKER_LIST = `^(?:${TICKER})?(?:,(?:${TICKER})?)*$`;

export const StreamQuery = z.strictObject({
  symbols: z
    .string()
    .max(500)
    .describe('comma-separated tickers (PETR4,VALE3): their trades and book changes')
    // Checked below, one ticker at a time, so that the error names the one that is wrong.
    .meta({ pattern: TICKER_LIST })
    .optional()
    .transform((text, context) => {
      const symbols = (text ?? '').split(',').filter((symbol) => symbol !== '');
      for (const symbol of symbols)
        if (!Ticker.safeParse(symbol).success)
          context.addIssue({ code: 'custom', message: `${symbol} is not a B3 ticker` });
      // Each once: `PETR4,PETR4` asks for one subscription, and hello says so.
      return [...new Set(symbols)];
    }),
  access_token: z
    .string()
    .max(4000)
    .describe('the bearer token, where a browser cannot set `Authorization`')
    .optional(),
});

class StreamHub {
  private readonly clients = new Set<Client>();
  /** Started by the first stream; every stream opened meanwhile waits for the same start. */
  private started?: Promise<Subscription[]>;
  /** Which account an order belongs to, learned from OrderPlaced (or its stream, for older orders). */
  private readonly owners = new Map<string, string>();
  /**
   * The read models waited for in vain (READ_MODEL_WAIT_MS), with the position of the last message
   * sent without them: messages wait for such a model no more until it has applied that position.
   */
  private readonly lagging = new Map<string, number>();
  /** The order messages in the order of their events; account events do not queue behind them. */
  private orderMessages: Promise<void> = Promise.resolve();

  constructor(private readonly context: RouteContext) {}

  /** How many streams the account has open. */
  streamsOf(accountId: string): number {
    let open = 0;
    for (const client of this.clients) if (client.principal.accountId === accountId) open += 1;
    return open;
  }

  /** Adds a stream whose token was verified; false when it was revoked meanwhile (it is closed then). */
  async add(client: Client): Promise<boolean> {
    this.started ??= this.start().catch((error: unknown) => {
      this.started = undefined;
      throw error;
    });
    await this.started;
    this.clients.add(client);
    this.closeOnExpiry(client);
    client.socket.on('close', () => {
      clearTimeout(client.expiry);
      this.clients.delete(client);
    });
    // The token was checked before the symbols' look-ups and the hub's start: an account event
    // appended meanwhile found no client to close (or came before the hub's first position).
    // From here on the hub hears every account event for this client, so one more look closes the gap.
    await this.endIfRevoked(client);
    return this.clients.has(client);
  }

  /** Ends a stream its account no longer allows, as a REST call with its token would be refused. */
  private async endIfRevoked(client: Client): Promise<void> {
    const account = await accountOf(this.context, client.principal.accountId);
    if (!this.clients.has(client)) return;
    const standing = standingOf(account, { ...client.token, principal: client.principal });
    if ('revoked' in standing) return this.end(client, standing.revoked);
    client.principal = standing.principal;
    if (!standing.principal.roles.some((role) => STREAM_ROLES.has(role))) this.end(client, 'role revoked');
  }

  private async start(): Promise<Subscription[]> {
    const follow = async (store: EventStore, onEvent: (event: RecordedEvent) => Promise<void> | void) =>
      store.subscribeToAll({
        after: await store.headPosition(),
        onEvent: async (event) => {
          if (this.clients.size > 0) await onEvent(event);
        },
      });
    return [
      await follow(this.context.b3, (event) => this.onB3(event)),
      await follow(this.context.broker, (event) => this.onBroker(event)),
    ];
  }

  async stop(): Promise<void> {
    const subscriptions = (await this.started?.catch(() => undefined)) ?? [];
    await Promise.all(subscriptions.map((subscription) => subscription.stop()));
    for (const client of this.clients) {
      clearTimeout(client.expiry);
      client.socket.close(GOING_AWAY, 'server shutting down');
    }
    this.clients.clear();
  }

  /** A stream lasts as long as its token: past that, it is closed as a REST call would be refused. */
  private closeOnExpiry(client: Client): void {
    const left = client.token.expiresAtMs - this.context.now().getTime();
    if (left <= 0) this.end(client, 'token expired');
    else client.expiry = setTimeout(() => this.closeOnExpiry(client), Math.min(left, LONGEST_TIMER_MS));
  }

  private end(client: Client, reason: string): void {
    clearTimeout(client.expiry);
    this.clients.delete(client);
    client.socket.close(POLICY_VIOLATION, reason);
  }

  /**
   * A disabled account's streams close, and those whose token a password change revoked; so do
   * those a revoked role opened (an admin's sees less).
   */
  private onAccount(event: RecordedEvent): void {
    const accountId = event.streamId.slice('account-'.length);
    if (event.type === 'PasswordChanged') void this.endRevokedByPasswordChange(accountId);
    for (const client of this.clients) {
      if (client.principal.accountId !== accountId) continue;
      if (event.type === 'AccountDisabled') this.end(client, 'account disabled');
      else if (event.type === 'RoleRevoked') {
        const revoked = (event.data as { role: string }).role;
        const roles = client.principal.roles.filter((role) => role !== revoked);
        client.principal = { ...client.principal, roles };
        if (!roles.some((role) => STREAM_ROLES.has(role))) this.end(client, 'role revoked');
      }
    }
  }

  /** Ends the account's streams whose token its password changes have revoked (`passwordChangedSince`). */
  private async endRevokedByPasswordChange(accountId: string): Promise<void> {
    const account = await accountOf(this.context, accountId).catch(() => undefined);
    if (!account) return;
    for (const client of this.clients)
      if (client.principal.accountId === accountId && passwordChangedSince(account, client.token))
        this.end(client, 'password changed');
  }

  private send(filter: (client: Client) => boolean, message: object): void {
    const text = JSON.stringify(decimalize(message));
    for (const client of this.clients) {
      if (client.socket.readyState !== 1 || !filter(client)) continue;
      if (client.socket.bufferedAmount > STREAM_BUFFER_LIMIT_BYTES) this.cutOff(client);
      else client.socket.send(text);
    }
  }

  /**
   * Closes a stream whose client does not take its messages (STREAM_BUFFER_LIMIT_BYTES): the close
   * frame follows what it has not read, and ws cuts the connection if the close is not answered
   * within 30 s. The client's doing, so an info line, once.
   */
  private cutOff(client: Client): void {
    clearTimeout(client.expiry);
    this.clients.delete(client);
    this.context.logger?.info(
      { accountId: client.principal.accountId, bufferedBytes: client.socket.bufferedAmount },
      'stream closed: its client fell behind',
    );
    client.socket.close(TRY_AGAIN_LATER, 'fell behind: the client did not read its messages in time');
  }

  /**
   * Waits until read model `projection` includes `event` (where this process projects it), so a
   * client that reads after a message sees what the message said. Bounded per read model, not per
   * message: one that has not caught up within READ_MODEL_WAIT_MS is not waited for again until it
   * has applied every event sent meanwhile, so a stuck model costs the stream one wait, not one a message.
   */
  private async readable(projection: string, event: RecordedEvent): Promise<void> {
    const applied = this.context.projections?.applied?.(projection, event.position);
    if (!applied) {
      // Applied already (so every earlier event too), or projected elsewhere: no timer on the common path.
      this.lagging.delete(projection);
      return;
    }
    if (this.lagging.has(projection)) return this.behind(projection, event.position, applied);
    let timer: NodeJS.Timeout | undefined;
    const caughtUp = await Promise.race([
      applied.then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), READ_MODEL_WAIT_MS);
      }),
    ]);
    clearTimeout(timer);
    if (!caughtUp) this.behind(projection, event.position, applied);
  }

  /** `projection` lags: messages stop waiting for it until it has applied `position` (`applied`). */
  private behind(projection: string, position: number, applied: Promise<void>): void {
    this.lagging.set(projection, position);
    void applied.then(() => {
      if (this.lagging.get(projection) === position) this.lagging.delete(projection);
    });
  }

  private async onB3(event: RecordedEvent): Promise<void> {
    const data = event.data as Record<string, unknown>;
    if (event.type === 'TradeExecuted') {
      const symbol = String(data.symbol);
      await this.readable('trades', event);
      this.send((client) => client.symbols.has(symbol), {
        channel: 'trade',
        symbol,
        ...pick(data, ['tradeId', 'price', 'quantity', 'aggressorSide']),
        // B3's events keep epoch milliseconds; the API speaks ISO instants.
        at: new Date(Number(data.at)).toISOString(),
      });
    } else if (event.streamId.startsWith('book-')) {
      const symbol = event.streamId.slice('book-'.length);
      await this.readable('book_depth', event);
      // A halt says why: an admin's halt reaches each of the instrument's books (standard and
      // fractional) with the admin's reason, so its subscribers hear it once, from the book.
      this.send((client) => client.symbols.has(symbol), {
        channel: 'book',
        symbol,
        event: event.type,
        sequence: data.sequence,
        ...(event.type === 'TradingHalted' && data.reason !== undefined ? { reason: data.reason } : {}),
      });
    }
  }

  /**
   * An account event takes effect at once; an order's message is queued behind the earlier ones,
   * which may be waiting for the orders read model: a disable or a password change never waits for it.
   */
  private onBroker(event: RecordedEvent): void {
    if (event.streamId.startsWith('account-')) this.onAccount(event);
    if (!event.streamId.startsWith('order-')) return;
    this.orderMessages = this.orderMessages
      .then(() => this.onOrder(event))
      .catch((error: unknown) =>
        this.context.logger?.error({ err: error }, 'stream: an order message failed'),
      );
  }

  private async onOrder(event: RecordedEvent): Promise<void> {
    const data = event.data as Record<string, unknown>;
    const orderId = String(data.orderId ?? event.streamId.slice('order-'.length));
    if (event.type === 'OrderPlaced') this.owners.set(orderId, String(data.accountId));
    let owner = this.owners.get(orderId);
    if (owner === undefined) {
      const [placed] = await this.context.broker.readStream(event.streamId, { limit: 1 });
      owner = String((placed?.data as { accountId?: unknown } | undefined)?.accountId ?? '');
      this.owners.set(orderId, owner);
    }
    // An order that ended has no more updates: its owner need not be remembered.
    if (ENDED.has(event.type)) this.owners.delete(orderId);
    const { orderId: _, ...rest } = data;
    await this.readable('orders', event);
    this.send((client) => client.principal.accountId === owner || isAdmin(client.principal), {
      channel: 'order',
      orderId,
      accountId: owner,
      event: event.type,
      ...rest,
    });
  }
}

function pick(data: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(keys.filter((key) => key in data).map((key) => [key, data[key]]));
}

/**
 * Registers @fastify/websocket. Call it before adding any hook that can refuse a request: the
 * plugin's onRequest hook marks an upgrade request, and its onResponse hook destroys the socket of
 * an upgrade that got an answer instead (401, 403, 400). A hook that throws before that mark (a
 * forged bearer token) leaves the socket open in CLOSE-WAIT, holding `app.close()` for good.
 */
export async function websocketSupport(app: App): Promise<void> {
  // Ahead of the plugin's own preClose, which closes every socket without a code (1005): a client
  // is told the server is going away (1001), and why.
  app.addHook('preClose', async () => {
    for (const socket of app.websocketServer?.clients ?? []) socket.close(GOING_AWAY, 'server shutting down');
  });
  await app.register(fastifyWebsocket, {
    options: { maxPayload: 4096 },
    // What a client did wrong (a frame over 4 KiB, bad framing, a reset) ends its stream; nothing
    // failed here, so it is no error line. For a bad frame ws has begun the close with its code
    // (1009 for the size) and drops what else the client sends: the close frame goes out after the
    // messages still queued, and ws cuts the connection if the client does not answer within 30 s.
    // Terminating here instead would discard that queue, close frame included: the client saw 1006.
    errorHandler: (error, socket, request) => {
      const code = (error as { code?: string }).code ?? '';
      const badFrame = code.startsWith('WS_ERR_');
      if (badFrame || code === 'ECONNRESET' || code === 'EPIPE')
        request.log.info({ code, detail: error.message }, 'stream ended by the client');
      else request.log.error({ err: error }, 'stream failed');
      if (!badFrame) socket.terminate();
    },
  });
}

/** RFC 6455 close code: the server is going down. */
const GOING_AWAY = 1001;

/** The roles that may open a stream. */
const STREAM_ROLES = new Set(['trader', 'admin']);

/** Streams one account may hold open at once: each costs the server memory and a share of every message. */
export const MAX_STREAMS_PER_ACCOUNT = 64;

/** `GET /v1/stream`; needs `websocketSupport` registered first. */
export async function streamRoutes(app: App, context: RouteContext): Promise<void> {
  const hub = new StreamHub(context);
  app.addHook('onClose', async () => hub.stop());

  app.get(
    '/v1/stream',
    {
      websocket: true,
      schema: {
        tags: ['market'],
        summary: "Live updates (WebSocket): each symbol's trades and book changes, the caller's own orders",
        querystring: StreamQuery,
      },
      // The stream lasts until its token expires (`tokenLife`).
      preValidation: async (request) => {
        const queryToken = (request.query as { access_token?: unknown }).access_token;
        const headerToken = bearerTokenOf(request);
        if (queryToken !== undefined && headerToken !== undefined)
          throw new ApiProblem(400, 'VALIDATION_FAILED', 'the token is given twice', {
            errors: [
              {
                field: 'querystring.access_token',
                message: 'give the token in `Authorization` or as `access_token`, not both',
              },
            ],
          });
        // A bearer token was verified with the request (onRequest); an access token is verified here.
        if (typeof queryToken === 'string') {
          const checked = await checkedSession(context, queryToken);
          if ('refusal' in checked)
            throw new ApiProblem(401, 'INVALID_TOKEN', `the access token ${checked.refusal}`);
          request.principal = checked.session.principal;
          request.tokenLife = checked.session;
        }
        if (!principalOf(request).roles.some((role) => STREAM_ROLES.has(role)))
          throw new ApiProblem(403, 'FORBIDDEN_ROLE', 'this route needs one of the roles: trader, admin');
      },
      // A symbol nobody trades would never send a message: refused, naming it (after validation,
      // which refuses what is not a ticker at all).
      preHandler: async (request, reply) => {
        if (hub.streamsOf(principalOf(request).accountId) >= MAX_STREAMS_PER_ACCOUNT)
          throw new ApiProblem(
            429,
            'TOO_MANY_STREAMS',
            `this account has ${MAX_STREAMS_PER_ACCOUNT} streams open, the most it may: close one first`,
          );
        const { symbols } = request.query as z.output<typeof StreamQuery>;
        for (const symbol of symbols)
          if (!(await isTraded(context, symbol)))
            throw new ApiProblem(400, 'INSTRUMENT_NOT_FOUND', `${symbol} is not listed`, {
              errors: [{ field: 'querystring.symbols', message: `${symbol} is not listed` }],
            });
        // A plain GET of a valid request: the plugin would answer an empty 404 (the route has no
        // HTTP handler). It is the right route asked the wrong way, so 426 says what it takes
        // (RFC 9110: with the protocol to upgrade to in `Upgrade`).
        if (!request.ws) {
          reply.header('upgrade', 'websocket').header('connection', 'Upgrade');
          throw new ApiProblem(
            426,
            'UPGRADE_REQUIRED',
            'this is a WebSocket: send the request with `Connection: Upgrade`, `Upgrade: websocket`, `Sec-WebSocket-Version: 13` and a `Sec-WebSocket-Key` (any WebSocket client does)',
          );
        }
      },
    },
    async (socket, request) => {
      const query = request.query as z.output<typeof StreamQuery>;
      const added = await hub.add({
        socket,
        principal: request.principal!,
        symbols: new Set(query.symbols),
        token: request.tokenLife!,
      });
      if (!added) return;
      socket.send(
        JSON.stringify({ channel: 'hello', symbols: query.symbols, accountId: request.principal!.accountId }),
      );
    },
  );
}
