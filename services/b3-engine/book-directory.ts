import { bookStreamId } from '../../domain/b3/book-events.ts';
import type { EventStore } from '../../domain/shared/event-store.ts';

const DIRECTORY_STREAM = 'engine-books';
const DIRECTORY_SCHEMA_VERSION = 1;

/**
 * The symbols that have a `book-{symbol}` stream, kept as a snapshot of the pseudo-stream
 * `engine-books` in the B3 store (no events): after a restart the session clock must reach every
 * book, also those nothing has touched since, and an event store has no listing of its streams.
 *
 * The snapshot's version is the number of symbols and loading takes the highest. Two engine
 * instances adding different symbols at once can overwrite each other's; every `list` merges what
 * this instance knows back in, so the directory converges.
 */
export class BookDirectory {
  private readonly known = new Set<string>();

  /**
   * @param seedSymbols probed once, when the store has no directory yet (a data folder from before
   * the directory existed): those with a book stream go in.
   */
  constructor(
    private readonly store: EventStore,
    private readonly seedSymbols: readonly string[] = [],
  ) {}

  /** Every symbol with a book, as far as the store and this instance know. */
  async list(): Promise<string[]> {
    const snapshot = await this.store.loadSnapshot(DIRECTORY_STREAM, {
      schemaVersion: DIRECTORY_SCHEMA_VERSION,
    });
    const stored = snapshot ? (snapshot.state as { symbols: string[] }).symbols : await this.probe();
    const before = snapshot ? stored.length : -1;
    for (const symbol of stored) this.known.add(symbol);
    if (this.known.size > before) await this.save();
    return [...this.known].sort();
  }

  /** A book stream was created: remembered in the store. */
  async add(symbol: string): Promise<void> {
    if (this.known.has(symbol)) return;
    this.known.add(symbol);
    await this.list();
  }

  private async probe(): Promise<string[]> {
    const versions = await Promise.all(
      this.seedSymbols.map((symbol) => this.store.streamVersion(bookStreamId(symbol))),
    );
    return this.seedSymbols.filter((_, index) => versions[index]! >= 0);
  }

  private async save(): Promise<void> {
    await this.store.saveSnapshot({
      streamId: DIRECTORY_STREAM,
      version: this.known.size,
      state: { symbols: [...this.known].sort() },
      schemaVersion: DIRECTORY_SCHEMA_VERSION,
    });
  }
}
