import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type TestApi } from './testing.ts';

let api: TestApi;
let auditor: string;
let trader: { accountId: string; token: string };

beforeAll(async () => {
  api = await startTestApi();
  auditor = (await api.auditor('trace-auditor')).token;
  trader = await api.trader('trace-trader');
});
afterAll(async () => api?.close());

const get = (url: string, token = auditor) =>
  api.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${token}` } });

/** A B3-side event of the request, at the instant given (the B3 store takes any event type). */
const b3Event = (correlationId: string, occurredAt: string, type: string) => ({
  id: randomUUID(),
  type,
  data: { note: type },
  metadata: { correlationId, causationId: 'test', actor: 'b3-engine', occurredAt },
});

describe('GET /v1/audit/trace/{correlationId}', () => {
  it('answers from the audit timeline, both stores merged in time order, a page at a time', async () => {
    const correlationId = 'paged-trace-1';
    for (const amount of ['10.00', '20.00', '30.00']) {
      const deposit = await api.app.inject({
        method: 'POST',
        url: `/v1/accounts/${trader.accountId}/deposits`,
        headers: { authorization: `Bearer ${trader.token}`, 'x-correlation-id': correlationId },
        payload: { amount },
      });
      expect(deposit.statusCode, deposit.body).toBeLessThan(300);
    }
    const deposits = (await api.broker.readStream(`wallet-${trader.accountId}`)).filter(
      (event) => event.metadata.correlationId === correlationId,
    );
    expect(deposits).toHaveLength(3);
    // One B3 event at the very instant of the second deposit (broker first on a tie), one earlier
    // than everything, one later.
    const second = deposits[1]!.metadata.occurredAt;
    await api.b3.append('book-TRACE3', [
      b3Event(correlationId, '2000-01-01T00:00:00.000Z', 'Earliest'),
      b3Event(correlationId, second, 'SameInstant'),
      b3Event(correlationId, '2999-01-01T00:00:00.000Z', 'Latest'),
    ]);

    const whole = await get(`/v1/audit/trace/${correlationId}?limit=500`);
    expect(whole.statusCode, whole.body).toBe(200);
    const types = whole
      .json()
      .events.map((event: { store: string; type: string }) => `${event.store}:${event.type}`);
    expect(types).toEqual([
      'b3:Earliest',
      'broker:CashDeposited',
      'broker:CashDeposited',
      'b3:SameInstant',
      'broker:CashDeposited',
      'b3:Latest',
    ]);
    expect(whole.json().nextCursor).toBeUndefined();
    expect(whole.json().events[1]).toMatchObject({
      store: 'broker',
      streamId: `wallet-${trader.accountId}`,
      id: deposits[0]!.id,
      version: deposits[0]!.version,
      position: deposits[0]!.position,
      data: deposits[0]!.data,
      metadata: deposits[0]!.metadata,
      recordedAt: deposits[0]!.recordedAt.toISOString(),
    });

    // Every page size walks the same sequence, with nothing skipped or repeated.
    for (const limit of [1, 2, 4]) {
      const paged: unknown[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await get(
          `/v1/audit/trace/${correlationId}?limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`,
        );
        expect(page.statusCode, page.body).toBe(200);
        expect(page.json().events.length).toBeLessThanOrEqual(limit);
        paged.push(...page.json().events);
        cursor = page.json().nextCursor;
        pages += 1;
      } while (cursor);
      expect(paged).toEqual(whole.json().events);
      expect(pages).toBe(Math.ceil(6 / limit));
    }
  });

  it('shows the events of a request made just before (it waits for the timeline to catch up)', async () => {
    const deposit = await api.app.inject({
      method: 'POST',
      url: `/v1/accounts/${trader.accountId}/deposits`,
      headers: { authorization: `Bearer ${trader.token}`, 'x-correlation-id': 'fresh-trace' },
      payload: { amount: '1.00' },
    });
    expect(deposit.statusCode).toBeLessThan(300);
    const trace = await get('/v1/audit/trace/fresh-trace');
    expect(trace.statusCode, trace.body).toBe(200);
    expect(trace.json().events.map((event: { type: string }) => event.type)).toEqual(['CashDeposited']);
  });

  it('answers 404 problem+json for an unknown correlation id, 400 for a cursor of another trace', async () => {
    const unknown = await get('/v1/audit/trace/nobody-sent-this');
    expect(unknown.statusCode).toBe(404);
    expect(unknown.headers['content-type']).toContain('application/problem+json');
    expect(unknown.json()).toMatchObject({ reason: 'TRACE_NOT_FOUND' });

    const first = await get('/v1/audit/trace/paged-trace-1?limit=1');
    const cursor = first.json().nextCursor as string;
    const foreign = await get(`/v1/audit/trace/fresh-trace?cursor=${cursor}`);
    expect(foreign.statusCode).toBe(400);
    expect(foreign.json()).toMatchObject({ reason: 'INVALID_CURSOR' });
    expect((await get('/v1/audit/trace/paged-trace-1?limit=501')).statusCode).toBe(400);
  });

  it('is for auditors and admins only', async () => {
    expect((await get('/v1/audit/trace/paged-trace-1', trader.token)).statusCode).toBe(403);
    expect((await get('/v1/audit/trace/paged-trace-1', await api.adminToken())).statusCode).toBe(200);
  });

  it('documents its paging and its answer in the OpenAPI document', async () => {
    const document = (await api.app.inject({ method: 'GET', url: '/docs/json' })).json();
    const operation = document.paths['/v1/audit/trace/{correlationId}'].get;
    expect(operation.parameters.map((parameter: { name: string }) => parameter.name)).toEqual(
      expect.arrayContaining(['correlationId', 'limit', 'cursor']),
    );
    const schema = operation.responses['200'].content['application/json'].schema;
    expect(Object.keys(schema.properties)).toEqual(['correlationId', 'events', 'nextCursor']);
  });
});
