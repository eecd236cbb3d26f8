import { createServer } from 'node:net';

/**
 * The address cannot be listened on (the port is taken, the host does not resolve, …): a
 * configuration problem, said in one line like the others, never a stack trace.
 */
export class ListenError extends Error {
  override readonly name = 'ListenError';
}

/** Why listening on `host:port` failed, in words, naming the variable to change. */
export function listenError(error: unknown, host: string, port: number): ListenError | undefined {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const why: Record<string, string> = {
    EADDRINUSE: 'the port is in use (stop what uses it, or set PORT to another port)',
    EACCES: 'permission denied (ports below 1024 need privileges: set PORT to another port)',
    EADDRNOTAVAIL: 'the address is not one of this machine’s (set HOST to one that is, e.g. 127.0.0.1)',
    ENOTFOUND: `the host "${host}" does not resolve (set HOST to an address, e.g. 127.0.0.1)`,
    EAI_AGAIN: `the host "${host}" could not be resolved now (set HOST to an address, e.g. 127.0.0.1)`,
    EAI_FAIL: `the host "${host}" does not resolve (set HOST to an address, e.g. 127.0.0.1)`,
  };
  const reason = code === undefined ? undefined : why[code];
  return reason === undefined ? undefined : new ListenError(`cannot listen on ${host}:${port}: ${reason}`);
}

/**
 * Binds `host:port` for a moment and lets it go: run before a slow start-up, so a taken port or a
 * host that does not resolve fails at once. Another process can still take the port before the real
 * listen, which then fails the same way (see `listenError`).
 */
export async function assertCanListen(host: string, port: number): Promise<void> {
  const probe = createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      probe.once('error', reject);
      probe.listen({ host, port, exclusive: true }, () => resolve());
    });
  } catch (error) {
    throw listenError(error, host, port) ?? error;
  } finally {
    await new Promise<void>((resolve) => (probe.listening ? probe.close(() => resolve()) : resolve()));
  }
}
