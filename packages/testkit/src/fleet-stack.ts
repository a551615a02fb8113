import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { jetstream, type PubAck } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { REQUEST_SUBJECT } from '@sluice/contracts';

import { type NatsServerHandle, startNatsServer } from './nats-server.js';
import { fleetServiceEnv, type ServiceName, type ServiceProcess, startService } from './service-process.js';
import { createTenantFleet, type FleetOptions, type TenantFleet } from './tenant-fleet.js';

/** A service to start, with settings of its own on top of the stack's. */
export type StackService = ServiceName | { name: ServiceName; env?: Record<string, string> };

export interface FleetStackOptions {
  /** Tenant fleets on Postgres (the local one unless `serverUrl` says otherwise), all in one registry file. Default: one of 4 tenants. */
  fleets?: FleetOptions[];
  /** Registry rows after the fleets' tenants (a tenant whose database is missing, a bad row). */
  extraRows?: unknown[];
  /** Migrations folder of every service (default: the repository's `migrations/`). */
  migrationsDir?: string;
  /** Settings for every service, on top of `fleetServiceEnv`. */
  env?: Record<string, string>;
  /**
   * The services to start, in order. Default: reporter, executor, planner — the planner last, so
   * requests wait in the stream until it is up. A function sees the stack (its folder, its env).
   */
  services?: StackService[] | ((stack: FleetStack) => StackService[] | Promise<StackService[]>);
}

/** A private nats-server, tenant fleets and a file registry naming them, the services as processes, and a client. */
export interface FleetStack {
  nats: NatsServerHandle;
  /** A plain NATS client (the one a test publishes and reads with). */
  nc: NatsConnection;
  fleets: TenantFleet[];
  /** The first fleet. */
  fleet: TenantFleet;
  /** A scratch folder, removed by `dispose()`. */
  dir: string;
  /** The registry file naming every fleet's tenants. */
  registry: string;
  /** The services' environment (without per-service settings). */
  env: Record<string, string>;
  /** Services started so far, in order. */
  services: ServiceProcess[];
  /** Starts one more service with the stack's settings and `env` on top; stopped by `dispose()`. */
  start(name: ServiceName, env?: Record<string, string>): Promise<ServiceProcess>;
  /** Publishes a migration request as any client would. */
  publishRequest(payload: unknown, msgId?: string): Promise<PubAck>;
  /** Stops the services (last started first), closes the client, stops NATS, drops the fleets, removes the folder. */
  dispose(): Promise<void>;
}

/** Starts a fleet stack; undo with `dispose()`. Whatever fails half-way is undone before the error is thrown. */
export async function startFleetStack(options: FleetStackOptions = {}): Promise<FleetStack> {
  const stack = { services: [] as ServiceProcess[], fleets: [] as TenantFleet[] } as unknown as FleetStack;
  stack.dispose = async () => {
    for (const s of stack.services.splice(0).reverse()) await s.stop();
    await stack.nc?.close();
    await stack.nats?.dispose();
    for (const f of stack.fleets) await f.drop().catch(() => undefined);
    if (stack.dir) await rm(stack.dir, { recursive: true, force: true });
  };
  try {
    stack.nats = await startNatsServer();
    for (const fleetOptions of options.fleets ?? [{ count: 4 }])
      stack.fleets.push(await createTenantFleet(fleetOptions));
    stack.fleet = stack.fleets[0]!;
    stack.dir = await mkdtemp(path.join(tmpdir(), 'sluice-stack-'));
    stack.registry = path.join(stack.dir, 'tenants.json');
    const [first, ...others] = stack.fleets;
    const otherRows = others.flatMap((f) => f.tenants.map(({ tenantId, databaseUrl }) => ({ tenantId, databaseUrl })));
    await first!.writeRegistry(stack.registry, [...otherRows, ...(options.extraRows ?? [])]);
    stack.env = fleetServiceEnv(
      {
        natsUrl: stack.nats.url,
        registryFile: stack.registry,
        ...(options.migrationsDir ? { migrationsDir: options.migrationsDir } : {}),
      },
      options.env,
    );
    stack.start = async (name, env = {}) => {
      const service = await startService(name, { ...stack.env, ...env });
      stack.services.push(service);
      return service;
    };
    stack.nc = await connect({ servers: stack.nats.url });
    stack.publishRequest = (payload, msgId) =>
      jetstream(stack.nc).publish(REQUEST_SUBJECT, JSON.stringify(payload), msgId ? { msgID: msgId } : {});
    const services =
      typeof options.services === 'function'
        ? await options.services(stack)
        : (options.services ?? ['reporter', 'executor', 'planner']);
    for (const s of services) await stack.start(typeof s === 'string' ? s : s.name, typeof s === 'string' ? {} : s.env);
    return stack;
  } catch (error) {
    await stack.dispose();
    throw error;
  }
}

/** What a test runner's `beforeAll` and `afterAll` look like (vitest's, for one). */
export interface SuiteHooks {
  beforeAll(fn: () => Promise<unknown>, timeout?: number): void;
  afterAll(fn: () => Promise<unknown>, timeout?: number): void;
}

/**
 * A fleet stack for one suite: started in `beforeAll`, disposed in `afterAll`. The object returned
 * is filled in when `beforeAll` runs, so tests read it as a stack; `options` may be a function, to
 * use what earlier `beforeAll` hooks made (an OTLP receiver's URL).
 */
export function withFleetStack(
  hooks: SuiteHooks,
  options: FleetStackOptions | (() => FleetStackOptions) = {},
): FleetStack {
  const stack = {} as FleetStack;
  hooks.beforeAll(async () => {
    Object.assign(stack, await startFleetStack(typeof options === 'function' ? options() : options));
  });
  hooks.afterAll(async () => {
    await stack.dispose?.();
  });
  return stack;
}
