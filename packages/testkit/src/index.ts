export { apiAuthEnv, apiHeaders, testApiToken } from './api-token.js';
export { childPids, peakRssBytes, processTreeCpuMs, processWrites, startCpuMeter } from './cpu-meter.js';
export { type DelayProxyHandle, startDelayProxy } from './delay-proxy.js';
export {
  embeddedBinaries,
  EmbeddedPostgresError,
  type EmbeddedPostgresHandle,
  type PostgresBinaries,
  stagePostgresBinaries,
  startEmbeddedPostgres,
} from './embedded-postgres.js';
export {
  type FleetStack,
  type FleetStackOptions,
  type StackService,
  startFleetStack,
  type SuiteHooks,
  withFleetStack,
} from './fleet-stack.js';
export { type NatsClusterHandle, startNatsCluster } from './nats-cluster.js';
export { type NatsServerHandle, startNatsServer } from './nats-server.js';
export {
  type ConfiguredNatsServer,
  createTestCertificates,
  startNatsServerWithConfig,
  type TestCertificates,
} from './nats-server-config.js';
export { type OtlpReceiver, type ReceivedSpan, startOtlpReceiver } from './otlp-receiver.js';
export { MIGRATIONS_DIR, REPO_ROOT } from './paths.js';
export { freePort } from './ports.js';
export { type PostgresClusterHandle, startPostgresCluster } from './postgres-cluster.js';
export { PromScrape, scrapeMetrics } from './prom-text.js';
export { lostRunEvent } from './run-events.js';
export {
  collectRunEvents,
  countOutcomes,
  listOutcomes,
  listRejected,
  untilAnswered,
  waitForCompleted,
} from './run-watch.js';
export { fleetServiceEnv, type ServiceName, type ServiceProcess, startService } from './service-process.js';
export { startTcpMeter, type TcpMeter } from './tcp-meter.js';
export { createTenantFleet, type FleetOptions, type TenantFleet } from './tenant-fleet.js';
