import { describe, expect, it } from 'vitest';
import { GroupCommit } from './group-commit.ts';

/** A writer whose writes finish when the test says so, recording each group it was given. */
function controlledWriter() {
  const groups: string[][] = [];
  const finish: Array<() => void> = [];
  const write = (group: string[]) => {
    groups.push(group);
    return new Promise<Array<string | Error>>((resolve) => {
      finish.push(() =>
        resolve(
          group.map((request) =>
            request.startsWith('bad') ? new Error(`refused ${request}`) : `ok ${request}`,
          ),
        ),
      );
    });
  };
  return { groups, finish, write };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('GroupCommit', () => {
  it('writes a lone request at once, and those arriving meanwhile together in the next group', async () => {
    const writer = controlledWriter();
    const commit = new GroupCommit(writer.write, { inFlight: 1 });
    const first = commit.submit('a');
    expect(writer.groups).toEqual([['a']]);
    const rest = ['b', 'c', 'd'].map((request) => commit.submit(request));
    expect(writer.groups).toHaveLength(1);
    writer.finish[0]!();
    expect(await first).toBe('ok a');
    await settle();
    expect(writer.groups).toEqual([['a'], ['b', 'c', 'd']]);
    writer.finish[1]!();
    expect(await Promise.all(rest)).toEqual(['ok b', 'ok c', 'ok d']);
  });

  it('gives each request its own outcome: one refused does not fail the others', async () => {
    const writer = controlledWriter();
    const commit = new GroupCommit(writer.write, { inFlight: 1 });
    const first = commit.submit('a');
    const good = commit.submit('b');
    const bad = commit.submit('bad-c');
    writer.finish[0]!();
    await first;
    await settle();
    writer.finish[1]!();
    await expect(good).resolves.toBe('ok b');
    await expect(bad).rejects.toThrow('refused bad-c');
  });

  it('fails every request of a group whose write fails, and goes on with the next group', async () => {
    let calls = 0;
    const commit = new GroupCommit<string, string>(
      async (group) => {
        calls += 1;
        if (calls === 1) throw new Error('connection lost');
        return group.map((request) => `ok ${request}`);
      },
      { inFlight: 1 },
    );
    await expect(commit.submit('a')).rejects.toThrow('connection lost');
    await expect(commit.submit('b')).resolves.toBe('ok b');
  });

  it('orders a group by key, keeping the order of requests with the same key, and caps its size', async () => {
    const writer = controlledWriter();
    const commit = new GroupCommit(writer.write, {
      inFlight: 1,
      maxGroup: 4,
      orderBy: (request) => request.slice(0, 1),
    });
    const all = [
      commit.submit('z0'),
      ...['b1', 'a2', 'b3', 'a4', 'c5', 'a6'].map((request) => commit.submit(request)),
    ];
    writer.finish[0]!();
    await settle();
    expect(writer.groups[1]).toEqual(['a2', 'a4', 'b1', 'b3']);
    writer.finish[1]!();
    await settle();
    expect(writer.groups[2]).toEqual(['a6', 'c5']);
    writer.finish[2]!();
    await Promise.all(all);
  });

  it('writes up to inFlight groups at once', () => {
    const writer = controlledWriter();
    const commit = new GroupCommit(writer.write, { inFlight: 2 });
    for (const request of ['a', 'b', 'c', 'd']) void commit.submit(request);
    expect(writer.groups).toEqual([['a'], ['b']]);
  });

  it('with gather, waits for the turn of the event loop to end and writes what it submitted as one group', async () => {
    const writer = controlledWriter();
    const commit = new GroupCommit(writer.write, { inFlight: 1, gather: true });
    const all = ['a', 'b', 'c'].map((request) => commit.submit(request));
    expect(writer.groups).toEqual([]);
    await settle();
    expect(writer.groups).toEqual([['a', 'b', 'c']]);
    writer.finish[0]!();
    expect(await Promise.all(all)).toEqual(['ok a', 'ok b', 'ok c']);
  });
});
