/**
 * Bounded waits: a server that hangs must make a check fail, a status answer, or a stop go on, not
 * hang with it. Here for the projector's own; the services use them too.
 */

/** What `withTimeout` rejects with once its time has passed. */
export class NoAnswer extends Error {
  constructor(readonly ms: number) {
    super(`no answer within ${ms} ms`);
  }
}

/** `promise`, or a rejection "no answer within `ms` ms" (a `NoAnswer`) once that has passed. */
export function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new NoAnswer(ms)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * Resolves when `work` does, or after `ms` having called `onCut` (the work is left running; its
 * failure then goes unheard). Rejects when `work` fails in time.
 */
export function withDeadline(work: Promise<unknown>, ms: number, onCut: () => void): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      work.catch(() => {});
      onCut();
      resolve();
    }, ms);
  });
  return Promise.race([work.then(() => undefined), deadline]).finally(() => clearTimeout(timer));
}
