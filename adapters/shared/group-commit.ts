/**
 * Group commit: requests that arrive while earlier ones are being written wait, and are then
 * written together by one call of `write` — one round trip and one commit for many callers,
 * each of whom still gets its own outcome. A request that finds a free slot is written at once,
 * so a lone caller waits no longer than it would without the group — or, with `gather`, at the
 * end of the current turn of the event loop, together with whatever else that turn submits.
 */
interface Waiting<Request, Outcome> {
  request: Request;
  resolve: (outcome: Outcome) => void;
  reject: (error: Error) => void;
}

export class GroupCommit<Request, Outcome> {
  private queued: Array<Waiting<Request, Outcome>> = [];
  private writing = 0;
  /** A write is due at the end of this turn of the event loop (`gather`). */
  private gathering = false;

  constructor(
    /** Writes a group; answers one outcome per request, in order: the result, or the Error it gets. */
    private readonly write: (group: Request[]) => Promise<Array<Outcome | Error>>,
    private readonly options: {
      /** How many groups may be written at once. */
      inFlight: number;
      /** The most requests one group takes. */
      maxGroup?: number;
      /**
       * A group's requests are written in this key's order (stable: one key's requests keep
       * their order), so that two groups written at once take their locks in the same order.
       */
      orderBy?: (request: Request) => string;
      /** Waits for the current turn of the event loop to end before writing, gathering what it submits. */
      gather?: boolean;
    },
  ) {}

  submit(request: Request): Promise<Outcome> {
    return new Promise((resolve, reject) => {
      this.queued.push({ request, resolve, reject });
      if (!this.options.gather) this.pump();
      else if (!this.gathering) {
        this.gathering = true;
        setImmediate(() => {
          this.gathering = false;
          this.pump();
        });
      }
    });
  }

  private pump(): void {
    while (this.writing < this.options.inFlight && this.queued.length > 0) {
      const group = this.queued.splice(0, this.options.maxGroup ?? 500);
      const { orderBy } = this.options;
      if (orderBy && group.length > 1) {
        const keys = new Map(group.map((entry) => [entry, orderBy(entry.request)]));
        group.sort((a, b) => {
          const left = keys.get(a)!;
          const right = keys.get(b)!;
          return left < right ? -1 : left > right ? 1 : 0;
        });
      }
      this.writing += 1;
      void this.write(group.map((entry) => entry.request))
        .then(
          (outcomes) =>
            group.forEach((entry, index) => {
              const outcome = outcomes[index];
              if (outcome instanceof Error) entry.reject(outcome);
              else entry.resolve(outcome as Outcome);
            }),
          (error: unknown) => {
            const failure = error instanceof Error ? error : new Error(String(error));
            for (const entry of group) entry.reject(failure);
          },
        )
        .finally(() => {
          this.writing -= 1;
          this.pump();
        });
    }
  }
}
