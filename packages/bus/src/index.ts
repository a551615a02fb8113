export { type BundleStore, encodeBundle, openBundleStore } from './bundle-store.js';
export { type Bus, type BusConfig, connectBus } from './bus.js';
export { decodeJson, MalformedMessageError } from './codec.js';
export { loadBusConfig } from './config.js';
export { type ConsumerPull, openConsumerPull, PullNoAnswerError, PullStatusError } from './consumer-pull.js';
export { type FleetPage, pageFleet } from './fleet-listing.js';
export {
  type FleetChange,
  FleetContentionError,
  type FleetScanResult,
  type FleetStore,
  openFleetStore,
} from './fleet-store.js';
export {
  deadTaskSeqs,
  ensureHostConsumer,
  type HostConsumerState,
  hostConsumerView,
  hostsWithTasks,
  listHostConsumers,
  readHostConsumer,
  stepDownHostConsumer,
} from './host-consumers.js';
export { publishIfLast, publishOnce } from './lifecycle/publish-once.js';
export {
  openRunControlStore,
  type RunControlStore,
  type RunControlView,
  watchRunControl,
} from './lifecycle/run-control-store.js';
export {
  followFrom,
  lastSequence,
  type LiveFollower,
  readLastJson,
  readSubject,
  type SubjectReadLimits,
  SubjectReadTimeoutError,
} from './lifecycle/subject-reader.js';
export { appendLedger, ensureLedgerStream, PlannedLedger, type PlannedLedgerOptions } from './lifecycle/task-ledger.js';
export { publishOutcome, readCountedOutcomes } from './outcomes.js';
export { isStreamFull, publishReliably, PublishWindow, StreamFullError } from './publish.js';
export { type PullLoop, startPullLoop, withInProgress } from './pull-loop.js';
export { openRunClaims, type RunClaims } from './run-claims.js';
export { FOLLOW_PULL, followStream, type StreamFollower } from './stream-follower.js';
export {
  DEFAULT_RETENTION_MS,
  loadStreamLimits,
  StreamLimitError,
  type StreamLimits,
  type TopologyOptions,
} from './stream-settings.js';
export { type BusReadiness, busReadiness, ensureTopology, streamConfigs } from './topology.js';
export {
  asTopologyMissing,
  type RecoveryStep,
  startTopologyKeeper,
  type TopologyKeeper,
  type TopologyKeeperOptions,
  TopologyMissingError,
  type TopologyRecovery,
  topologyStreamNames,
} from './topology-keeper.js';
export { traceContextOf, traceHeaders } from './trace-context.js';
export type { Consumer, JsMsg } from '@nats-io/jetstream';
export { AckPolicy, DeliverPolicy } from '@nats-io/jetstream';
