import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { pgliteWorkerClient } from '../../adapters/pglite/worker-client.ts';
import { SqlReadModelStore } from '../../adapters/postgres/read-model-store.ts';
import { withDeadline, withTimeout } from '../../projections/deadline.ts';
import type { ProjectionDefinition } from '../../projections/model.ts';
import { Projector, type ProjectorStatus, type RebuildProgress } from '../../projections/projector.ts';
import { readModelProjections } from '../../projections/read-models/index.ts';
import { type ReadModelStores, storeFor } from '../../projections/read-models/queries.ts';
import type { ReadModelStore } from '../../projections/store.ts';
import { b3DatabaseVariable, type Config, EMBEDDED_DATABASES, reaching, redact } from './config.ts';
import type { EventStores } from './event-stores.ts';

export type { ReadModelStores } from '../../projections/read-models/queries.ts';

/** The Postgres schema every SQL read model lives in (on Postgres and on PGlite). */
export const READ_MODEL_SCHEMA = 'readmodels';

/**
 * The three read-model stores, each chosen by its URL: MYSQL_URL → MySQL (orders, wallets,
 * instruments), B3_DATABASE_URL or DATABASE_URL → Postgres schema `readmodels` (trades, depth,
 * candles), MONGO_URL → Mongo (quotes, audit). Every absent one is served by one PGlite database
 * in the data folder, shared by all of them.
 */
export async function connectReadModelStores(config: Config): Promise<ReadModelStores> {
  const opened: ReadModelStore[] = [];
  const closers: Array<() => Promise<void>> = [];
  const described: string[] = [];
  let embedded: ReadModelStore | undefined;
  const pglite = async (): Promise<ReadModelStore> => {
    if (embedded) return embedded;
    const dataDir = join(config.dataDir, EMBEDDED_DATABASES.readModels);
    await mkdir(dataDir, { recursive: true });
    const client = await pgliteWorkerClient(dataDir);
    closers.push(() => client.close());
    embedded = await SqlReadModelStore.open({ client, schema: READ_MODEL_SCHEMA, kind: 'pglite' });
    described.push(`PGlite in ${dataDir}`);
    return embedded;
  };
  try {
    const postgresUrl = config.b3DatabaseUrl ?? config.databaseUrl;
    const postgres = postgresUrl
      ? await reaching(b3DatabaseVariable(config), postgresUrl, async () =>
          SqlReadModelStore.open({
            // Each server's client is loaded only where its URL is set (as for the event stores).
            client: (await import('../../adapters/postgres/client.ts')).pgClient(postgresUrl, {
              max: config.databasePoolSize,
            }),
            schema: READ_MODEL_SCHEMA,
            ownsClient: true,
          }),
        )
      : await pglite();
    if (postgresUrl) {
      opened.push(postgres);
      described.push(`Postgres at ${redact(postgresUrl)}`);
    }
    const mysqlUrl = config.mysqlUrl;
    const mysql = mysqlUrl
      ? await reaching('MYSQL_URL', mysqlUrl, async () => {
          const { MysqlReadModelStore } = await import('../../adapters/mysql/read-model-store.ts');
          return MysqlReadModelStore.open({ url: mysqlUrl, connectionLimit: config.databasePoolSize });
        })
      : await pglite();
    if (config.mysqlUrl) {
      opened.push(mysql);
      described.push(`MySQL at ${redact(config.mysqlUrl)}`);
    }
    const mongoUrl = config.mongoUrl;
    const mongo = mongoUrl
      ? await reaching('MONGO_URL', mongoUrl, async () => {
          const { MongoReadModelStore } = await import('../../adapters/mongo/read-model-store.ts');
          return MongoReadModelStore.connect(mongoUrl, mongoDatabase(mongoUrl));
        })
      : await pglite();
    if (config.mongoUrl) {
      opened.push(mongo);
      described.push(`Mongo at ${redact(config.mongoUrl)}`);
    }
    return {
      postgres,
      mysql,
      mongo,
      description: described.join(', '),
      async close() {
        await Promise.all(opened.map((store) => store.close()));
        for (const close of closers) await close();
      },
    };
  } catch (error) {
    await Promise.allSettled(opened.map((store) => store.close()));
    for (const close of closers) await close().catch(() => {});
    throw error;
  }
}

/** The database a Mongo URL names in its path, `tradecore` when it names none. */
export function mongoDatabase(url: string): string {
  const path = new URL(url).pathname.replace(/^\//, '');
  return path === '' ? 'tradecore' : decodeURIComponent(path);
}

export interface ProjectionRegistry {
  readonly projectors: ReadonlyMap<string, Projector>;
  status(): Promise<ProjectorStatus[]>;
  /**
   * Rebuilds one read model (or `all`, one after another) while the live tables keep serving;
   * `signal` abandons what is not yet swapped in (a rebuild already running is joined, its own kept).
   */
  rebuild(
    name: string,
    onProgress?: (progress: RebuildProgress) => void,
    signal?: AbortSignal,
  ): Promise<void>;
  /** Resolves once read model `name` includes its store's events up to `position`; undefined when it does (see `Projector.whenApplied`). */
  applied(name: string, position: number): Promise<void> | undefined;
  stop(): Promise<void>;
}

/**
 * A readiness check (`/health/ready`) on the read models this process projects: it throws, naming
 * each one, while any has failed, is retrying or is stalled — a failed projector stops applying
 * events until a rebuild (here or in another process) or a restart once the cause is gone, a
 * retrying one until its store answers again, a stalled one has applied nothing for a minute while
 * behind; either way its read model only gets staler and the process is not ready. A rebuild in
 * progress is not a failure.
 */
export function projectionsReadiness(registry: Pick<ProjectionRegistry, 'status'>): () => Promise<unknown> {
  return async () => {
    const statuses = await registry.status().catch((error: unknown) => {
      // Their status reads the event stores' heads: one out is the reason, said as the projections'.
      throw new Error(
        `cannot tell how far the read models are: ${error instanceof Error ? error.message : String(error)}`,
      );
    });
    const down = statuses.filter(
      (status) => status.state === 'failed' || status.state === 'retrying' || status.state === 'stalled',
    );
    if (down.length > 0)
      throw new Error(
        down
          .map((status) =>
            status.state === 'failed'
              ? `read model ${status.projection} failed: ${status.error ?? 'unknown error'}`
              : status.state === 'stalled'
                ? `read model ${status.projection} stalled: checkpoint ${status.checkpoint} has not moved for ${status.stalledSeconds} s, head at ${status.head}`
                : `read model ${status.projection} retrying (${status.retries ?? 1} failed attempts): ${status.error ?? 'unknown error'}`,
          )
          .join('; '),
      );
    return statuses;
  };
}

/**
 * A readiness check on the read-model stores themselves (each distinct one: MySQL, Postgres,
 * Mongo, or the one embedded PGlite), each asked for a checkpoint in parallel with a deadline of
 * its own, so that a store that hangs is down, named, rather than a hung `/health/ready`.
 */
export function readModelStoresReadiness(
  stores: Pick<ReadModelStores, 'mysql' | 'postgres' | 'mongo'>,
  timeoutMs = 1_500,
): () => Promise<unknown> {
  const probes = new Map<ReadModelStore, string>();
  for (const projection of readModelProjections) {
    const store = storeFor(stores, projection);
    if (!probes.has(store)) probes.set(store, projection.name);
  }
  return async () => {
    const results = await Promise.all(
      [...probes].map(async ([store, projection]) => {
        try {
          await withTimeout(store.builtVersion(projection), timeoutMs);
          return undefined;
        } catch (error) {
          return `${store.kind}: ${error instanceof Error ? error.message : String(error)}`;
        }
      }),
    );
    const down = results.filter((result) => result !== undefined);
    if (down.length > 0) throw new Error(down.join('; '));
  };
}

export class UnknownProjection extends Error {
  override readonly name = 'UnknownProjection';
  constructor(
    readonly projection: string,
    readonly known: string[],
  ) {
    super(`unknown projection "${projection}" (known: ${known.join(', ')}, or all)`);
  }
}

export interface StartProjectionsOptions {
  eventStores: Pick<EventStores, 'broker' | 'b3'>;
  readModelStores: Pick<ReadModelStores, 'mysql' | 'postgres' | 'mongo'>;
  logger?: ConstructorParameters<typeof Projector>[0]['logger'];
  /** Which read models to run; every one by default. */
  projections?: readonly ProjectionDefinition[];
  /** `false`: create the projectors without following live events (the CLI rebuilds and reports). */
  follow?: boolean;
  batchSize?: number;
  /** A live projector's pause after each batch (default LIVE_PACING_MS; 0 applies every batch at once). */
  pacingMs?: number;
  /**
   * How long `stop()` waits for the projectors (a batch in flight, a rebuild) before it gives up on
   * them, naming them in the log (default 10,000 ms): a stalled store must not hold a shutdown.
   */
  stopDeadlineMs?: number;
}

/**
 * How long a live projector lets events gather after a batch. Under load an order's events
 * arrive a few at a time; without a pause each projector wrote a transaction per append (about
 * sixteen per order in the embedded mode, most of what an order cost). A read model is then at
 * most this much staler than it would be.
 */
export const LIVE_PACING_MS = 20;

/**
 * One projector per read model, each following its event store into its store. The registry is
 * what the admin API and the CLI use: status (checkpoint, head, lag), rebuild with progress, stop.
 */
export async function startProjections(options: StartProjectionsOptions): Promise<ProjectionRegistry> {
  const definitions = options.projections ?? readModelProjections;
  const projectors = new Map<string, Projector>();
  for (const projection of definitions)
    projectors.set(
      projection.name,
      new Projector({
        projection,
        source: options.eventStores[projection.source],
        store: storeFor(options.readModelStores, projection),
        logger: options.logger,
        batchSize: options.batchSize ?? 2_000,
        pacingMs: options.pacingMs ?? LIVE_PACING_MS,
      }),
    );
  if (options.follow !== false) {
    try {
      for (const projector of projectors.values()) await projector.start();
    } catch (error) {
      await Promise.allSettled([...projectors.values()].map((projector) => projector.stop()));
      throw error;
    }
  }
  const rebuilding = new Map<string, Promise<void>>();
  let rebuildingAll: Promise<void> | undefined;
  const rebuildOne = (
    name: string,
    onProgress?: (progress: RebuildProgress) => void,
    signal?: AbortSignal,
  ): Promise<void> => {
    const running = rebuilding.get(name);
    if (running) return running;
    const projector = projectors.get(name);
    if (!projector) throw new UnknownProjection(name, [...projectors.keys()]);
    const started = projector.rebuild(onProgress, signal).finally(() => rebuilding.delete(name));
    rebuilding.set(name, started);
    return started;
  };
  return {
    projectors,
    status: () => Promise.all([...projectors.values()].map((projector) => projector.status())),
    applied: (name, position) => projectors.get(name)?.whenApplied(position),
    rebuild(name, onProgress, signal) {
      // An unknown name is a rejection, as from any rebuild, not a throw.
      if (name !== 'all') return Promise.resolve().then(() => rebuildOne(name, onProgress, signal));
      // One at a time; asked again while they run, the same pass answers (each model joins its own).
      rebuildingAll ??= (async () => {
        for (const projection of projectors.keys()) await rebuildOne(projection, onProgress, signal);
      })().finally(() => {
        rebuildingAll = undefined;
      });
      return rebuildingAll;
    },
    async stop() {
      const deadlineMs = options.stopDeadlineMs ?? 10_000;
      const stopping = new Set(projectors.keys());
      const stopped = (async () => {
        await Promise.allSettled([...rebuilding.values()]);
        await Promise.all(
          [...projectors].map(async ([name, projector]) => {
            await projector.stop();
            stopping.delete(name);
          }),
        );
      })();
      // What they were writing when cut rolls back (or, on Mongo, is guarded by position): the next
      // start applies it again from the stored checkpoint.
      await withDeadline(stopped, deadlineMs, () =>
        options.logger?.error(
          { projections: [...stopping], deadlineMs },
          `projections not stopped within ${deadlineMs} ms, cut: ${[...stopping].join(', ')} (their batch in flight is applied again from the checkpoint at the next start)`,
        ),
      );
    },
  };
}
