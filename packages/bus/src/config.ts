import { type Env, envReader } from '@sluice/core';

import type { BusConfig } from './bus.js';

/** Reads `NATS_URL` (default nats://127.0.0.1:4222), `NATS_USER`/`NATS_PASS`, `NATS_TOKEN`. */
export function loadBusConfig(env: Env, name: string): BusConfig {
  const e = envReader(env);
  const user = e.optional('NATS_USER');
  const pass = e.optional('NATS_PASS');
  const token = e.optional('NATS_TOKEN');
  return Object.freeze({
    servers: e.string('NATS_URL', 'nats://127.0.0.1:4222'),
    name,
    connectTimeoutMs: e.duration('NATS_CONNECT_TIMEOUT', 5_000),
    ...(user ? { user, pass: pass ?? '' } : {}),
    ...(token ? { token } : {}),
  });
}
