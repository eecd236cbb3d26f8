import type { Change, FindOptions, ProjectionDefinition, Row } from './model.ts';

/**
 * The read-model store port. `target` is `live` (the tables readers use) or `rebuild` (fresh
 * tables a rebuild fills while the live ones keep serving, swapped in by `promoteRebuild`).
 */
export type Target = 'live' | 'rebuild';

export interface ReadModelStore {
  /** Which kind of store this is, for metrics and messages: `postgres`, `pglite`, `mysql`, `mongo`. */
  readonly kind: string;
  /**
   * Whether `applyBatch` reads `Change.position` (a store without transactions, Mongo, guards
   * each row with it). The projector stamps positions only for such a store.
   */
  readonly readsPositions?: boolean;
  /**
   * Creates the projection's tables for `target` (empty tables for a rebuild, replacing any
   * half-built ones) and its checkpoint. Safe to call from several processes at once.
   */
  prepare(projection: ProjectionDefinition, target: Target): Promise<void>;
  /** The position of the last event applied to `target`, 0 before any. */
  checkpoint(projectionName: string, target: Target): Promise<number>;
  /** The projection version the live tables were built with, undefined when never built. */
  builtVersion(projectionName: string): Promise<number | undefined>;
  /**
   * Applies one batch of changes and moves the checkpoint from `from` to `to`, atomically.
   * Returns false, changing nothing, when the checkpoint was not at `from` — another instance
   * applied this batch already.
   */
  applyBatch(
    projection: ProjectionDefinition,
    target: Target,
    changes: Change[],
    from: number,
    to: number,
  ): Promise<boolean>;
  /**
   * Optional: `applyBatch` in steps, for a store that plans a batch (merging its changes per row,
   * the SQL stores): changes are added as they are projected and planned as they come, so they
   * need not all stay in memory until the batch is written.
   */
  openBatch?(projection: ProjectionDefinition, target: Target): OpenBatch;
  /** Atomically makes the rebuilt tables (and their checkpoint) the live ones, and drops the old ones. */
  promoteRebuild(projection: ProjectionDefinition): Promise<void>;
  /**
   * Optional: claims the projection's rebuild on a store several processes share, until the
   * returned release is called or this process dies (the server lets the claim go with its
   * connection). A second rebuild meanwhile, from any process, is refused with `RebuildRunning`
   * before it touches the first one's tables (its `prepare` would drop them, and its promotion
   * could swap in the other's). Absent: one process at a time writes the store (PGlite, behind the
   * data folder's lock), and the projector's own rebuild is one at a time.
   */
  claimRebuild?(projection: ProjectionDefinition): Promise<() => Promise<void>>;
  /** Reads rows of a live table. */
  find(projection: ProjectionDefinition, table: string, options?: FindOptions): Promise<Row[]>;
  close(): Promise<void>;
}

/** A batch being filled: `apply` is `applyBatch` with every change added, in order. */
export interface OpenBatch {
  add(changes: readonly Change[]): void;
  apply(from: number, to: number): Promise<boolean>;
}

/** Another rebuild of the projection holds its claim (`ReadModelStore.claimRebuild`). */
export class RebuildRunning extends Error {
  override readonly name = 'RebuildRunning';
  constructor(readonly projection: string) {
    super(
      `projection ${projection}: another rebuild of it is running (in another process); try again once it is done`,
    );
  }
}
