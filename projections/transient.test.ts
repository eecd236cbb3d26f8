import { MongoBulkWriteError, MongoNetworkError } from 'mongodb';
import { describe, expect, it } from 'vitest';
import { isTransientError } from './transient.ts';

const withFields = (message: string, fields: object) => Object.assign(new Error(message), fields);

describe('isTransientError', () => {
  it.each([
    [
      'a connection refused on both addresses',
      new AggregateError([withFields('refused', { code: 'ECONNREFUSED' })]),
    ],
    [
      'mysql2: connection lost',
      withFields('Connection lost: The server closed the connection.', {
        code: 'PROTOCOL_CONNECTION_LOST',
        fatal: true,
      }),
    ],
    [
      'MySQL: a deadlock',
      withFields('Deadlock found when trying to get lock', { code: 'ER_LOCK_DEADLOCK', errno: 1213 }),
    ],
    ['Postgres: a serialization failure', withFields('could not serialize access', { code: '40001' })],
    [
      'Postgres: the server shutting down',
      withFields('terminating connection due to administrator command', { code: '57P01' }),
    ],
    ['pg: a connection terminated', new Error('Connection terminated unexpectedly')],
    [
      'Postgres: a database closed to connections',
      withFields('database "b3" is not currently accepting connections', { code: '55000' }),
    ],
    [
      'Mongo: no server selected',
      withFields('Server selection timed out after 1500 ms', { name: 'MongoServerSelectionError' }),
    ],
    [
      'Mongo: a bulk write whose connection closed (the driver keeps only the message)',
      new MongoBulkWriteError(
        new MongoNetworkError('connection 3 to 127.0.0.1:27017 closed'),
        {} as ConstructorParameters<typeof MongoBulkWriteError>[1],
      ),
    ],
    ['a cause that is', new Error('batch failed', { cause: withFields('reset', { code: 'ECONNRESET' }) })],
  ])('retries %s', (_what, error) => expect(isTransientError(error)).toBe(true));

  it.each([
    ['an event the projection cannot apply', new Error('cannot apply Poison')],
    [
      'a value too long for its column',
      withFields('Data too long for column', { code: 'ER_DATA_TOO_LONG', errno: 1406 }),
    ],
    ['a missing table', withFields('relation "orders" does not exist', { code: '42P01' })],
    ['a duplicate key', withFields('E11000 duplicate key', { name: 'MongoServerError', code: 11000 })],
    ['not an error at all', 'oops'],
  ])('does not retry %s', (_what, error) => expect(isTransientError(error)).toBe(false));
});
