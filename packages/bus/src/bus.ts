import {
  jetstream,
  type JetStreamClient,
  type JetStreamManager,
  jetstreamManager,
  type PubAck,
} from '@nats-io/jetstream';
import { connect, type ConnectionOptions, type MsgHdrs, type NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '@sluice/telemetry';

import { encodeJson } from './codec.js';
import {
  explainNatsConnectError,
  type NatsSecurity,
  natsSecurityOptions,
  parseNatsServers,
  scrubNatsSecrets,
} from './nats-security.js';
import { traceHeaders } from './trace-context.js';

/** How to reach NATS. Only `servers` is required; credentials never appear in logs or errors. */
export interface BusConfig extends NatsSecurity {
  /** Comma-separated server URLs (`NATS_URL`). */
  servers: string;
  /** Client name shown by the server (`sluice-planner`, ...). */
  name: string;
  /** Give up connecting after this long at start (a clear error rather than a hang). */
  connectTimeoutMs?: number;
  /**
   * How often a service looks for its streams (`SLUICE_TOPOLOGY_CHECK_INTERVAL`, default 2 s):
   * the longest a lost JetStream store goes unnoticed by a service that meets no error.
   */
  topologyCheckMs?: number;
}

/** A connected JetStream client with the few operations Sluice needs. */
export interface Bus {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  /**
   * Publishes JSON to a stream subject (a `JsonText` as it is); `msgId` makes a repeat inside the
   * duplicate window a no-op.
   * The message carries the active trace context in its headers (none when tracing is off), unless
   * `headers` are given.
   */
  publish(subject: string, payload: unknown, options?: { msgId?: string; headers?: MsgHdrs }): Promise<PubAck>;
  /** Drains and closes the connection; closes it without a drain when the drain fails or takes more than 5 s. */
  close(): Promise<void>;
}

/** How long `close()` lets a drain take before it closes the connection without one. */
const CLOSE_GRACE_MS = 5_000;

/**
 * Connects to NATS and JetStream, reconnecting forever once connected. The first connection is
 * tried once per server: refused credentials or a TLS problem fail at once, naming the setting.
 */
export async function connectBus(config: BusConfig, logger: Logger): Promise<Bus> {
  const options: ConnectionOptions = {
    servers: parseNatsServers(config.servers).urls,
    name: config.name,
    maxReconnectAttempts: -1,
    // Every JetStream publish is a request; capturing an async stack for each one cost the
    // planner about a third of its CPU (profiled at 1,000,000 tasks). Errors keep their message.
    noAsyncTraces: true,
    reconnectTimeWait: 500,
    timeout: config.connectTimeoutMs ?? 5_000,
    ...(await natsSecurityOptions(config)),
  };
  let nc: NatsConnection;
  try {
    nc = await connect(options);
  } catch (error) {
    throw new Error(await explainNatsConnectError(error, config), { cause: error });
  }
  void (async () => {
    for await (const status of nc.status()) {
      if (status.type === 'disconnect' || status.type === 'reconnect') {
        logger.warn(
          { nats: status.type, server: 'server' in status ? status.server : undefined },
          `nats ${status.type}`,
        );
      }
    }
  })();
  const js = jetstream(nc);
  let jsm: JetStreamManager;
  try {
    jsm = await firstJetStreamAnswer(nc);
  } catch (error) {
    // Connected, but JetStream did not answer (not enabled, or no leader). The connection must not
    // outlive the failure: nobody holds it, and it would reconnect for ever — a `sluice pause` run
    // while a NATS node restarted answered "timeout" in 5 s, then its process lived two minutes on
    // the connection it could no longer close.
    await nc.close().catch(() => undefined);
    throw new Error(
      `connected to NATS at ${scrubNatsSecrets(config.servers, config)} (NATS_URL), but JetStream did not answer: ${(error as Error).message} (is the server started with JetStream, -js, and does the cluster have a leader?)`,
      { cause: error },
    );
  }
  return {
    nc,
    js,
    jsm,
    publish: (subject, payload, opts) => {
      const headers = opts?.headers ?? traceHeaders();
      return js.publish(subject, encodeJson(payload), {
        ...(opts?.msgId ? { msgID: opts.msgId } : {}),
        ...(headers ? { headers } : {}),
      });
    },
    close: async () => {
      if (nc.isClosed()) return;
      // A drain ends with a round trip to the server. With that server killed it can fail, or wait
      // for a reconnect, and a connection left open reconnects for ever: a CLI that had printed its
      // answer never exited (chaos seed 2, `sluice pause` during a NATS node restart). Past a
      // grace, close without draining.
      let timer: NodeJS.Timeout | undefined;
      const drained = await Promise.race([
        nc.drain().then(
          () => true,
          () => false,
        ),
        new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), CLOSE_GRACE_MS))),
      ]);
      clearTimeout(timer);
      if (!drained && !nc.isClosed()) await nc.close();
    },
  };
}

/**
 * The JetStream manager, whose creation is JetStream's first request. A request that timed out is
 * asked again (three times in all): the node the client reached may have just gone away, and the
 * connection moves to another. A server without JetStream answers at once and is not asked again.
 */
async function firstJetStreamAnswer(nc: NatsConnection): Promise<JetStreamManager> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await jetstreamManager(nc);
    } catch (error) {
      if (attempt >= 3 || (error as Error).name !== 'TimeoutError') throw error;
    }
  }
}
