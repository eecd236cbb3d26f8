/**
 * The little a SQL event store needs from a Postgres connection, so that the same SQL runs on
 * pg (a pool of real connections) and PGlite (one embedded connection).
 */
export interface SqlQuery {
  query<Row = Record<string, unknown>>(text: string, params?: unknown[]): Promise<Row[]>;
}

/** One parameterised statement. */
export interface SqlStatement {
  text: string;
  params?: unknown[];
}

/** A transaction's connection: statements, and COPY where the client offers it (`SqlClient.copies`). */
export interface SqlTransaction extends SqlQuery {
  /** Runs `statement` (`COPY … FROM STDIN`, text format) with `data` as its input. */
  copyFrom?(statement: string, data: string): Promise<void>;
}

export interface SqlClient extends SqlQuery {
  /** Whether `transaction` gives `copyFrom`: bulk loads then take COPY instead of INSERT. */
  readonly copies?: boolean;
  /** Runs `work` in one transaction on one connection: committed when it resolves, rolled back when it throws. */
  transaction<T>(work: (tx: SqlTransaction) => Promise<T>): Promise<T>;
  /**
   * Optional: one transaction that runs `guard` and, when it returns a row, `statements` and
   * commits (true); when it returns none, rolls back (false). The same as `transaction` with
   * those steps, for a client that runs it with one exchange instead of one per statement; such a
   * client may commit several callers' batches together, each all or nothing in a savepoint.
   */
  guardedTransaction?(guard: SqlStatement, statements: readonly SqlStatement[]): Promise<boolean>;
  /** Runs several statements in one transaction, without parameters. */
  exec(text: string): Promise<void>;
  /** Calls `onNotify` for every NOTIFY on `channel`; the returned function stops listening. */
  listen(channel: string, onNotify: (payload: string) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

/** A SQL error's SQLSTATE, whichever driver raised it. */
export function sqlState(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : undefined;
}

export function sqlErrorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
