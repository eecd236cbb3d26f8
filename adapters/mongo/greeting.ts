import { connect } from 'node:net';

/** How long a server is given to speak unasked before it is taken for one that waits, as MongoDB does. */
const GREETING_WAIT_MS = 300;

/**
 * Refuses a `mongodb://` URL whose server speaks before it is spoken to (MySQL's greeting, an SMTP
 * banner): a MongoDB server never does. The driver (6.x) reads such a greeting as a reply and
 * loops without end, blocking the process and growing its memory by about 100 MB/s, where a start
 * must fail in one line. A host that cannot be reached is left to the driver to report; a
 * `mongodb+srv://` URL names no host to ask.
 */
export async function assertNoServerSpeaksFirst(url: string, waitMs = GREETING_WAIT_MS): Promise<void> {
  for (const host of hostsOf(url)) {
    const greeting = await firstBytes(host, waitMs);
    if (greeting)
      throw new Error(
        `${host.host}:${host.port} spoke first (${JSON.stringify(greeting)}), as a MongoDB server never does: is it another kind of server?`,
      );
  }
}

/** The hosts of a `mongodb://` URL (`user:password@h1:27017,h2/db?…`); none for `mongodb+srv://`. */
export function hostsOf(url: string): Array<{ host: string; port: number }> {
  const match = /^mongodb:\/\/(?:[^@/]*@)?([^/?]+)/.exec(url);
  if (!match) return [];
  return match[1]!.split(',').map((entry) => {
    const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry);
    const [host, port] = bracketed ? [bracketed[1]!, bracketed[2]] : entry.split(':');
    return { host: host!, port: Number(port ?? 27017) };
  });
}

/** The first bytes the server sends unasked within `waitMs`, printable, or undefined. */
function firstBytes(target: { host: string; port: number }, waitMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = connect(target);
    const done = (greeting?: string) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(greeting);
    };
    const timer = setTimeout(() => done(), waitMs);
    socket.once('data', (data: Buffer) =>
      done(
        data
          .toString('latin1')
          .replace(/[^\x20-\x7e]/g, '.')
          .slice(0, 40),
      ),
    );
    socket.once('error', () => done());
  });
}
