import { readFile } from 'node:fs/promises';
import path from 'node:path';

import { REPO_ROOT } from '@sluice/testkit';
import { describe, expect, it } from 'vitest';

import { envReadByTests } from './env-vars-in-code.js';

interface TurboJson {
  globalEnv?: string[];
  globalPassThroughEnv?: string[];
  tasks: Record<string, { env?: string[]; passThroughEnv?: string[] }>;
}

/**
 * turbo runs tasks in strict env mode: a variable it is not told about never reaches the test
 * process. A `MONGODB_URI` naming a real mongod, or a `SLUICE_FUZZ_SEED` to replay, would then be
 * dropped silently by `npm test`.
 */
describe('turbo.json', () => {
  it('passes every variable the tests read through to the test task', async () => {
    const turbo = JSON.parse(await readFile(path.join(REPO_ROOT, 'turbo.json'), 'utf8')) as TurboJson;
    const test = turbo.tasks.test ?? {};
    const passed = new Set([
      ...(turbo.globalEnv ?? []),
      ...(turbo.globalPassThroughEnv ?? []),
      ...(test.env ?? []),
      ...(test.passThroughEnv ?? []),
    ]);
    const read = await envReadByTests();
    for (const expected of ['MONGODB_URI', 'SLUICE_FUZZ_SEED', 'NATS_SERVER_BIN', 'PG_BIN'])
      expect(read.has(expected)).toBe(true);
    const missing = [...read]
      .filter(([name]) => !passed.has(name))
      .map(([name, files]) => `${name} (${files.join(', ')})`);
    expect(missing, 'variables read by test code that turbo does not pass to tests').toEqual([]);
  });
});
