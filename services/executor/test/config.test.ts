import { describe, expect, it } from 'vitest';

import { loadExecutorConfig } from '../src/config.js';

describe('executor config', () => {
  it('serves /metrics, /healthz and /readyz on a fixed default port, 0 on request', () => {
    expect(loadExecutorConfig({}).metricsPort).toBe(9464);
    expect(loadExecutorConfig({ SLUICE_METRICS_PORT: '0' }).metricsPort).toBe(0);
  });

  it('refuses a duration without a unit, showing the fix', () => {
    expect(() => loadExecutorConfig({ SLUICE_SHUTDOWN_GRACE: '30' })).toThrow(
      'SLUICE_SHUTDOWN_GRACE must be a duration with a unit: "30" has no unit: write 30s for seconds or 30ms',
    );
  });
});
