import { describe, expect, it } from 'vitest';

import { hostLimitFor, loadPlannerConfig, parseHostLimits } from '../src/config.js';

describe('planner config', () => {
  it('needs SLUICE_REGISTRY and names it', () => {
    expect(() => loadPlannerConfig({})).toThrow(/SLUICE_REGISTRY/);
    expect(() => loadPlannerConfig({ SLUICE_REGISTRY: 'csv' })).toThrow(/SLUICE_REGISTRY must be one of/);
    expect(() => loadPlannerConfig({ SLUICE_REGISTRY: 'file' })).toThrow(/SLUICE_TENANTS_FILE/);
  });

  it('fills every default and freezes the result', () => {
    const c = loadPlannerConfig({ SLUICE_REGISTRY: 'file', SLUICE_TENANTS_FILE: '/tmp/t.json' });
    expect(c).toMatchObject({
      publishWindow: 512,
      registryRetryMs: 60_000,
      taskAckWaitMs: 30_000,
      hostLimits: { default: 8 },
      // A fixed, documented port for /metrics, /healthz and /readyz, so probes can name it.
      metricsPort: 9464,
    });
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('parses per-host limits and rejects malformed ones, naming the variable', () => {
    expect(parseHostLimits('DB1:5432=8, db2.internal:6432=2')).toEqual(
      new Map([
        ['db1:5432', 8],
        ['db2.internal:6432', 2],
      ]),
    );
    for (const bad of ['db1=8', 'db1:5432=0', 'db1:5432=x', ':5432=3'])
      expect(() => parseHostLimits(bad)).toThrow(/SLUICE_HOST_LIMITS/);
    expect(() =>
      loadPlannerConfig({ SLUICE_REGISTRY: 'file', SLUICE_TENANTS_FILE: 'x', SLUICE_HOST_LIMIT: '0' }),
    ).toThrow(/SLUICE_HOST_LIMIT must be at least 1/);
  });

  it('refuses a duration without a unit, showing the fix', () => {
    expect(() =>
      loadPlannerConfig({ SLUICE_REGISTRY: 'file', SLUICE_TENANTS_FILE: 'x', SLUICE_ACK_WAIT: '30' }),
    ).toThrow('SLUICE_ACK_WAIT must be a duration with a unit: "30" has no unit: write 30s for seconds or 30ms');
    expect(
      loadPlannerConfig({ SLUICE_REGISTRY: 'file', SLUICE_TENANTS_FILE: 'x', SLUICE_ACK_WAIT: '2m' }).taskAckWaitMs,
    ).toBe(120_000);
  });

  it('lets a request lower a host limit but never raise it', () => {
    const limits = { default: 4, overrides: new Map([['big:5432', 16]]) };
    expect(hostLimitFor(limits, 'a:5432')).toBe(4);
    expect(hostLimitFor(limits, 'big:5432', 6)).toBe(6);
    expect(hostLimitFor(limits, 'a:5432', 10)).toBe(4);
  });
});
