import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { describe, expect, it } from 'vitest';

import { allows, callerOf, parseApiTokens } from '../src/api-auth.js';
import { loadApiAuth } from '../src/config.js';

const A = 'a'.repeat(32);
const B = 'b'.repeat(32);

describe('API tokens', () => {
  it('parses named tokens with roles, from commas or lines, keeping only their hashes', () => {
    const tokens = parseApiTokens(`alice:operate:${A}\n# a comment\n bob:read:${B} ,`, 'SLUICE_API_TOKENS');
    expect(tokens.map((t) => [t.name, t.role])).toEqual([
      ['alice', 'operate'],
      ['bob', 'read'],
    ]);
    expect(JSON.stringify(tokens)).not.toContain(A);
    // A token may hold colons: everything after the role is the token.
    expect(parseApiTokens(`c:read:${A}:x`, 'X').length).toBe(1);
  });

  it.each([
    [`alice:admin:${A}`, /entry 1 \(alice\): the role must be read or operate/],
    ['alice:read:short', /at least 16 characters/],
    [`:read:${A}`, /entry 1: takes name:role:token/],
    [`a:read:${A},a:operate:${B}`, /the name a is used twice/],
    [`a:read:${A},b:operate:${A}`, /the same token is given to two names/],
    ['', /holds no name:role:token entry/],
  ])('refuses %j, naming the entry but never the token', (text, message) => {
    let error: Error | undefined;
    try {
      parseApiTokens(text, 'SLUICE_API_TOKENS');
    } catch (e) {
      error = e as Error;
    }
    expect(error?.message).toMatch(message);
    expect(error?.message).not.toContain(A);
  });

  it('finds the caller of a bearer token; unknown or missing is nobody', () => {
    const auth = { mode: 'tokens' as const, tokens: parseApiTokens(`alice:operate:${A},bob:read:${B}`, 'X') };
    expect(callerOf(auth, `Bearer ${A}`)).toEqual({ name: 'alice', role: 'operate' });
    expect(callerOf(auth, `bearer ${B}`)).toEqual({ name: 'bob', role: 'read' });
    expect(callerOf(auth, `Bearer ${A}x`)).toBeUndefined();
    expect(callerOf(auth, A)).toBeUndefined();
    expect(callerOf(auth, undefined)).toBeUndefined();
    expect(allows({ name: 'bob', role: 'read' }, 'operate')).toBe(false);
    expect(allows({ name: 'bob', role: 'read' }, 'read')).toBe(true);
  });

  it('needs tokens (inline or from a file) unless SLUICE_API_AUTH=off says otherwise', async () => {
    expect(() => loadApiAuth({})).toThrow(/the HTTP API needs tokens: set SLUICE_API_TOKENS=.*or SLUICE_API_AUTH=off/);
    expect(loadApiAuth({ SLUICE_API_AUTH: 'off' })).toEqual({ mode: 'off' });
    expect(() => loadApiAuth({ SLUICE_API_AUTH: 'off', SLUICE_API_TOKENS: `a:read:${A}` })).toThrow(/both set/);
    expect(() => loadApiAuth({ SLUICE_API_AUTH: 'maybe' })).toThrow(/SLUICE_API_AUTH must be one of on, off/);
    const dir = await mkdtemp(path.join(tmpdir(), 'sluice-tokens-'));
    try {
      const file = path.join(dir, 'tokens');
      await writeFile(file, `# operators\nalice:operate:${A}\nbob:read:${B}\n`);
      const auth = loadApiAuth({ SLUICE_API_TOKENS_FILE: file });
      expect(auth.mode === 'tokens' && auth.tokens.map((t) => t.name)).toEqual(['alice', 'bob']);
      expect(() => loadApiAuth({ SLUICE_API_TOKENS_FILE: path.join(dir, 'none') })).toThrow(
        /SLUICE_API_TOKENS_FILE: cannot read .*none \(ENOENT\)/,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
