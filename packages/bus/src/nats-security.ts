import { access, readFile } from 'node:fs/promises';

import {
  type Authenticator,
  credsAuthenticator,
  nkeyAuthenticator,
  nkeys,
  type TlsOptions,
} from '@nats-io/transport-node';
import { ConfigError } from '@sluice/core';

import { probeNatsTls } from './nats-tls-probe.js';

/**
 * How Sluice proves itself to NATS and checks the server. At most one way to authenticate is set
 * (the config loader refuses more). Secret values live only here and in the connection: they are
 * never put into a message, an error or a log line.
 */
export interface NatsSecurity {
  /** `NATS_USER`, with `pass` (`NATS_PASSWORD`, alias `NATS_PASS`). */
  user?: string;
  pass?: string;
  /** `NATS_TOKEN`. */
  token?: string;
  /** Path of a file holding a user NKey seed, `SU…` (`NATS_NKEY`). */
  nkeyFile?: string;
  /** Path of a `.creds` file (user JWT and NKey seed) for an operator/JWT setup (`NATS_CREDS`). */
  credsFile?: string;
  /**
   * Present when TLS is required (a `tls://` URL, `NATS_TLS=true`, `NATS_CA` or a client
   * certificate): a server that does not offer TLS is refused.
   */
  tls?: {
    /** PEM CA bundle that signed the server's certificate (`NATS_CA`); default: the system CAs. */
    caFile?: string;
    /** PEM client certificate and key, for servers that verify clients (`NATS_CERT`, `NATS_KEY`). */
    certFile?: string;
    keyFile?: string;
  };
}

const SCHEMES = new Set(['nats:', 'tls:']);

/**
 * Checks `NATS_URL` (comma-separated `nats://`, `tls://` or bare `host:port`). Credentials inside
 * a URL are refused: the client would ignore them silently, and URLs end up in logs and errors.
 */
export function parseNatsServers(servers: string): { urls: string[]; tlsUrl: boolean } {
  const urls = servers
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (urls.length === 0) throw new ConfigError('NATS_URL holds no server');
  let tlsUrl = false;
  for (const [i, raw] of urls.entries()) {
    const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(raw)?.[1]?.toLowerCase();
    let url: URL;
    try {
      url = new URL(scheme ? raw : `nats://${raw}`);
    } catch {
      throw new ConfigError(`NATS_URL: server ${i + 1} is not a URL or host:port`);
    }
    if (url.username !== '' || url.password !== '') {
      throw new ConfigError(
        `NATS_URL: server ${i + 1} carries credentials; use NATS_USER/NATS_PASSWORD or NATS_TOKEN instead`,
      );
    }
    if (!SCHEMES.has(url.protocol))
      throw new ConfigError(`NATS_URL: server ${i + 1} uses ${url.protocol}// (use nats:// or tls://)`);
    if (url.protocol === 'tls:') tlsUrl = true;
  }
  return { urls, tlsUrl };
}

/** The variables naming a way to authenticate that are set. */
export function natsAuthMethods(security: Pick<NatsSecurity, 'user' | 'token' | 'nkeyFile' | 'credsFile'>): string[] {
  return [
    ...(security.user ? ['NATS_USER'] : []),
    ...(security.token ? ['NATS_TOKEN'] : []),
    ...(security.nkeyFile ? ['NATS_NKEY'] : []),
    ...(security.credsFile ? ['NATS_CREDS'] : []),
  ];
}

/** How the client authenticates, for messages: names the variable, never a secret. */
export function describeNatsAuth(security: NatsSecurity): string {
  if (security.user) return `user "${security.user}" (NATS_USER/NATS_PASSWORD)`;
  if (security.token) return 'the token in NATS_TOKEN';
  if (security.nkeyFile) return `the NKey seed in ${security.nkeyFile} (NATS_NKEY)`;
  if (security.credsFile) return `the creds file ${security.credsFile} (NATS_CREDS)`;
  return 'no credentials (set NATS_USER/NATS_PASSWORD, NATS_TOKEN, NATS_NKEY or NATS_CREDS)';
}

async function readSecretFile(variable: string, file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    throw new ConfigError(`${variable}: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

async function assertReadable(variable: string, file: string): Promise<void> {
  try {
    await access(file);
    await readFile(file);
  } catch (error) {
    throw new ConfigError(`${variable}: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

const USER_SEED = /^SU[A-Z2-7]{50,}$/;

async function nkeySeedAuthenticator(file: string): Promise<Authenticator> {
  const seed = (await readSecretFile('NATS_NKEY', file))
    .split(/\r?\n/)
    .map((line) => line.trim())
    .find((line) => USER_SEED.test(line));
  if (!seed) throw new ConfigError(`NATS_NKEY: ${file} holds no user NKey seed (a line starting with SU)`);
  const bytes = new TextEncoder().encode(seed);
  try {
    nkeys.fromSeed(bytes);
  } catch {
    throw new ConfigError(`NATS_NKEY: the seed in ${file} is not a valid NKey seed`);
  }
  return nkeyAuthenticator(bytes);
}

async function credsFileAuthenticator(file: string): Promise<Authenticator> {
  const text = await readSecretFile('NATS_CREDS', file);
  if (!/-{3,}BEGIN NATS USER JWT-{3,}/.test(text) || !/-{3,}BEGIN USER NKEY SEED-{3,}/.test(text)) {
    throw new ConfigError(`NATS_CREDS: ${file} is not a NATS creds file (it needs a user JWT and an NKey seed block)`);
  }
  return credsAuthenticator(new TextEncoder().encode(text));
}

/** The client options for authentication and TLS; reads and checks the key files. */
export async function natsSecurityOptions(
  security: NatsSecurity,
): Promise<{ authenticator?: Authenticator; user?: string; pass?: string; token?: string; tls?: TlsOptions }> {
  const options: { authenticator?: Authenticator; user?: string; pass?: string; token?: string; tls?: TlsOptions } = {};
  if (security.user) {
    options.user = security.user;
    options.pass = security.pass ?? '';
  } else if (security.token) {
    options.token = security.token;
  } else if (security.nkeyFile) {
    options.authenticator = await nkeySeedAuthenticator(security.nkeyFile);
  } else if (security.credsFile) {
    options.authenticator = await credsFileAuthenticator(security.credsFile);
  }
  if (security.tls) {
    const { caFile, certFile, keyFile } = security.tls;
    if (caFile) await assertReadable('NATS_CA', caFile);
    if (certFile) await assertReadable('NATS_CERT', certFile);
    if (keyFile) await assertReadable('NATS_KEY', keyFile);
    options.tls = { ...(caFile ? { caFile } : {}), ...(certFile ? { certFile } : {}), ...(keyFile ? { keyFile } : {}) };
  }
  return options;
}

const UNTRUSTED_CERT = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'CERT_SIGNATURE_FAILURE',
]);

function errorChain(error: unknown): Array<Error & { code?: unknown }> {
  const chain: Array<Error & { code?: unknown }> = [];
  for (let e: unknown = error; e instanceof Error && chain.length < 5; e = e.cause) chain.push(e);
  return chain;
}

/** Replaces every secret value of `security` found in `text`, in case a library echoed one. */
export function scrubNatsSecrets(text: string, security: NatsSecurity): string {
  let out = text;
  for (const secret of [security.pass, security.token]) {
    if (secret && secret.length >= 3) out = out.split(secret).join('[redacted]');
  }
  return out;
}

const CLIENT_CERT_REFUSED =
  /ALERT_(BAD_CERTIFICATE|CERTIFICATE_REQUIRED|UNKNOWN_CA|ACCESS_DENIED|UNSUPPORTED_CERTIFICATE|CERTIFICATE_UNKNOWN|HANDSHAKE_FAILURE)$/;

/**
 * Why the first connection failed, in words that name the setting to fix. Authentication and TLS
 * problems are named as such, so a service stops at start with the reason instead of retrying.
 * `tlsCode` is what {@link probeNatsTls} found, when the client only saw a timeout.
 */
export function describeNatsConnectError(
  error: unknown,
  security: NatsSecurity & { servers: string },
  tlsCode?: string,
): string {
  const chain = errorChain(error);
  const where = `NATS at ${security.servers} (NATS_URL)`;
  const code =
    tlsCode ?? chain.map((e) => (typeof e.code === 'string' ? e.code : undefined)).find((c) => c !== undefined);
  const text = chain.map((e) => e.message).join(': ');
  let reason: string;
  if (chain.some((e) => e.name === 'UserAuthenticationExpiredError')) {
    reason = `the server refused ${describeNatsAuth(security)}: the user's credentials have expired`;
  } else if (chain.some((e) => e.name === 'AuthorizationError') || /authorization violation/i.test(text)) {
    reason = `the server refused ${describeNatsAuth(security)} (authorization violation)`;
  } else if (code !== undefined && UNTRUSTED_CERT.has(code)) {
    reason = `TLS: the server's certificate is not trusted (${code}); set NATS_CA to the CA that signed it`;
  } else if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    reason = "TLS: the server's certificate does not name the host in NATS_URL";
  } else if (code === 'CERT_HAS_EXPIRED') {
    reason = "TLS: the server's certificate has expired";
  } else if (code !== undefined && CLIENT_CERT_REFUSED.test(code)) {
    reason = security.tls?.certFile
      ? `TLS: the server refused the client certificate in ${security.tls.certFile} (NATS_CERT/NATS_KEY; ${code})`
      : `TLS: the server requires a client certificate; set NATS_CERT/NATS_KEY (${code})`;
  } else if (/server does not support 'tls'|tls.*not available/i.test(text)) {
    reason = 'TLS is required (tls:// URL, NATS_TLS, NATS_CA or NATS_CERT) but the server does not offer it';
  } else {
    reason = chain[0]?.message ?? String(error);
  }
  return scrubNatsSecrets(`cannot connect to ${where}: ${reason}`, security);
}

/** {@link describeNatsConnectError}, first asking the server over TLS when the client only timed out. */
export async function explainNatsConnectError(
  error: unknown,
  security: NatsSecurity & { servers: string; connectTimeoutMs?: number },
): Promise<string> {
  let tlsCode: string | undefined;
  if (security.tls && errorChain(error).some((e) => e.name === 'TimeoutError')) {
    const first = parseNatsServers(security.servers).urls[0]!;
    tlsCode = await probeNatsTls(first, security.tls, Math.min(security.connectTimeoutMs ?? 5_000, 3_000)).catch(
      () => undefined,
    );
  }
  return describeNatsConnectError(error, security, tlsCode);
}
