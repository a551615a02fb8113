import { readFile } from 'node:fs/promises';
import path from 'node:path';

import { REPO_ROOT } from '@sluice/testkit';
import semver from 'semver';
import { describe, expect, it } from 'vitest';

interface LockEntry {
  version?: string;
  engines?: Record<string, string> | string[];
}

const readJson = async <T>(file: string): Promise<T> =>
  JSON.parse(await readFile(path.join(REPO_ROOT, file), 'utf8')) as T;

/**
 * `engines` is a promise to whoever installs Sluice: every Node version in it must be one that
 * every locked package accepts (so `npm ci` warns nothing), and the Node running the tests (CI's)
 * must be in it.
 */
describe('engines', () => {
  it('the root range lies inside every locked package engines.node range', async () => {
    const root = await readJson<{ engines: { node: string } }>('package.json');
    const lock = await readJson<{ packages: Record<string, LockEntry> }>('package-lock.json');
    const ours = root.engines.node;
    expect(semver.validRange(ours), `engines.node "${ours}" is not a semver range`).not.toBeNull();
    const refusing: string[] = [];
    for (const [where, entry] of Object.entries(lock.packages)) {
      if (where === '' || !where.includes('node_modules/') || Array.isArray(entry.engines)) continue;
      const theirs = entry.engines?.node;
      if (theirs === undefined) continue;
      if (!semver.subset(ours, theirs))
        refusing.push(`${where.replace(/^.*node_modules\//, '')}@${entry.version}: ${theirs}`);
    }
    expect(refusing, `packages whose engines.node does not include all of "${ours}"`).toEqual([]);
  });

  it('the Node running the tests is in the range', async () => {
    const root = await readJson<{ engines: { node: string } }>('package.json');
    expect(semver.satisfies(process.version, root.engines.node)).toBe(true);
  });
});
