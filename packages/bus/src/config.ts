import { ConfigError, type Env, envReader } from '@sluice/core';

import type { BusConfig } from './bus.js';
import { natsAuthMethods, parseNatsServers } from './nats-security.js';

/**
 * Reads `NATS_URL` (default nats://127.0.0.1:4222; `tls://` URLs require TLS), one of
 * `NATS_USER`/`NATS_PASSWORD` (`NATS_PASS` is an older alias), `NATS_TOKEN`, `NATS_NKEY` (seed file) or `NATS_CREDS` (creds file),
 * and TLS settings `NATS_CA`, `NATS_CERT`/`NATS_KEY`, `NATS_TLS`. Names follow the `nats` CLI.
 * `SLUICE_TOPOLOGY_CHECK_INTERVAL` (default 2s): how often services look for their streams.
 * See docs/security.md.
 */
export function loadBusConfig(env: Env, name: string): BusConfig {
  const e = envReader(env);
  const servers = e.string('NATS_URL', 'nats://127.0.0.1:4222');
  const { tlsUrl } = parseNatsServers(servers);
  const user = e.optional('NATS_USER');
  const pass = natsPassword(e.optional('NATS_PASSWORD'), e.optional('NATS_PASS'));
  const token = e.optional('NATS_TOKEN');
  const nkeyFile = e.optional('NATS_NKEY');
  const credsFile = e.optional('NATS_CREDS');
  if (pass !== undefined && user === undefined) throw new ConfigError('NATS_PASSWORD is set without NATS_USER');
  const methods = natsAuthMethods({ user, token, nkeyFile, credsFile });
  if (methods.length > 1) throw new ConfigError(`set only one way to authenticate to NATS, got ${methods.join(', ')}`);

  const caFile = e.optional('NATS_CA');
  const certFile = e.optional('NATS_CERT');
  const keyFile = e.optional('NATS_KEY');
  if ((certFile === undefined) !== (keyFile === undefined))
    throw new ConfigError('NATS_CERT and NATS_KEY go together (client certificate and its key)');
  const tlsAsked = e.oneOf('NATS_TLS', ['true', 'false'], 'false') === 'true';
  const tls = tlsUrl || tlsAsked || caFile !== undefined || certFile !== undefined;

  return Object.freeze({
    servers,
    name,
    connectTimeoutMs: e.duration('NATS_CONNECT_TIMEOUT', 5_000),
    topologyCheckMs: e.duration('SLUICE_TOPOLOGY_CHECK_INTERVAL', 2_000),
    ...(user ? { user, pass: pass ?? '' } : {}),
    ...(token ? { token } : {}),
    ...(nkeyFile ? { nkeyFile } : {}),
    ...(credsFile ? { credsFile } : {}),
    ...(tls
      ? {
          tls: Object.freeze({
            ...(caFile ? { caFile } : {}),
            ...(certFile ? { certFile } : {}),
            ...(keyFile ? { keyFile } : {}),
          }),
        }
      : {}),
  });
}

/**
 * `NATS_PASSWORD` is the nats CLI's name; `NATS_PASS`, Sluice's first name for it, stays an alias.
 * Both set to different values is a mistake that would otherwise pick one silently.
 */
function natsPassword(password: string | undefined, alias: string | undefined): string | undefined {
  if (password !== undefined && alias !== undefined && password !== alias)
    throw new ConfigError('NATS_PASSWORD and NATS_PASS (its older alias) are both set, to different values: keep one');
  return password ?? alias;
}
