/**
 * Whether a store or event-store error is worth retrying: the server went away, refused or timed
 * out, or it aborted a transaction (a deadlock, a serialization failure) that can simply run
 * again. Anything else — an event a projection cannot apply, a value the schema refuses, a
 * missing table — fails the same way every time, so it stops the projection instead.
 *
 * Recognised by the codes the drivers put on their errors (Node's socket errors, mysql2, pg and
 * SQLSTATE, the Mongo driver's names, labels and codes), read through `cause` and an
 * `AggregateError`'s errors (a dual-stack connect refused on both addresses), without importing
 * any driver.
 */
export function isTransientError(error: unknown, depth = 0): boolean {
  if (typeof error !== 'object' || error === null || depth > 4) return false;
  const failure = error as {
    code?: unknown;
    errno?: unknown;
    name?: unknown;
    message?: unknown;
    fatal?: unknown;
    cause?: unknown;
    errors?: unknown;
    errorLabels?: unknown;
    hasErrorLabel?: (label: string) => boolean;
  };
  const { code, name } = failure;
  if (typeof code === 'string') {
    if (NODE_CODES.has(code) || MYSQL_CODES.has(code)) return true;
    // SQLSTATE: class 08 is a connection exception.
    if (/^[0-9A-Z]{5}$/.test(code) && (code.startsWith('08') || SQLSTATES.has(code))) return true;
  }
  if (typeof failure.errno === 'number' && MYSQL_ERRNOS.has(failure.errno)) return true;
  if (typeof name === 'string') {
    if (MONGO_NAMES.has(name)) return true;
    if (name.startsWith('Mongo') && typeof code === 'number' && MONGO_CODES.has(code)) return true;
  }
  const labels = Array.isArray(failure.errorLabels) ? (failure.errorLabels as unknown[]) : [];
  if (labels.some((label) => typeof label === 'string' && MONGO_LABELS.has(label))) return true;
  if (
    typeof failure.message === 'string' &&
    MESSAGES.some((pattern) => pattern.test(failure.message as string))
  )
    return true;
  if (Array.isArray(failure.errors) && failure.errors.some((inner) => isTransientError(inner, depth + 1)))
    return true;
  return isTransientError(failure.cause, depth + 1);
}

const NODE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
  // A compose service's name does not resolve while its container is down.
  'ENOTFOUND',
]);

const MYSQL_CODES = new Set([
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'PROTOCOL_ENQUEUE_AFTER_FATAL_ERROR',
  'ER_LOCK_DEADLOCK',
  'ER_LOCK_WAIT_TIMEOUT',
  'ER_CON_COUNT_ERROR',
  'ER_SERVER_SHUTDOWN',
  'ER_QUERY_INTERRUPTED',
  'ER_CLIENT_INTERACTION_TIMEOUT',
]);

/** Deadlock, lock wait timeout, too many connections, shutdown, interrupted, gone away, lost. */
const MYSQL_ERRNOS = new Set([1213, 1205, 1040, 1053, 1317, 2006, 2013, 4031]);

const SQLSTATES = new Set([
  '40001', // serialization_failure
  '40P01', // deadlock_detected
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now
  '53300', // too_many_connections
  '55P03', // lock_not_available
]);

const MONGO_NAMES = new Set([
  'MongoNetworkError',
  'MongoNetworkTimeoutError',
  'MongoServerSelectionError',
  'MongoPoolClearedError',
  'MongoWaitQueueTimeoutError',
  'MongoTopologyClosedError',
]);

/** Shutdown, not primary, network timeout, host unreachable, write conflict, … */
const MONGO_CODES = new Set([6, 7, 89, 91, 112, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436]);

const MONGO_LABELS = new Set(['TransientTransactionError', 'RetryableWriteError', 'ResetPool']);

/** Errors some drivers raise without a code (pg's, and the event stores' own timeouts). */
const MESSAGES = [
  /^Connection terminated/,
  /timeout exceeded when trying to connect/,
  /^Client has encountered a connection error/,
  /^Connection lost/,
  /^no answer within \d+ ms/,
  // PostgreSQL's 55000 for a database closed to connections (ALLOW_CONNECTIONS false, during a
  // maintenance): the code alone also means other, lasting states.
  /is not currently accepting connections/,
  // The Mongo driver's lost connection: a bulk write (insertMany) that loses it throws a
  // MongoBulkWriteError carrying only the network error's message, no name, label or cause.
  /^connection \d+ to \S+ (closed|timed out)$/,
];

/** Consecutive failures of an outage logged as warnings before they are errors (about 15 s of retries). */
const FAILURES_BEFORE_ERROR = 5;

/**
 * The level a retried failure is logged at: an outage (`isTransientError`) is expected to pass, a
 * warning while it is retried and an error once it keeps failing; any other failure an error at once.
 * `failures` counts this one.
 */
export function retryLogLevel(error: unknown, failures: number): 'warn' | 'error' {
  return isTransientError(error) && failures < FAILURES_BEFORE_ERROR ? 'warn' : 'error';
}
