#!/usr/bin/env node
// The `sluice` command (package.json "bin"). It lives outside dist/ so that npm links it at install
// time, before the first build; it then loads the built CLI, or says how to build it.
import { existsSync } from 'node:fs';
import process from 'node:process';
import { URL } from 'node:url';

const main = new URL('../dist/main.js', import.meta.url);
if (!existsSync(main)) {
  process.stderr.write('sluice: the CLI is not built yet; run `npm run build` in the Sluice checkout\n');
  process.exit(2);
}
await import(main.href);
