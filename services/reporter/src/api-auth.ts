import { createHash, timingSafeEqual } from 'node:crypto';

import { ConfigError } from '@sluice/core';

/** `read`: the GET routes. `operate`: also starting runs and steering them. */
export type ApiRole = 'read' | 'operate';

/** A named bearer token; only its SHA-256 is kept, so the token itself is never held or shown. */
export interface ApiToken {
  name: string;
  role: ApiRole;
  sha256: Buffer;
}

/** How the HTTP API authenticates: named tokens, or (explicitly, for local demos) not at all. */
export type ApiAuth = { mode: 'tokens'; tokens: readonly ApiToken[] } | { mode: 'off' };

/** Who made a request: the token's name and role, or nobody when auth is off. */
export type Caller = { name: string; role: ApiRole } | { name: undefined; role: 'operate' };

/** Shorter tokens are guessable; `openssl rand -hex 32` gives 64 characters. */
export const MIN_TOKEN_LENGTH = 16;
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$/;

const sha256 = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

/**
 * Parses `name:role:token` entries separated by commas or new lines (`#` starts a comment line),
 * as `SLUICE_API_TOKENS` or the file named by `SLUICE_API_TOKENS_FILE` hold them. Errors name the
 * variable and the entry's position or name, never the token.
 */
export function parseApiTokens(text: string, variable: string): ApiToken[] {
  const entries = text
    .split(/[,\n]/)
    .map((e) => e.trim())
    .filter((e) => e !== '' && !e.startsWith('#'));
  const tokens: ApiToken[] = [];
  entries.forEach((entry, i) => {
    const [name, role, ...rest] = entry.split(':');
    const token = rest.join(':');
    const where = `${variable} entry ${i + 1}`;
    if (!name || !NAME.test(name))
      throw new ConfigError(`${where}: takes name:role:token (name of letters, digits, _ . @ -)`);
    if (role !== 'read' && role !== 'operate')
      throw new ConfigError(`${where} (${name}): the role must be read or operate`);
    if (token.length < MIN_TOKEN_LENGTH)
      throw new ConfigError(`${where} (${name}): the token must be at least ${MIN_TOKEN_LENGTH} characters`);
    if (tokens.some((t) => t.name === name)) throw new ConfigError(`${where}: the name ${name} is used twice`);
    const digest = sha256(token);
    if (tokens.some((t) => timingSafeEqual(t.sha256, digest)))
      throw new ConfigError(`${where} (${name}): the same token is given to two names`);
    tokens.push({ name, role: role, sha256: digest });
  });
  if (tokens.length === 0) throw new ConfigError(`${variable} holds no name:role:token entry`);
  return tokens;
}

/**
 * The caller behind an `Authorization: Bearer …` header, or undefined when there is none or the
 * token is unknown. Every known token is compared, over fixed-length hashes, so the time taken
 * says nothing about which token or how much of it matched.
 */
export function callerOf(auth: ApiAuth, authorization: string | undefined): Caller | undefined {
  if (auth.mode === 'off') return { name: undefined, role: 'operate' };
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization ?? '');
  if (!match) return undefined;
  const presented = sha256(match[1]!);
  let found: ApiToken | undefined;
  for (const token of auth.tokens) if (timingSafeEqual(token.sha256, presented)) found = token;
  return found ? { name: found.name, role: found.role } : undefined;
}

/** May this caller do what `needs` asks? `operate` includes `read`. */
export const allows = (caller: Caller, needs: ApiRole): boolean => needs === 'read' || caller.role === 'operate';
