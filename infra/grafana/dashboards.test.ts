import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

/** Every metric a dashboard queries is one the code registers: a renamed metric fails here, not on a blank panel. */
async function sources(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return Promise.all(
    entries
      .filter((entry) => entry.isFile() && entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts'))
      .map((entry) => readFile(join(entry.parentPath, entry.name), 'utf8')),
  );
}

describe('Grafana dashboards', () => {
  it('query only metrics the code registers', async () => {
    const code = (await Promise.all(['adapters', 'projections', 'services'].map(sources))).flat().join('\n');
    const registered = new Set([...code.matchAll(/name: '(tradecore_[a-z_]+)'/g)].map((match) => match[1]));
    const dashboards = join('infra', 'grafana', 'dashboards');
    for (const file of await readdir(dashboards)) {
      if (!file.endsWith('.json')) continue;
      const dashboard = JSON.parse(await readFile(join(dashboards, file), 'utf8'));
      expect(dashboard.uid, file).toBeTruthy();
      const queried = new Set(
        [...JSON.stringify(dashboard).matchAll(/tradecore_[a-z_]+/g)].map(([name]) =>
          name.replace(/_(bucket|count|sum)$/, ''),
        ),
      );
      expect(queried.size, file).toBeGreaterThan(0);
      for (const name of queried) expect(registered, `${file} queries ${name}`).toContain(name);
    }
  });
});
