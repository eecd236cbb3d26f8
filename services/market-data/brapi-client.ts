/**
 * A live Brapi client (`GET {baseUrl}/api/quote/{tickers}`): a timeout per request, bounded
 * retries with backoff, and a circuit breaker so a Brapi outage costs one fast failure per poll
 * instead of a pile of hanging requests. Never needed by tests or demos (the random walk and the
 * recordings are), and never called without being configured.
 */
import { parseBrapiRecording, type Quote } from './quotes.ts';

export interface BrapiClientOptions {
  /** Default `https://brapi.dev`. */
  baseUrl?: string;
  /** Brapi's API token, sent as a bearer token. */
  token?: string;
  /** Per request (default 5 s). */
  timeoutMs?: number;
  /** Attempts per fetch (default 3), with `retryDelayMs` doubling between them (default 200 ms). */
  attempts?: number;
  retryDelayMs?: number;
  /** Consecutive failed fetches that open the circuit (default 5), and how long it stays open (default 30 s). */
  failureThreshold?: number;
  openForMs?: number;
  fetch?: typeof fetch;
  now?: () => number;
}

export class CircuitOpen extends Error {
  override readonly name = 'CircuitOpen';
}

export class BrapiClient {
  private failures = 0;
  private openUntil = 0;
  private readonly fetchImpl: typeof fetch;
  private readonly now: () => number;

  constructor(private readonly options: BrapiClientOptions = {}) {
    this.fetchImpl = options.fetch ?? fetch;
    this.now = options.now ?? Date.now;
  }

  get circuit(): 'closed' | 'open' {
    return this.now() < this.openUntil ? 'open' : 'closed';
  }

  /** The current quotes of the tickers; throws `CircuitOpen` while Brapi is considered down. */
  async quotes(tickers: readonly string[]): Promise<Quote[]> {
    if (this.circuit === 'open')
      throw new CircuitOpen(`Brapi circuit open for ${this.openUntil - this.now()} ms`);
    const attempts = Math.max(1, this.options.attempts ?? 3);
    let delay = this.options.retryDelayMs ?? 200;
    let lastError: unknown;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      try {
        const quotes = await this.fetchOnce(tickers);
        this.failures = 0;
        return quotes;
      } catch (error) {
        lastError = error;
        if (attempt < attempts) {
          await new Promise((resolve) => setTimeout(resolve, delay));
          delay *= 2;
        }
      }
    }
    this.failures += 1;
    if (this.failures >= (this.options.failureThreshold ?? 5)) {
      this.openUntil = this.now() + (this.options.openForMs ?? 30_000);
      this.failures = 0;
    }
    throw lastError;
  }

  private async fetchOnce(tickers: readonly string[]): Promise<Quote[]> {
    const base = (this.options.baseUrl ?? 'https://brapi.dev').replace(/\/$/, '');
    const url = `${base}/api/quote/${tickers.map(encodeURIComponent).join(',')}`;
    const response = await this.fetchImpl(url, {
      headers: {
        accept: 'application/json',
        ...(this.options.token ? { authorization: `Bearer ${this.options.token}` } : {}),
      },
      signal: AbortSignal.timeout(this.options.timeoutMs ?? 5_000),
    });
    if (!response.ok) throw new Error(`Brapi answered ${response.status} for ${url}`);
    return parseBrapiRecording(await response.text(), 'brapi');
  }
}
