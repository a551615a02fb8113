import type { HostActivity } from '@sluice/contracts';
import type pg from 'pg';

// Client backends other than the sampler's own; `hidden` counts the rows a role without
// pg_read_all_stats sees with a NULL state. Replay lag only exists on a primary with replicas.
const ACTIVITY_SQL = `SELECT
  count(*) FILTER (WHERE state = 'active')::int AS active,
  count(*) FILTER (WHERE state = 'active' AND wait_event_type IS NULL)::int AS on_cpu,
  count(*) FILTER (WHERE state = 'active' AND wait_event_type = 'Lock')::int AS lock,
  count(*) FILTER (WHERE state = 'active' AND wait_event_type = 'LWLock')::int AS lwlock,
  count(*) FILTER (WHERE state = 'active' AND wait_event_type = 'IO')::int AS io,
  count(*) FILTER (WHERE state = 'active' AND wait_event_type = 'Client')::int AS client,
  count(*) FILTER (WHERE state IS NULL)::int AS hidden,
  (SELECT (extract(epoch FROM max(replay_lag)) * 1000)::float8 FROM pg_stat_replication) AS replay_lag_ms
FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()`;

/**
 * One sample of the host's sessions, on an open tenant connection (one round trip). Undefined when
 * the role can see no other session's state: the sample says nothing then.
 */
export async function sampleHostActivity(client: pg.Client): Promise<HostActivity | undefined> {
  const result = await client.query(ACTIVITY_SQL);
  const row = result.rows[0] as Record<string, number | null> | undefined;
  if (!row) return undefined;
  const visible = (row.active ?? 0) > 0 || (row.hidden ?? 0) === 0;
  if (!visible) return undefined;
  const lag = row.replay_lag_ms;
  return {
    active: row.active ?? 0,
    onCpu: row.on_cpu ?? 0,
    lock: row.lock ?? 0,
    lwlock: row.lwlock ?? 0,
    io: row.io ?? 0,
    client: row.client ?? 0,
    hidden: row.hidden ?? 0,
    ...(typeof lag === 'number' && Number.isFinite(lag) ? { replayLagMs: lag } : {}),
  };
}
