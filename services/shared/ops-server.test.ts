import { connect } from 'node:net';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { answerWhileClosing } from '../api/testing.ts';
import { ShutdownStack, startOpsServer } from './ops-server.ts';

describe("a service's own port (the ops server) while it stops", () => {
  it('answers /health/ready 503 SHUTTING_DOWN from the moment the stop begins, as the API does', async () => {
    let release = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let holding = true;
    const ops = await startOpsServer({
      port: 0,
      host: '127.0.0.1',
      logger: pino({ level: 'silent' }),
      // The first probe is held, so that its connection is busy (not idle, not closed at once)
      // when the stop begins, and the next probe, sent on it after that, reaches the server.
      readiness: { held: () => (holding ? held : Promise.resolve()) },
    });
    const { port } = new URL(ops.url);
    const { statusLine, head, body } = await answerWhileClosing(
      Number(port),
      {
        first: 'GET /health/ready HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n',
        second: 'GET /health/ready HTTP/1.1\r\nhost: 127.0.0.1\r\nx-correlation-id: corr-stop-1\r\n\r\n',
      },
      () => {
        const closed = ops.close();
        holding = false;
        return closed;
      },
      release,
    );
    expect(statusLine).toBe('HTTP/1.1 503 Service Unavailable');
    expect(head).toContain('content-type: application/problem+json');
    expect(head).toContain('connection: close');
    expect(head).toContain('x-correlation-id: corr-stop-1');
    expect(body).toMatchObject({
      status: 503,
      reason: 'SHUTTING_DOWN',
      instance: '/health/ready',
      correlationId: 'corr-stop-1',
    });
  });
});

describe('a shutdown stack', () => {
  it('goes on past a step that hangs once its deadline passed, naming it, and still stops the rest', async () => {
    const errors: string[] = [];
    const logger = pino({ level: 'error' }, { write: (line: string) => errors.push(JSON.parse(line).msg) });
    const stack = new ShutdownStack(logger, 100);
    const stopped: string[] = [];
    stack.push('event stores', async () => stopped.push('event stores'));
    stack.push('read-model stores', () => new Promise(() => {}));
    stack.push('http', async () => stopped.push('http'));
    const started = Date.now();
    await stack.stop();
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(stopped).toEqual(['http', 'event stores']);
    expect(errors).toEqual(['read-model stores not stopped within 100 ms: left to the exit']);
  });
});

describe("a service's own port, against callers that misbehave", () => {
  it('answers 408 to a request whose body never arrives, and lets its connection go', async () => {
    const ops = await startOpsServer({
      port: 0,
      host: '127.0.0.1',
      logger: pino({ level: 'silent' }),
      readiness: {},
      requestTimeoutMs: 300,
    });
    const { port } = new URL(ops.url);
    const socket = connect(Number(port), '127.0.0.1');
    let answer = '';
    socket.on('data', (chunk) => {
      answer += String(chunk);
    });
    const ended = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    // Six bytes of the hundred promised, and then nothing.
    socket.write(
      'POST /health/live HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"a":1',
    );
    const started = Date.now();
    await ended;
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(answer.split('\r\n', 1)[0]).toBe('HTTP/1.1 408 Request Timeout');
    expect(answer).toContain('"reason":"REQUEST_TIMEOUT"');
    await ops.close();
  });

  it('never writes a token given in the query to its log', async () => {
    const lines: string[] = [];
    const ops = await startOpsServer({
      port: 0,
      host: '127.0.0.1',
      logger: pino({ level: 'info' }, { write: (line: string) => void lines.push(line) }),
      readiness: {},
    });
    await fetch(`${ops.url}/v1/admin/projections?access_token=eyJhbGciOi.payload.signature`);
    await ops.close();
    const incoming = lines.map((line) => JSON.parse(line)).filter((line) => line.msg === 'incoming request');
    expect(incoming.map((line) => line.req.url)).toEqual(['/v1/admin/projections?access_token=[redacted]']);
    expect(lines.join('\n')).not.toContain('signature');
  });
});
