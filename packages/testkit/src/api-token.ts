import { randomBytes } from 'node:crypto';

let token: string | undefined;

/** The reporter API token tests use: `operate` role, name `testkit`, random per test process. */
export function testApiToken(): string {
  token ??= randomBytes(24).toString('hex');
  return token;
}

/** The reporter settings that give the test token the `operate` role. */
export function apiAuthEnv(): Record<string, string> {
  return { SLUICE_API_TOKENS: `testkit:operate:${testApiToken()}` };
}

/** Headers for a call to the reporter's API as the test token (JSON body or none). */
export function apiHeaders(token = testApiToken()): Record<string, string> {
  return { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
}

/** True when `env` already says how the reporter authenticates (tokens, a file, or off). */
export const choosesApiAuth = (env: Record<string, string>): boolean =>
  ['SLUICE_API_TOKENS', 'SLUICE_API_TOKENS_FILE', 'SLUICE_API_AUTH'].some((name) => name in env);
