/**
 * An executor whose tenant work is a no-op (no database): what is left is the pipeline itself —
 * planner -> JetStream -> executors -> reporter. Used by the orchestration-ceiling benchmark only.
 * Run as a service process: `node --import tsx bench/noop-executor.ts`.
 */
import { loadExecutorConfig, startExecutorService, type TenantWork } from '@sluice/executor';
import { runService } from '@sluice/telemetry';

const noop: TenantWork = (task) =>
  Promise.resolve({
    report: {
      status: 'upToDate',
      applied: [],
      fromVersion: task.target,
      toVersion: task.target,
      timings: { journalMs: 0, executeMs: 0, serverMs: 0 },
    },
    connectMs: 0,
  });

await runService({
  service: 'executor',
  loadConfig: loadExecutorConfig,
  start: (config, logger) => startExecutorService(config, logger, { tenantWork: noop }),
});
