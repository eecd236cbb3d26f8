/**
 * The replay, projections and audit commands of the `tradecore` CLI. Results go to stdout (text,
 * or JSON with `--json`), progress and errors to stderr; a bad argument is a `UsageError` naming
 * it (exit 2), a well-formed request that cannot be answered a `CommandFailed` (exit 1).
 */
import type { RebuildProgress } from '../../projections/projector.ts';
import { checkAuditTraceCursor } from '../../projections/read-models/audit-trace.ts';
import {
  b3AuditProjection,
  brokerAuditProjection,
  readModelProjections,
} from '../../projections/read-models/index.ts';
import {
  type AuditEntry,
  createReadModels,
  InvalidCursor,
  MAX_PAGE,
  storeFor,
} from '../../projections/read-models/queries.ts';
import {
  type AuditStateDefinition,
  auditStateAt,
  auditStateOf,
  B3_STREAM_PREFIXES,
  redactSecrets,
  stateNotSupported,
} from '../api/audit-state.ts';
import { auditEvent, traceEvent } from '../api/routes-audit.ts';
import { AUDIT_STREAM_DEFAULT_LIMIT, AUDIT_STREAM_MAX_LIMIT, Instant } from '../api/schemas.ts';
import type { Config } from '../shared/config.ts';
import { lockEmbeddedDataFolder } from '../shared/data-lock.ts';
import { connectEventStores, type EventStores } from '../shared/event-stores.ts';
import {
  connectReadModelStores,
  type ProjectionRegistry,
  type ReadModelStores,
  startProjections,
  UnknownProjection,
} from '../shared/read-models.ts';
import { type ProgressOutput, progressRenderer } from './progress.ts';

export class UsageError extends Error {
  override readonly name = 'UsageError';
}
export class CommandFailed extends Error {
  override readonly name = 'CommandFailed';
}

/**
 * The command was stopped by SIGINT or SIGTERM (the abort reason of `CommandIo.signal`); the
 * message says what that left as it was.
 */
export class Interrupted extends Error {
  override readonly name = 'Interrupted';
  constructor(
    readonly signal: NodeJS.Signals,
    message = 'interrupted',
  ) {
    super(message);
  }
}

export interface CommandIo {
  out: (line: string) => void;
  err: ProgressOutput;
  json: boolean;
  /** Aborted (with an `Interrupted`) to stop the work at its next step; the stores are closed after. */
  signal?: AbortSignal;
}

/**
 * Runs `work` holding the data folder's lock when the command opens anything embedded in it, so
 * that it never opens PGlite under a running `tradecore start` (services/shared/data-lock.ts).
 */
export async function holdingDataFolder<T>(
  config: Config,
  opens: { eventStores?: boolean; readModels?: boolean },
  { err, signal }: CommandIo,
  work: () => Promise<T>,
): Promise<T> {
  signal?.throwIfAborted();
  const lock = await lockEmbeddedDataFolder(config, opens, {
    // These commands read what `start` made: a folder without it is a mistyped one, not a new one.
    create: false,
    log: (line) => err.write(`tradecore: ${line}\n`),
  });
  // Opening PGlite's databases takes seconds: at a terminal, say what the wait is.
  if (lock && err.isTTY) err.write(`tradecore: opening the data folder ${config.dataDir}…\n`);
  try {
    signal?.throwIfAborted();
    return await work();
  } finally {
    await lock?.release();
  }
}

/** `work` on the event stores, opened under the data folder's lock and closed after. */
async function withEventStores<T>(
  config: Config,
  io: CommandIo,
  work: (eventStores: EventStores) => Promise<T>,
): Promise<T> {
  return holdingDataFolder(config, { eventStores: true }, io, async () => {
    const eventStores = await connectEventStores(config);
    try {
      // Opening takes seconds: a signal meanwhile stops the command before any work.
      io.signal?.throwIfAborted();
      return await work(eventStores);
    } finally {
      await eventStores.close();
    }
  });
}

/** `work` on the event stores and the read-model stores, opened under the lock and closed after. */
async function withStores<T>(
  config: Config,
  io: CommandIo,
  work: (eventStores: EventStores, readModelStores: ReadModelStores) => Promise<T>,
): Promise<T> {
  return holdingDataFolder(config, { eventStores: true, readModels: true }, io, async () => {
    const eventStores = await connectEventStores(config);
    try {
      const readModelStores = await connectReadModelStores(config);
      try {
        io.signal?.throwIfAborted();
        return await work(eventStores, readModelStores);
      } finally {
        await readModelStores.close();
      }
    } finally {
      await eventStores.close();
    }
  });
}

async function withProjections<T>(
  config: Config,
  io: CommandIo,
  work: (registry: ProjectionRegistry, eventStores: EventStores) => Promise<T>,
): Promise<T> {
  return withStores(config, io, async (eventStores, readModelStores) => {
    const registry = await startProjections({ eventStores, readModelStores, follow: false });
    try {
      return await work(registry, eventStores);
    } finally {
      await registry.stop();
    }
  });
}

/** `tradecore replay` and `tradecore projections rebuild <name|all>`. */
export async function rebuild(config: Config, name: string | undefined, io: CommandIo): Promise<void> {
  if (!name) throw new UsageError('projections rebuild needs a read model name, or all');
  // Named before the data folder's lock is taken: a typo is a usage error even while it is held.
  const known = readModelProjections.map((projection) => projection.name);
  if (name !== 'all' && !known.includes(name))
    throw new UsageError(new UnknownProjection(name, known).message);
  const results: Array<{ projection: string; events: number; seconds: number; eventsPerSecond: number }> = [];
  const rebuilding = withProjections(config, io, async (registry) => {
    const renderer = progressRenderer(io.err);
    let started = performance.now();
    let last: RebuildProgress | undefined;
    const finish = () => {
      if (!last) return;
      const seconds = (performance.now() - started) / 1000;
      renderer.done(last, seconds);
      const result = {
        projection: last.projection,
        events: last.events,
        seconds,
        eventsPerSecond: seconds > 0 ? last.events / seconds : 0,
      };
      results.push(result);
      // Said as each one is swapped in: a rebuild stopped later keeps it, and so does its output.
      if (!io.json)
        io.out(
          `rebuilt ${result.projection}: ${result.events} events in ${result.seconds.toFixed(2)} s (${Math.round(result.eventsPerSecond)} events/s)`,
        );
      last = undefined;
      started = performance.now();
    };
    const names = name === 'all' ? [...registry.projectors.keys()] : [name];
    for (const projection of names) {
      await registry.rebuild(
        projection,
        (progress) => {
          last = progress;
          renderer.update(progress);
        },
        io.signal,
      );
      finish();
    }
    if (io.json) io.out(JSON.stringify({ rebuilt: results }));
  });
  try {
    await rebuilding;
  } catch (error) {
    // Stopped while opening, or a rebuild abandoned before its swap: that one keeps its live tables.
    if (!(error instanceof Interrupted)) throw error;
    if (io.json) io.out(JSON.stringify({ rebuilt: results, interrupted: true }));
    throw new Interrupted(error.signal, interruptedRebuild(results));
  }
}

/** What a rebuild stopped by a signal leaves: the read models already swapped in, the rest as they were. */
function interruptedRebuild(rebuilt: Array<{ projection: string }>): string {
  if (rebuilt.length === 0) return 'interrupted: the live read models are unchanged';
  const names = rebuilt.map((result) => result.projection).join(', ');
  return `interrupted: ${names} rebuilt and swapped in; the other live read models are unchanged`;
}

/**
 * A read model as `projections status` shows it: its checkpoint in its store, its event store's
 * head and how far behind it the checkpoint is. No runtime state (`running`, `failed`, …): the CLI
 * runs no projector, and whether one runs elsewhere is that process's to say (the projector's
 * port, or `tradecore start`'s API: `GET /v1/admin/projections`).
 */
export interface ReadModelPosition {
  projection: string;
  store: string;
  checkpoint: number;
  head: number;
  lagPositions: number;
  behind: boolean;
}

/** `tradecore projections status`: every read model's position, read from the stores. */
export async function status(config: Config, io: CommandIo): Promise<ReadModelPosition[]> {
  return withStores(config, io, async (eventStores, readModelStores) => {
    const positions = await Promise.all(
      readModelProjections.map(async (projection): Promise<ReadModelPosition> => {
        const store = storeFor(readModelStores, projection);
        const [checkpoint, head] = await Promise.all([
          store.checkpoint(projection.name, 'live'),
          eventStores[projection.source].headPosition(),
        ]);
        const lagPositions = Math.max(0, head - checkpoint);
        return {
          projection: projection.name,
          store: store.kind,
          checkpoint,
          head,
          lagPositions,
          behind: lagPositions > 0,
        };
      }),
    );
    if (io.json) io.out(JSON.stringify({ projections: positions }));
    else {
      const rows = positions.map((p) => [
        p.projection,
        p.store,
        String(p.checkpoint),
        String(p.head),
        String(p.lagPositions),
        p.behind ? 'yes' : 'no',
      ]);
      table(io, ['projection', 'store', 'checkpoint', 'head', 'lag', 'behind'], rows);
    }
    return positions;
  });
}

// The API's streams too (usernames, idempotency keys): their audit shows what they hold, fingerprints redacted.
const brokerPrefixes = ['account-', 'wallet-', 'order-', 'instrument-', 'username-', 'idempotency-'];

/** The store of a stream with a known prefix (the HTTP API's `auditStoreOf`); a usage error otherwise. */
function storeOf(streamId: string): 'broker' | 'b3' {
  if (brokerPrefixes.some((prefix) => streamId.startsWith(prefix))) return 'broker';
  if (B3_STREAM_PREFIXES.some((prefix) => streamId.startsWith(prefix))) return 'b3';
  throw new UsageError(
    `stream "${streamId}" has no known prefix (${[...brokerPrefixes, ...B3_STREAM_PREFIXES].join(', ')})`,
  );
}

/** `tradecore audit stream <stream> [--from N] [--limit N]`. */
export async function auditStream(
  config: Config,
  streamId: string | undefined,
  options: { from?: string; limit?: string },
  io: CommandIo,
): Promise<void> {
  if (!streamId) throw new UsageError('audit stream needs a stream id, such as order-123 or book-PETR4');
  const store = storeOf(streamId);
  const from = integerOption('--from', options.from, 0) ?? 0;
  const limit =
    integerOption('--limit', options.limit, 1, AUDIT_STREAM_MAX_LIMIT) ?? AUDIT_STREAM_DEFAULT_LIMIT;
  await withEventStores(config, io, async (eventStores) => {
    // One more than asked: whether there is more to read, as the HTTP route tells it (`nextFrom`).
    const read = await eventStores[store].readStream(streamId, { fromVersion: from, limit: limit + 1 });
    const events = read.slice(0, limit);
    const last = events.at(-1);
    const nextFrom = read.length > events.length && last ? last.version + 1 : undefined;
    if (events.length === 0) {
      const last = await eventStores[store].streamVersion(streamId);
      if (last < 0) throw new CommandFailed(`stream ${streamId} has no events in the ${store} event store`);
      // Past its end: nothing to print, but not nothing to say.
      if (!io.json)
        io.err.write(`tradecore: ${streamId} has versions 0 to ${last}: none from version ${from}\n`);
    }
    if (io.json)
      io.out(
        JSON.stringify({
          streamId,
          store,
          events: events.map((event) => auditEvent(event)),
          ...(nextFrom !== undefined ? { nextFrom } : {}),
        }),
      );
    else {
      for (const event of events)
        io.out(
          `${event.version}\t${event.position}\t${event.recordedAt.toISOString()}\t${event.type}\tcorrelation=${event.metadata.correlationId} causation=${event.metadata.causationId} actor=${event.metadata.actor}\t${JSON.stringify(redactSecrets(event.data))}`,
        );
      if (nextFrom !== undefined) io.err.write(`more: --from ${nextFrom}\n`);
    }
  });
}

/** The state a stream's events fold into, chosen by the stream's prefix. */
export function stateDefinitionOf(streamId: string): AuditStateDefinition {
  const definition = auditStateOf(streamId);
  if (!definition) throw new UsageError(stateNotSupported(streamId));
  return definition;
}

/** `tradecore audit state <stream> [--version N | --at ISO]`: neither is the state now. */
export async function auditState(
  config: Config,
  streamId: string | undefined,
  options: { version?: string; at?: string },
  io: CommandIo,
): Promise<void> {
  if (!streamId) throw new UsageError('audit state needs a stream id, such as wallet-123');
  if (options.version !== undefined && options.at !== undefined)
    throw new UsageError('audit state takes one of --version N or --at ISO-8601-instant, not both');
  const version = integerOption('--version', options.version, 0);
  let at: Date | undefined;
  if (options.at !== undefined) {
    // As the API takes it: with its time zone, never read in this machine's own.
    const parsed = Instant.safeParse(options.at);
    if (!parsed.success)
      throw new UsageError(
        `--at ${parsed.error.issues[0]?.message ?? 'is not an instant'}, got "${options.at}"`,
      );
    at = new Date(parsed.data);
  }
  const definition = stateDefinitionOf(streamId);
  const store = storeOf(streamId);
  await withEventStores(config, io, async (eventStores) => {
    const current = await eventStores[store].streamVersion(streamId);
    if (current < 0) throw new CommandFailed(`stream ${streamId} has no events in the ${store} event store`);
    if (version !== undefined && version > current)
      throw new CommandFailed(
        `--version ${version} is beyond stream ${streamId}, whose last version is ${current}`,
      );
    // From the latest snapshot at or below the version (or instant), then the events after it.
    const loaded = await auditStateAt(eventStores[store], streamId, definition, { version, at, current });
    const state = redactSecrets(loaded.state);
    if (loaded.version < 0)
      throw new CommandFailed(`stream ${streamId} had no events at ${at?.toISOString()}`);
    const result = {
      streamId,
      version: loaded.version,
      currentVersion: current,
      ...(loaded.fromSnapshot !== undefined ? { fromSnapshot: loaded.fromSnapshot } : {}),
      // The instant as the route answers it: in UTC, whatever zone it was given in.
      ...(at !== undefined ? { at: at.toISOString() } : {}),
      state,
    };
    if (io.json) io.out(JSON.stringify(result));
    else {
      io.out(
        `${streamId} at version ${loaded.version} of ${current}${loaded.fromSnapshot !== undefined ? ` (from the snapshot at version ${loaded.fromSnapshot})` : ''}`,
      );
      const rows = flatten(state);
      const width = Math.max(0, ...rows.map(([path]) => path.length));
      for (const [path, value] of rows) io.out(`  ${path.padEnd(width)}  ${value}`.trimEnd());
    }
  });
}

/**
 * `tradecore audit trace <correlationId> [--limit N] [--cursor C]`: brings the audit timeline up
 * to date, then reads it — the whole trace, or one page with `--limit`/`--cursor`.
 */
export async function auditTrace(
  config: Config,
  correlationId: string | undefined,
  options: { limit?: string; cursor?: string },
  io: CommandIo,
): Promise<void> {
  if (!correlationId) throw new UsageError('audit trace needs a correlation id');
  const limit = integerOption('--limit', options.limit, 1, MAX_PAGE);
  const paged = limit !== undefined || options.cursor !== undefined;
  if (options.cursor !== undefined && !checkAuditTraceCursor(correlationId, options.cursor))
    throw new UsageError(`--cursor is not one that audit trace ${correlationId} gave out`);
  await withStores(config, io, async (eventStores, readModelStores) => {
    const registry = await startProjections({
      eventStores,
      readModelStores,
      projections: [brokerAuditProjection, b3AuditProjection],
    });
    try {
      await caughtUp(registry, io.signal);
    } finally {
      await registry.stop();
    }
    const readModels = createReadModels(readModelStores);
    let page: { items: AuditEntry[]; nextCursor?: string };
    try {
      page = paged
        ? await readModels.auditTrace(correlationId, { limit: limit ?? 50, cursor: options.cursor })
        : { items: await readModels.trace(correlationId) };
    } catch (error) {
      if (error instanceof InvalidCursor)
        throw new UsageError(`--cursor is not one that audit trace ${correlationId} gave out`);
      throw error;
    }
    if (page.items.length === 0 && options.cursor === undefined)
      throw new CommandFailed(`no events with correlation id ${correlationId}`);
    if (io.json)
      io.out(
        JSON.stringify({
          correlationId,
          events: page.items.map(traceEvent),
          ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}),
        }),
      );
    else {
      for (const entry of page.items)
        io.out(
          `${entry.occurredAt.toISOString()}\t${entry.store}\t${entry.streamId}@${entry.version}\t${entry.type}\tcausation=${entry.causationId} actor=${entry.actor}\t${JSON.stringify(redactSecrets(entry.data))}`,
        );
      if (page.nextCursor) io.err.write(`more: --cursor ${page.nextCursor}\n`);
    }
  });
}

async function caughtUp(
  registry: ProjectionRegistry,
  signal?: AbortSignal,
  timeoutMs = 120_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    signal?.throwIfAborted();
    const statuses = await registry.status();
    const failed = statuses.find((s) => s.state === 'failed');
    if (failed) throw new CommandFailed(`projection ${failed.projection} failed: ${failed.error}`);
    if (statuses.every((s) => s.lagPositions === 0)) return;
    if (Date.now() > deadline) throw new CommandFailed('the audit timeline did not catch up in time');
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/**
 * A state as `path value` lines, one per leaf: `cash.available 100000`, `executions[0].price 3250`;
 * an empty object or list is `{}` or `[]`. Amounts stay integer cents, as the events hold them.
 */
export function flatten(
  value: unknown,
  path = '',
  rows: Array<[string, string]> = [],
): Array<[string, string]> {
  if (Array.isArray(value)) {
    if (value.length === 0) rows.push([path, '[]']);
    for (const [index, item] of value.entries()) flatten(item, `${path}[${index}]`, rows);
  } else if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>);
    if (entries.length === 0) rows.push([path, '{}']);
    for (const [key, item] of entries) flatten(item, path ? `${path}.${key}` : key, rows);
  } else
    rows.push([
      path,
      value === undefined ? '' : typeof value === 'string' && value !== '' ? value : JSON.stringify(value),
    ]);
  return rows;
}

/** A whole number from `minimum` to `maximum` (the HTTP API's bounds where it has them). */
function integerOption(
  name: string,
  value: string | undefined,
  minimum: number,
  maximum = Number.MAX_SAFE_INTEGER,
): number | undefined {
  if (value === undefined) return undefined;
  if (
    !/^\d+$/.test(value) ||
    !Number.isSafeInteger(Number(value)) ||
    Number(value) < minimum ||
    Number(value) > maximum
  )
    throw new UsageError(
      `${name} must be an integer ${maximum === Number.MAX_SAFE_INTEGER ? `≥ ${minimum}` : `from ${minimum} to ${maximum}`}, got "${value}"`,
    );
  return Number(value);
}

function table(io: CommandIo, header: string[], rows: string[][]): void {
  const widths = header.map((cell, column) =>
    Math.max(cell.length, ...rows.map((row) => row[column]!.length)),
  );
  const line = (cells: string[]) =>
    cells
      .map((cell, column) => cell.padEnd(widths[column]!))
      .join('  ')
      .trimEnd();
  io.out(line(header));
  for (const row of rows) io.out(line(row));
}
