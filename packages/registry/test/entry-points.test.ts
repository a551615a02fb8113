import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const DIST = fileURLToPath(new URL('../dist/', import.meta.url));

/** A loader hook that refuses to load the MongoDB driver or the AWS SDK: a process that needs them fails. */
const HOOKS = `export async function load(url, context, next) {
  if (/\\/node_modules\\/(mongodb|bson|@aws-sdk|@smithy)\\//.test(url)) throw new Error('cloud SDK loaded: ' + url);
  return next(url, context);
}
`;

describe('entry points: the cloud adapters load only when chosen', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'sluice-registry-entry-'));
    await writeFile(path.join(dir, 'hooks.mjs'), HOOKS);
    await writeFile(
      path.join(dir, 'register.mjs'),
      `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(path.join(dir, 'hooks.mjs')).href)});\n`,
    );
    await writeFile(path.join(dir, 'tenants.json'), '[]');
    await writeFile(
      path.join(dir, 'child.mjs'),
      `const { createRegistry, loadRegistryConfig } = await import(${JSON.stringify(pathToFileURL(path.join(DIST, 'index.js')).href)});
const registry = await createRegistry(loadRegistryConfig(JSON.parse(process.argv[2])));
for await (const row of registry.list()) console.log(JSON.stringify(row));
await registry.close();
console.log('ok');
`,
    );
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const start = (env: Record<string, string>) =>
    run(
      process.execPath,
      ['--import', path.join(dir, 'register.mjs'), path.join(dir, 'child.mjs'), JSON.stringify(env)],
      { cwd: dir },
    );

  it('a file registry runs without the MongoDB driver or the AWS SDK', async () => {
    const { stdout } = await start({ SLUICE_REGISTRY: 'file', SLUICE_TENANTS_FILE: path.join(dir, 'tenants.json') });
    expect(stdout.trim()).toBe('ok');
  });

  it.each([
    ['mongodb', { SLUICE_REGISTRY: 'mongodb', MONGODB_URI: 'mongodb://127.0.0.1:1/registry' }],
    ['dynamodb', { SLUICE_REGISTRY: 'dynamodb' }],
  ])('choosing %s loads its SDK (the hook sees it)', async (_kind, env) => {
    await expect(start(env)).rejects.toThrow(/cloud SDK loaded/);
  });
});
