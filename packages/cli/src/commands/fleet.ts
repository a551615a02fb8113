import { connectBus, type FleetPage, openFleetStore, pageFleet } from '@sluice/bus';
import { FLEET_STATUSES, type FleetRecord, type FleetStatus, type FleetSummary } from '@sluice/contracts';
import { countBelow, durationProblem, type Env, type FleetQuery, isFleetCursor, parseDuration } from '@sluice/core';

import { CliError } from '../cli-error.js';
import { busConfigOf, type CommandSpec, JSON_FLAG, parseCommand, SERVER_FLAG } from '../command-spec.js';
import { formatTable, type Output } from '../output.js';
import { auditFleet, recountFleet } from './fleet-audit.js';
import { silentLogger } from './migrate.js';

export const FLEET: CommandSpec = {
  name: 'fleet',
  args: '[verify|rebuild]',
  summary: 'Where the fleet stands: tenants by version, status and host, and those that need a look.',
  description: `Reads the fleet state (the sluice_fleet bucket the reporter writes as outcomes arrive),
never a database. Prints the version histogram, counts by status and by host, and one page of the
tenants that need a look: not current (behind, failed, dirty, drift), or below --target. --status
lists the tenants in those statuses instead; --host and --tag narrow the list. --cursor takes the
cursor a page prints, for the next one. --recount counts every record again and replaces the
summary and the attention index (after a reporter died between a record and the summary's next
write).

sluice fleet verify reads every tenant's journal (a dry run through the executors, at each host's
limit), corrects the records that differ and lists those tenants; exit 0 when none differed, 1 when
some did. sluice fleet rebuild does the same after the fleet state was lost (the JetStream store
deleted: start the services again first, they create the streams) and counts the records afresh.
Both take --tag to audit part of the fleet, --run-id and --timeout.`,
  flags: {
    target: { type: 'string', value: 'VERSION', help: 'also list tenants below this version, and count them' },
    status: { type: 'string', value: 'S[,S]', help: `only tenants in these statuses (${FLEET_STATUSES.join(', ')})` },
    host: { type: 'string', value: 'HOST:PORT', help: 'only tenants on this database host' },
    tag: { type: 'string', multiple: true, value: 'KEY=VALUE', help: 'only tenants with this tag' },
    limit: { type: 'string', default: '20', value: 'N', help: 'tenants per page (at most 1000)' },
    cursor: { type: 'string', value: 'CURSOR', help: 'the page that starts here (printed by the page before)' },
    recount: { type: 'boolean', default: false, help: 'count every record again; rebuild the summary and index' },
    'run-id': { type: 'string', value: 'ID', help: 'verify, rebuild: the audit run id (default: verify-<time>)' },
    timeout: { type: 'string', value: 'DURATION', help: 'verify, rebuild: stop waiting after this (30s, 10m)' },
    ...JSON_FLAG,
    ...SERVER_FLAG,
  },
  positionals: { min: 0, max: 1 },
};

interface FleetValues extends Record<string, string | boolean | string[] | undefined> {
  target?: string;
  status?: string;
  host?: string;
  tag?: string[];
  limit: string;
  cursor?: string;
  recount: boolean;
  'run-id'?: string;
  timeout?: string;
  json: boolean;
  server?: string;
}

function queryOf(values: FleetValues): FleetQuery {
  const query: FleetQuery = {};
  if (values.target !== undefined) {
    if (!/^\d{1,15}$/.test(values.target))
      throw new CliError(`--target takes a version number, got "${values.target}"`);
    query.target = Number(values.target);
  }
  if (values.status !== undefined) {
    const statuses = values.status.split(',').filter(Boolean);
    if (statuses.length === 0 || statuses.some((s) => !(FLEET_STATUSES as readonly string[]).includes(s)))
      throw new CliError(`--status takes one or more of ${FLEET_STATUSES.join(', ')}`);
    query.statuses = statuses as FleetStatus[];
  }
  if (values.host !== undefined) query.host = values.host;
  if (values.tag) {
    query.tags = Object.fromEntries(
      values.tag.map((t) => {
        const eq = t.indexOf('=');
        if (eq <= 0) throw new CliError(`--tag takes KEY=VALUE, got "${t}"`);
        return [t.slice(0, eq), t.slice(eq + 1)];
      }),
    );
  }
  return query;
}

export async function fleetCommand(argv: string[], env: Env, output: Output): Promise<number> {
  const { values, positionals } = parseCommand<FleetValues>(FLEET, argv);
  const action = positionals[0];
  if (action !== undefined && action !== 'verify' && action !== 'rebuild')
    throw new CliError(`unknown action "${action}": sluice fleet, sluice fleet verify or sluice fleet rebuild`);
  const query = queryOf(values);
  const timeoutMs = values.timeout === undefined ? undefined : parseDuration(values.timeout);
  if (values.timeout !== undefined && timeoutMs === undefined)
    throw new CliError(`--timeout takes a duration with a unit: ${durationProblem(values.timeout)}`);
  if (action) {
    const bus = await connectBus(busConfigOf(values, env), silentLogger);
    try {
      return await auditFleet(
        bus,
        action,
        {
          json: values.json,
          ...(values['run-id'] ? { runId: values['run-id'] } : {}),
          ...(query.tags ? { tags: query.tags } : {}),
          ...(timeoutMs ? { timeoutMs } : {}),
        },
        output,
      );
    } finally {
      await bus.close();
    }
  }
  if (!/^\d+$/.test(values.limit) || Number(values.limit) < 1 || Number(values.limit) > 1_000)
    throw new CliError('--limit takes a whole number from 1 to 1000');
  if (values.cursor !== undefined && !isFleetCursor(values.cursor))
    throw new CliError('--cursor takes the cursor a page printed');
  const bus = await connectBus(busConfigOf(values, env), silentLogger);
  try {
    const store = await openFleetStore(bus);
    const summary = values.recount ? await recountFleet(store) : await store.summary();
    const page = await pageFleet(store, query, {
      limit: Number(values.limit),
      ...(values.cursor !== undefined ? { cursor: values.cursor } : {}),
    });
    const behindTarget = query.target === undefined ? undefined : countBelow(summary, query.target);
    if (values.json) {
      output.out(
        JSON.stringify({
          summary,
          ...(query.target !== undefined ? { target: query.target, behindTarget } : {}),
          ...page,
        }),
      );
    } else {
      for (const line of formatFleet(summary, query, page, behindTarget)) output.out(line);
      if (page.nextCursor !== undefined) output.out(`more: sluice fleet ${nextPageArgs(argv, page.nextCursor)}`);
    }
    return 0;
  } finally {
    await bus.close();
  }
}

function formatFleet(summary: FleetSummary, query: FleetQuery, page: FleetPage, behindTarget?: number): string[] {
  const lines = [`fleet: ${summary.total} tenants (summary as of ${summary.updatedAt})`];
  lines.push(`  status    ${FLEET_STATUSES.map((s) => `${summary.statuses[s]} ${s}`).join(', ')}`);
  const versions = Object.entries(summary.versions).sort(([a], [b]) =>
    a === 'none' ? 1 : b === 'none' ? -1 : Number(b) - Number(a),
  );
  const most = Math.max(1, ...versions.map(([, n]) => n));
  lines.push('  versions');
  for (const [version, n] of versions)
    lines.push(`    ${version.padStart(6)}  ${String(n).padStart(9)}  ${'#'.repeat(Math.ceil((n / most) * 30))}`);
  const hosts = Object.entries(summary.hosts).sort(([a], [b]) => a.localeCompare(b));
  if (hosts.length > 0) {
    lines.push('  hosts');
    for (const [host, counts] of hosts.slice(0, 50)) {
      const total = FLEET_STATUSES.reduce((n, s) => n + counts[s], 0);
      const parts = FLEET_STATUSES.filter((s) => counts[s] > 0).map((s) => `${counts[s]} ${s}`);
      lines.push(`    ${host}: ${total} tenants (${parts.join(', ')})`);
    }
    if (hosts.length > 50) lines.push(`    … and ${hosts.length - 50} more hosts (--json lists them all)`);
  }
  if (query.target !== undefined) lines.push(`  below version ${query.target}: ${behindTarget} tenants`);
  const what = query.statuses ? `tenants ${query.statuses.join(' or ')}` : 'tenants that need a look';
  const narrowed = [
    query.host ? `on ${query.host}` : '',
    ...Object.entries(query.tags ?? {}).map(([k, v]) => `${k}=${v}`),
  ]
    .filter(Boolean)
    .join(' ');
  lines.push('');
  if (page.tenants.length === 0) {
    lines.push(`no ${what}${narrowed ? ` ${narrowed}` : ''}`);
  } else {
    lines.push(`${what}${narrowed ? ` ${narrowed}` : ''}:`);
    lines.push(...formatTable(['TENANT', 'STATUS', 'VERSION', 'HOST', 'LAST RUN', 'ERROR'], page.tenants.map(row)));
  }
  return lines;
}

/** The same command line for the next page: the flags as given, `--recount` dropped, the new cursor. */
function nextPageArgs(argv: string[], cursor: string): string {
  const kept: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--cursor') {
      i += 1;
      continue;
    }
    if (argv[i]!.startsWith('--cursor=') || argv[i] === '--recount') continue;
    kept.push(/^[\w@%+=:,./-]+$/.test(argv[i]!) ? argv[i]! : `'${argv[i]!.replace(/'/g, `'\\''`)}'`);
  }
  return [...kept, '--cursor', cursor].join(' ');
}

function row(r: FleetRecord): string[] {
  return [
    r.tenantId,
    r.status,
    r.version === null ? '-' : String(r.version),
    r.host ?? '',
    r.run ?? (r.by ? `(${r.by})` : ''),
    r.error ? `[${r.error.code}] ${r.error.message}` : '',
  ];
}
