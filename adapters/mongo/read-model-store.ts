import { randomUUID } from 'node:crypto';
import {
  type AnyBulkWriteOperation,
  type Collection,
  type Db,
  type Document,
  type Filter,
  Long,
  MongoBulkWriteError,
  MongoClient,
  MongoServerError,
  type Sort,
} from 'mongodb';
import {
  type Change,
  columnOf,
  type FindOptions,
  type ProjectionDefinition,
  type Row,
  type TableDefinition,
  tableOf,
  type Value,
} from '../../projections/model.ts';
import { type ReadModelStore, RebuildRunning, type Target } from '../../projections/store.ts';
import { assertNoServerSpeaksFirst } from './greeting.ts';

/** Rebuilds under way, one document per projection: `{_id, owner, until}` (`claimRebuild`). */
const REBUILD_CLAIMS = 'rebuild_claims';
/** How long a rebuild's claim lasts unless renewed (every third of it, while the rebuild runs). */
const REBUILD_LEASE_MS = 30_000;

/** The collection holding one document per projection and target: `{_id, position, version, epoch}`. */
const CHECKPOINTS = 'checkpoints';
/** Fields the store keeps beside a table's columns: never returned by `find`. */
const POSITION = '_position';
const SEQUENCE = '_seq';
/** A bulkWrite is idempotent, so one that lost an upsert race (duplicate _id) is simply run again. */
const WRITE_ATTEMPTS = 5;

/** A primary key: the key column's value, or the key columns as an embedded document. */
type DocumentId = string | number | boolean | Date | Long | Document;

interface StoredDocument {
  _id: DocumentId;
}

interface CheckpointDocument {
  _id: string;
  position: number;
  version: number;
  /** Bumped by `promoteRebuild`: a batch that began before the swap cannot move the checkpoint after it. */
  epoch: number;
  updatedAt: Date;
}

/**
 * Read models in a Mongo database, without multi-document transactions (mongo-java-server has
 * none, and a read model should not need a replica set). A table is a collection whose `_id` is
 * the primary key; every document carries the position (and the index within that event's
 * changes) of the last event applied to it, and every update is guarded by it, so each event is
 * applied to each document at most once and in order, whatever the batch boundaries, the number
 * of instances, or a crash half-way through a batch. The checkpoint moves compare-and-set after
 * the batch's writes. See docs/read-models.md, "Mongo store".
 */
export class MongoReadModelStore implements ReadModelStore {
  /** Each document is guarded by the position of the last change applied to it. */
  readonly readsPositions = true;
  private readonly db: Db;

  private constructor(
    private readonly client: MongoClient,
    database: string,
    readonly kind: string,
    private readonly ownsClient: boolean,
  ) {
    this.db = client.db(database);
  }

  static open(options: {
    client: MongoClient;
    database: string;
    kind?: string;
    ownsClient?: boolean;
  }): MongoReadModelStore {
    return new MongoReadModelStore(
      options.client,
      assertDatabaseName(options.database),
      options.kind ?? 'mongo',
      options.ownsClient ?? false,
    );
  }

  /** A store with its own client on `url` (`MONGO_URL`), closed by `close()`. */
  static async connect(url: string, database: string): Promise<MongoReadModelStore> {
    await assertNoServerSpeaksFirst(url);
    // Within 10 s, not the driver's 30: a URL naming another kind of server fails a start soon.
    const client = await new MongoClient(url, { serverSelectionTimeoutMS: 10_000 }).connect();
    return MongoReadModelStore.open({ client, database, ownsClient: true });
  }

  private collection(name: string, target: Target): Collection<StoredDocument> {
    return this.db.collection<StoredDocument>(collectionName(name, target));
  }

  private get checkpoints(): Collection<CheckpointDocument> {
    return this.db.collection<CheckpointDocument>(CHECKPOINTS);
  }

  async prepare(projection: ProjectionDefinition, target: Target): Promise<void> {
    for (const table of projection.tables) checkTable(table);
    const checkpointId = checkpointIdOf(projection.name, target);
    if (target === 'rebuild') {
      for (const table of projection.tables) await dropIfExists(this.collection(table.name, target));
      await this.checkpoints.deleteOne({ _id: checkpointId });
    }
    for (const table of projection.tables) {
      const collection = this.collection(table.name, target);
      // Key columns are fields too, for `where` and `orderBy`; `_id` already makes them unique. The
      // indexes keep Mongo's default names (from their columns), which survive the rename of a
      // rebuilt collection: a later createIndex of the same columns under another name would fail.
      for (const index of [table.primaryKey, ...(table.indexes ?? [])])
        await collection.createIndex(indexSpec(index));
    }
    await ignoreDuplicateKey(() =>
      this.checkpoints.updateOne(
        { _id: checkpointId },
        {
          $setOnInsert: { position: 0, version: projection.version, epoch: 0, updatedAt: new Date() },
        },
        { upsert: true },
      ),
    );
  }

  async checkpoint(projectionName: string, target: Target): Promise<number> {
    const document = await this.checkpoints.findOne({ _id: checkpointIdOf(projectionName, target) });
    return document ? toNumber(document.position) : 0;
  }

  async builtVersion(projectionName: string): Promise<number | undefined> {
    const document = await this.checkpoints.findOne({ _id: checkpointIdOf(projectionName, 'live') });
    return document?.version === undefined ? undefined : toNumber(document.version);
  }

  /**
   * Not atomic (there is no transaction): the guarded writes first, then the checkpoint moves
   * compare-and-set. A batch refused up front changes nothing; one that loses a race after its
   * writes has only written what the winner writes too (the same events, at the same positions),
   * and a stale or replayed batch's events are at or below the documents' positions, so no-ops.
   */
  async applyBatch(
    projection: ProjectionDefinition,
    target: Target,
    changes: Change[],
    from: number,
    to: number,
  ): Promise<boolean> {
    const checkpointId = checkpointIdOf(projection.name, target);
    const current = await this.checkpoints.findOne({ _id: checkpointId });
    if (!current || toNumber(current.position) !== from) return false;
    const tables = new Map(projection.tables.map((table) => [table.name, table]));
    const operations = new Map<string, AnyBulkWriteOperation<StoredDocument>[]>();
    for (const operation of planOperations(tables, changes, to)) {
      const list = operations.get(operation.table);
      if (list) list.push(operation.write);
      else operations.set(operation.table, [operation.write]);
    }
    // Each document's operations stay in order within its collection's ordered bulkWrite; documents
    // of different collections never depend on each other.
    for (const [table, writes] of operations) {
      const collection = this.collection(table, target);
      if (writes.every((write) => 'insertOne' in write))
        await insertAbsent(
          collection,
          writes.map((write) => ('insertOne' in write ? write.insertOne.document : {})),
        );
      else await retryOnDuplicateKey(() => collection.bulkWrite(writes, { ordered: true }));
    }
    const moved = await this.checkpoints.updateOne(
      { _id: checkpointId, position: from, epoch: current.epoch ?? null },
      { $set: { position: to, updatedAt: new Date() } },
    );
    return moved.matchedCount === 1;
  }

  /**
   * Renames each `<table>__rebuild` over `<table>` (each rename atomic on its own, the set of them
   * not), then makes the rebuild checkpoint the live one. The live checkpoint first steps back to
   * the older of the two positions, so a crash part-way leaves every live collection, old or
   * rebuilt, behind or at the checkpoint, and following again replays onto each what it misses
   * (the guards skip the rest). Both steps bump the epoch: a batch checked before either cannot
   * move the checkpoint after it. See docs/read-models.md.
   */
  /**
   * A claim document (`rebuild_claims`, by projection) with a lease this process renews while it
   * rebuilds: a second rebuild, from any process, finds a live claim and is refused; the claim of
   * a process that died lapses after `REBUILD_LEASE_MS` and is taken over.
   */
  async claimRebuild(projection: ProjectionDefinition): Promise<() => Promise<void>> {
    const claims = this.db.collection<{ _id: string; owner: string; until: Date }>(REBUILD_CLAIMS);
    const owner = randomUUID();
    const leased = () => ({ $set: { owner, until: new Date(Date.now() + REBUILD_LEASE_MS) } });
    try {
      // A claim that lapsed is taken over; a live one makes the upsert insert its id again, refused.
      await claims.updateOne({ _id: projection.name, until: { $lt: new Date() } }, leased(), {
        upsert: true,
      });
    } catch (error) {
      if (isDuplicateKey(error)) throw new RebuildRunning(projection.name);
      throw error;
    }
    const renewal = setInterval(() => {
      void claims.updateOne({ _id: projection.name, owner }, leased()).catch(() => {});
    }, REBUILD_LEASE_MS / 3);
    renewal.unref();
    return async () => {
      clearInterval(renewal);
      await claims.deleteOne({ _id: projection.name, owner });
    };
  }

  async promoteRebuild(projection: ProjectionDefinition): Promise<void> {
    const rebuilt = await this.checkpoints.findOne({ _id: checkpointIdOf(projection.name, 'rebuild') });
    if (!rebuilt) throw new Error(`projection ${projection.name} has no rebuild to promote`);
    const position = toNumber(rebuilt.position);
    const live = checkpointIdOf(projection.name, 'live');
    await this.checkpoints.updateOne(
      { _id: live },
      { $min: { position }, $inc: { epoch: 1 }, $set: { updatedAt: new Date() } },
    );
    for (const table of projection.tables) {
      await this.db.renameCollection(
        collectionName(table.name, 'rebuild'),
        collectionName(table.name, 'live'),
        { dropTarget: true },
      );
    }
    await this.checkpoints.updateOne(
      { _id: live },
      {
        $set: { position, version: toNumber(rebuilt.version), updatedAt: new Date() },
        $inc: { epoch: 1 },
      },
      { upsert: true },
    );
    await this.checkpoints.deleteOne({ _id: rebuilt._id });
  }

  async find(projection: ProjectionDefinition, tableName: string, options: FindOptions = {}): Promise<Row[]> {
    const table = tableOf(new Map(projection.tables.map((t) => [t.name, t])), tableName);
    if (options.limit !== undefined && Math.floor(options.limit) <= 0) return [];
    const conditions: Filter<StoredDocument>[] = [];
    const where: Document = {};
    for (const [column, value] of Object.entries(options.where ?? {})) {
      columnOf(table, column);
      // Nulls are never stored (see encode), so `{column: null}` finds them: it matches a missing field.
      where[column] = encode(table, column, value);
    }
    if (Object.keys(where).length > 0) conditions.push(where);
    for (const [column, values] of Object.entries(options.oneOf ?? {})) {
      columnOf(table, column);
      conditions.push({ [column]: { $in: values.map((value) => encode(table, column, value)) } });
    }
    const orderBy =
      options.orderBy ?? table.primaryKey.map((column): [string, 'asc' | 'desc'] => [column, 'asc']);
    for (const [column] of orderBy) columnOf(table, column);
    if (options.after) {
      // Keyset pagination: (a, b) after (x, y) is a > x, or a = x and b > y (directions per column).
      const after = options.after;
      conditions.push({
        $or: orderBy.map(([column, direction], index) => {
          const alternative: Document = {};
          orderBy.slice(0, index).forEach(([equal], j) => {
            alternative[equal] = encode(table, equal, after[j] ?? null);
          });
          alternative[column] = {
            [direction === 'asc' ? '$gt' : '$lt']: encode(table, column, after[index] ?? null),
          };
          return alternative;
        }),
      });
    }
    const filter: Filter<StoredDocument> = pointLookup(table, options)
      ? byId(documentId(table, options.where ?? {}))
      : conditions.length === 0
        ? {}
        : conditions.length === 1
          ? conditions[0]!
          : { $and: conditions };
    const sort: Sort = orderBy.map(([column, direction]): [string, 1 | -1] => [
      column,
      direction === 'asc' ? 1 : -1,
    ]);
    let cursor = this.collection(table.name, 'live')
      .find(filter, { projection: { _id: 0, [POSITION]: 0, [SEQUENCE]: 0 } })
      .sort(sort);
    if (options.limit !== undefined) cursor = cursor.limit(Math.floor(options.limit));
    const documents = await cursor.toArray();
    return documents.map((document) => decodeRow(table, document));
  }

  async close(): Promise<void> {
    if (this.ownsClient) await this.client.close();
  }
}

/**
 * Each change, in order, becomes writes that never fail: (1) an upsert that only makes sure the
 * document exists (key fields and insert-only columns, position 0), skipped when an earlier write of
 * this batch already did; (2) the change itself, guarded by the document's position. A change is
 * at `(position, sequence)`: its event's position (the batch's `to` when the caller did not stamp
 * one) and its index among the changes of that event, so one event may change a document twice.
 */
export function planOperations(
  tables: Map<string, TableDefinition>,
  changes: Change[],
  to: number,
): Array<{ table: string; write: AnyBulkWriteOperation<StoredDocument> }> {
  const writes: Array<{ table: string; write: AnyBulkWriteOperation<StoredDocument> }> = [];
  const inserted = insertedTables(tables, changes);
  const existing = new Set<string>();
  let lastPosition = Number.NEGATIVE_INFINITY;
  let sequence = 0;
  for (const change of changes) {
    const position = change.position ?? to;
    if (position < lastPosition)
      throw new Error(`changes out of order: position ${position} after ${lastPosition}`);
    sequence = position === lastPosition ? sequence + 1 : 0;
    lastPosition = position;
    const table = tableOf(tables, change.table);
    const id = documentId(table, change.key);
    const documentKey = `${table.name}\u0000${JSON.stringify(id)}`;
    const guard = byId(
      id,
      sequence === 0
        ? { [POSITION]: { $lt: position } }
        : {
            $or: [{ [POSITION]: { $lt: position } }, { [POSITION]: position, [SEQUENCE]: { $lt: sequence } }],
          },
    );
    if (change.kind === 'delete') {
      writes.push({ table: table.name, write: { deleteOne: { filter: guard } } });
      existing.delete(documentKey);
      continue;
    }
    const { insert, update } = updateOf(table, change);
    if (inserted.has(table.name)) {
      const document: Document = {
        _id: id,
        ...insert,
        ...update.$set,
        [POSITION]: position,
        [SEQUENCE]: sequence,
      };
      for (const column of table.primaryKey)
        document[column] = encode(table, column, change.key[column] ?? null);
      writes.push({ table: table.name, write: { insertOne: { document } } });
      continue;
    }
    if (!existing.has(documentKey)) {
      const created: Document = { [POSITION]: 0, [SEQUENCE]: 0, ...insert };
      for (const column of table.primaryKey)
        created[column] = encode(table, column, change.key[column] ?? null);
      writes.push({
        table: table.name,
        write: { updateOne: { filter: byId(id), update: { $setOnInsert: created }, upsert: true } },
      });
      existing.add(documentKey);
    }
    update.$set = { ...update.$set, [POSITION]: position, [SEQUENCE]: sequence };
    writes.push({ table: table.name, write: { updateOne: { filter: guard, update } } });
  }
  return writes;
}

/**
 * The append-only tables (`TableDefinition.appendOnly`) whose changes in this batch can all be
 * plain inserts: each creates its row (an upsert of `set` and `insert` columns only, one per key).
 * The row is then whole at its first write, so an insert that finds its `_id` taken (a replay, a
 * second instance) is a change already applied, exactly what the position guard would have
 * concluded. An insert is checked against `_id` alone, where a guarded update's filter names
 * `_position` too, which a server without secondary indexes (mongo-java-server) answers by
 * scanning the collection: for a tape that grows without end, every write would cost more than
 * the last. A table whose batch has anything else (a delete, an increment, a key twice) takes the
 * guarded path for the whole batch.
 */
function insertedTables(tables: Map<string, TableDefinition>, changes: Change[]): Set<string> {
  const inserted = new Set<string>();
  const refused = new Set<string>();
  const keys = new Set<string>();
  for (const change of changes) {
    const table = tableOf(tables, change.table);
    if (!table.appendOnly || refused.has(table.name)) continue;
    const key = `${table.name}\u0000${JSON.stringify(documentId(table, change.key))}`;
    const creates = change.kind === 'upsert' && !change.add && !change.max && !change.min && !keys.has(key);
    keys.add(key);
    if (creates) inserted.add(table.name);
    else {
      refused.add(table.name);
      inserted.delete(table.name);
    }
  }
  return inserted;
}

/** The driver types `_id` filters for ObjectId-like ids only; ours are the rows' keys. */
function byId(id: DocumentId, rest: Document = {}): Filter<StoredDocument> {
  return { _id: id, ...rest } as Filter<StoredDocument>;
}

/**
 * A read of one row by its whole key and nothing else (the latest quote of a symbol): asked by
 * `_id`, which every server answers from its `_id` index; the key fields' own index is one that
 * mongo-java-server does not implement, so a filter on them scans the collection.
 */
function pointLookup(table: TableDefinition, options: FindOptions): boolean {
  const where = options.where ?? {};
  const columns = Object.keys(where);
  return (
    options.oneOf === undefined &&
    options.after === undefined &&
    columns.length === table.primaryKey.length &&
    table.primaryKey.every((column) => where[column] !== undefined && where[column] !== null)
  );
}

function updateOf(
  table: TableDefinition,
  change: Extract<Change, { kind: 'upsert' }>,
): { insert: Document; update: Record<string, Document> } {
  const insert: Document = {};
  const update: Record<string, Document> = {};
  const seen = new Set<string>();
  const put = (target: Document, column: string, value: unknown) => {
    if (seen.has(column)) throw new Error(`change to ${table.name}: column ${column} has two operations`);
    seen.add(column);
    target[column] = value;
  };
  const section = (operator: string): Document => {
    update[operator] ??= {};
    return update[operator];
  };
  const columns = (row: Row | undefined) =>
    Object.entries(row ?? {}).filter(([column]) => !(column in change.key) && columnOf(table, column));
  for (const [column, value] of columns(change.insert)) {
    // A null insert-only column is simply absent.
    if (value !== null) put(insert, column, encode(table, column, value));
    else seen.add(column);
  }
  for (const [column, value] of columns(change.set)) {
    if (value === null) put(section('$unset'), column, '');
    else put(section('$set'), column, encode(table, column, value));
  }
  for (const [column, value] of columns(change.add))
    put(section('$inc'), column, encode(table, column, Number(value)));
  // Mongo compares across types with null lowest, SQL's GREATEST and LEAST ignore nulls: a null
  // max or min changes nothing in either.
  for (const [column, value] of columns(change.max))
    if (value !== null) put(section('$max'), column, encode(table, column, value));
  for (const [column, value] of columns(change.min))
    if (value !== null) put(section('$min'), column, encode(table, column, value));
  return { insert, update };
}

function documentId(table: TableDefinition, key: Row): DocumentId {
  const encoded = table.primaryKey.map((column) => {
    const value = key[column];
    if (value === undefined || value === null)
      throw new Error(`change to ${table.name}: key column ${column} is missing`);
    return encode(table, column, value);
  });
  if (encoded.length === 1) return encoded[0] as DocumentId;
  // Always in primary-key order: Mongo compares embedded documents field by field, in order.
  return Object.fromEntries(table.primaryKey.map((column, index) => [column, encoded[index]]));
}

/**
 * Nulls are never stored: a null `set` unsets the field, so `$inc`, `$max` and `$min` on a
 * missing field behave as SQL's `COALESCE(column, 0) + x`, `GREATEST` and `LEAST` do on null.
 * `bigint` is a BSON long, `timestamp` a BSON date, `json` the value itself.
 */
function encode(table: TableDefinition, column: string, value: Value): unknown {
  if (value === null || value === undefined) return null;
  switch (table.columns[column]?.type) {
    case 'bigint':
      return typeof value === 'number' && Number.isInteger(value) ? Long.fromNumber(value) : value;
    case 'timestamp':
      return value instanceof Date ? value : new Date(value as string | number);
    default:
      return value;
  }
}

function decodeRow(table: TableDefinition, document: Document): Row {
  const row: Row = {};
  for (const [column, definition] of Object.entries(table.columns)) {
    const value = document[column];
    if (value === null || value === undefined) row[column] = null;
    else if (definition.type === 'bigint' || definition.type === 'int') row[column] = toNumber(value);
    else if (definition.type === 'timestamp') row[column] = value instanceof Date ? value : new Date(value);
    else row[column] = value as Value;
  }
  return row;
}

function toNumber(value: unknown): number {
  return value instanceof Long ? value.toNumber() : Number(value);
}

function collectionName(table: string, target: Target): string {
  return `${table}${target === 'rebuild' ? '__rebuild' : ''}`;
}

function checkpointIdOf(projection: string, target: Target): string {
  return `${projection}:${target}`;
}

function indexSpec(columns: string[]): Document {
  return Object.fromEntries(columns.map((column) => [column, 1]));
}

function checkTable(table: TableDefinition): void {
  if (!/^[a-z][a-z0-9_]*$/.test(table.name) || table.name === CHECKPOINTS || table.name.endsWith('__rebuild'))
    throw new Error(`read-model table name ${table.name} cannot be a Mongo collection here`);
  for (const column of [...table.primaryKey, ...(table.indexes ?? []).flat()]) columnOf(table, column);
}

function assertDatabaseName(name: string): string {
  if (!/^[A-Za-z0-9_-]{1,63}$/.test(name)) throw new Error(`invalid Mongo database name ${name}`);
  return name;
}

async function dropIfExists(collection: Collection<StoredDocument>): Promise<void> {
  try {
    await collection.drop();
  } catch (error) {
    // NamespaceNotFound: nothing to drop (newer servers no longer report it).
    if (!(error instanceof MongoServerError && (error.code === 26 || /ns not found/i.test(error.message))))
      throw error;
  }
}

function isDuplicateKey(error: unknown): boolean {
  return (
    error instanceof MongoServerError && (error.code === 11000 || /duplicate key/i.test(error.message ?? ''))
  );
}

async function ignoreDuplicateKey(write: () => Promise<unknown>): Promise<void> {
  try {
    await write();
  } catch (error) {
    // Two processes upserting the same new document: the other one created it.
    if (!isDuplicateKey(error)) throw error;
  }
}

/**
 * Inserts the documents, unordered: one whose `_id` is taken already holds the same row (see
 * `insertedTables`), so its duplicate-key error means "already applied" and the others go on.
 */
async function insertAbsent(collection: Collection<StoredDocument>, documents: Document[]): Promise<void> {
  try {
    // Typed for ObjectId-like ids, as `byId` says; ours are the rows' keys.
    await (collection as unknown as Collection<Document>).insertMany(documents, { ordered: false });
  } catch (error) {
    if (!(error instanceof MongoBulkWriteError) || error.result.getWriteConcernError()) throw error;
    const failed = [error.writeErrors].flat();
    if (failed.length === 0 || failed.some((failure) => failure.code !== 11000)) throw error;
  }
}

async function retryOnDuplicateKey(write: () => Promise<unknown>): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await write();
      return;
    } catch (error) {
      // Concurrent upserts of one new _id may lose with a duplicate key error; the batch's writes are
      // guarded by position, so running them all again applies nothing twice.
      if (!isDuplicateKey(error) || attempt >= WRITE_ATTEMPTS) throw error;
    }
  }
}
