import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import { hostConsumerName, hostKeyOfConsumer, STREAMS } from '@sluice/contracts';
import { parseTenantRow } from '@sluice/core';
import { createRegistry, loadRegistryConfig } from '@sluice/registry';
import { REPO_ROOT } from '@sluice/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';

import { envReadByProduct, envReadIn, readByLibrary } from './env-vars-in-code.js';

const run = promisify(execFile);
const repo = (...p: string[]): string => path.join(REPO_ROOT, ...p);
const text = (...p: string[]): Promise<string> => readFile(repo(...p), 'utf8');

type Json = Record<string, unknown>;
interface ComposeService {
  image?: string;
  build?: unknown;
  command?: string[];
  entrypoint?: string[];
  environment?: Record<string, string | number | boolean | null>;
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  ports?: string[];
  container_name?: string;
  profiles?: string[];
  volumes?: string[];
  deploy?: { replicas?: number };
  restart?: string;
}

/** Metric names the dashboard may use (the services' contract, plus the default process metrics). */
const METRICS = new Set([
  'sluice_executor_host_limit',
  'sluice_executor_host_max_limit',
  'sluice_executor_host_in_flight',
  'sluice_executor_breaker_state',
  'sluice_executor_tasks_total',
  'sluice_executor_task_duration_seconds',
  'sluice_executor_db_seconds',
  'sluice_executor_db_connections',
  'sluice_executor_errors_total',
  'sluice_planner_runs_total',
  'sluice_planner_tasks_published_total',
  'sluice_planner_planning_duration_seconds',
  'sluice_queue_pending',
  'sluice_queue_in_flight',
  'sluice_queue_limit',
  'sluice_reporter_outcomes_total',
  'sluice_run_tenants_per_second',
  'sluice_reporter_runs_active',
  // prom-client's collectDefaultMetrics with prefix sluice_
  'sluice_process_cpu_seconds_total',
  'sluice_process_resident_memory_bytes',
  'sluice_nodejs_eventloop_lag_p99_seconds',
]);

/** What `deploy/docker/entrypoint.sh` accepts as the image's first argument. */
const IMAGE_COMMANDS = ['planner', 'executor', 'reporter', 'sluice'];
const SLUICE_IMAGE = 'sluice:local';

let codeEnv: Map<string, string[]>;
let compose: { services: Record<string, ComposeService>; volumes: Record<string, unknown> };

beforeAll(async () => {
  codeEnv = await envReadByProduct();
  // Compose files use YAML merge keys (`<<: *sluice-env`), as docker compose does.
  compose = parse(await text('docker-compose.yml'), { merge: true }) as typeof compose;
});

const isSluice = (s: ComposeService): boolean => s.image === SLUICE_IMAGE;
/** Services that run until stopped: not one-shot jobs others wait for, not the `cli` tool. */
function longRunning(): string[] {
  const oneShot = new Set(
    Object.values(compose.services).flatMap((s) =>
      Object.entries(s.depends_on ?? {})
        .filter(([, d]) => d.condition === 'service_completed_successfully')
        .map(([name]) => name),
    ),
  );
  return Object.entries(compose.services)
    .filter(([name, s]) => !oneShot.has(name) && !(s.profiles ?? []).includes('cli'))
    .map(([name]) => name);
}
const env = (service: string, name: string): string | undefined => {
  const value = compose.services[service]?.environment?.[name];
  return value === undefined || value === null ? undefined : String(value);
};

describe('docker-compose.yml', () => {
  it('has the whole system: NATS with JetStream on disk, two Postgres hosts, registries, Jaeger, Prometheus, the three services', () => {
    const names = Object.keys(compose.services);
    expect(names).toEqual(
      expect.arrayContaining([
        'nats',
        'pg-a',
        'pg-b',
        'mongodb',
        'dynamodb',
        'jaeger',
        'prometheus',
        'grafana',
        'planner',
        'executor',
        'reporter',
        'registry-seed',
      ]),
    );
    const nats = compose.services.nats!;
    const [, major, minor] = /^nats:(\d+)\.(\d+)/.exec(nats.image ?? '') ?? [];
    expect(
      Number(major) * 100 + Number(minor),
      `NATS image ${nats.image} must be 2.11 or later`,
    ).toBeGreaterThanOrEqual(211);
    expect(nats.command).toEqual(expect.arrayContaining(['--jetstream', '--store_dir']));
    expect(nats.volumes?.some((v) => v.endsWith(`:${nats.command![nats.command!.indexOf('--store_dir') + 1]}`))).toBe(
      true,
    );
    // The registry servers start with their profile; SLUICE_REGISTRY picks which one is read.
    expect(compose.services.mongodb!.profiles).toEqual(['mongodb']);
    expect(compose.services.dynamodb!.profiles).toEqual(['dynamodb']);
    expect(compose.services.planner!.environment!.SLUICE_REGISTRY).toBe('${SLUICE_REGISTRY:-file}');
    expect(env('planner', 'OTEL_EXPORTER_OTLP_ENDPOINT')).toBe('http://jaeger:4318');
  });

  it('starts in order without retries by hand: depends_on targets exist, conditions are valid and backed by health checks', () => {
    const names = new Set(Object.keys(compose.services));
    for (const [name, service] of Object.entries(compose.services)) {
      for (const [target, { condition }] of Object.entries(service.depends_on ?? {})) {
        expect(names.has(target), `${name} depends on unknown service ${target}`).toBe(true);
        expect(['service_started', 'service_healthy', 'service_completed_successfully']).toContain(condition);
        if (condition === 'service_healthy')
          expect(
            compose.services[target]!.healthcheck,
            `${name} waits for ${target} to be healthy, which has no healthcheck`,
          ).toBeDefined();
        if (condition === 'service_completed_successfully') expect(compose.services[target]!.restart).toBe('no');
        // A dependency in a profile would not start with a plain `docker compose up`.
        expect(
          compose.services[target]!.profiles ?? [],
          `${name} depends on ${target}, which only starts with a profile`,
        ).toEqual([]);
      }
    }
    for (const name of longRunning()) {
      const check = compose.services[name]!.healthcheck;
      expect(check, `${name} has no healthcheck`).toBeDefined();
      expect(['CMD', 'CMD-SHELL']).toContain(check!.test[0]);
    }
    // The executors wait for what they work on, the planner for the fleet's registry rows.
    expect(compose.services.executor!.depends_on).toMatchObject({
      nats: { condition: 'service_healthy' },
      'pg-a': { condition: 'service_healthy' },
      'pg-b': { condition: 'service_healthy' },
    });
    expect(compose.services.planner!.depends_on).toMatchObject({
      nats: { condition: 'service_healthy' },
      'registry-seed': { condition: 'service_completed_successfully' },
    });
  });

  it('lets executors scale (docker compose up --scale executor=N): no container name, no host port', () => {
    const executor = compose.services.executor!;
    expect(executor.container_name).toBeUndefined();
    expect(executor.ports).toBeUndefined();
    expect(executor.deploy?.replicas).toBeGreaterThanOrEqual(2);
    expect(Object.values(compose.services).every((s) => s.container_name === undefined)).toBe(true);
    // Host ports are unique, or two services could not start.
    const hostPorts = Object.values(compose.services).flatMap((s) => (s.ports ?? []).map((p) => p.split(':')[0]));
    expect(new Set(hostPorts).size).toBe(hostPorts.length);
  });

  it('sets on Sluice services only variables the code (or its drivers) reads, and runs commands the image knows', async () => {
    const seedEnv = await envReadIn([repo('deploy/compose/seed-registry.mjs')]);
    const sluiceServices = Object.entries(compose.services).filter(([, s]) => isSluice(s));
    expect(sluiceServices.map(([n]) => n).sort()).toEqual(['cli', 'executor', 'planner', 'registry-seed', 'reporter']);
    for (const [name, service] of sluiceServices) {
      expect(service.build, `${name} builds the one image`).toBe('.');
      for (const variable of Object.keys(service.environment ?? {})) {
        const known =
          codeEnv.has(variable) || readByLibrary(variable) || (name === 'registry-seed' && seedEnv.has(variable));
        expect(known, `${name} sets ${variable}, which nothing reads`).toBe(true);
      }
      const command = service.entrypoint ? service.entrypoint.slice(1) : service.command;
      const first = command![0]!;
      expect(IMAGE_COMMANDS.includes(first) || first === 'node', `${name} runs ${first}`).toBe(true);
    }
    const entrypoint = await text('deploy/docker/entrypoint.sh');
    expect(entrypoint).toContain('planner | executor | reporter)');
    expect(entrypoint).toContain('sluice)');
    // Metrics must be reachable from Prometheus: bound to every interface, on a fixed port.
    for (const service of ['planner', 'executor']) {
      expect(env(service, 'SLUICE_METRICS_PORT')).toBe('9464');
      expect(env(service, 'SLUICE_METRICS_HOST')).toBe('0.0.0.0');
    }
    expect(env('reporter', 'SLUICE_REPORTER_HOST')).toBe('0.0.0.0');
  });

  it('mounts files that exist and names volumes it declares', () => {
    for (const [name, service] of Object.entries(compose.services)) {
      for (const volume of service.volumes ?? []) {
        const source = volume.split(':')[0]!;
        if (source.startsWith('./')) expect(existsSync(repo(source)), `${name} mounts missing ${source}`).toBe(true);
        else expect(Object.keys(compose.volumes), `${name} uses undeclared volume ${source}`).toContain(source);
      }
    }
  });

  it('has Prometheus scrape every Sluice service on its metrics port (executors through DNS discovery)', async () => {
    const prometheus = parse(await text('deploy/prometheus/prometheus.yml')) as {
      scrape_configs: Array<{
        job_name: string;
        metrics_path?: string;
        static_configs?: Array<{ targets: string[] }>;
        dns_sd_configs?: Array<{ names: string[]; type: string; port: number }>;
      }>;
    };
    const jobs = new Map(prometheus.scrape_configs.map((j) => [j.job_name, j]));
    expect(jobs.get('sluice-planner')?.static_configs?.[0]?.targets).toEqual([
      `planner:${env('planner', 'SLUICE_METRICS_PORT')}`,
    ]);
    expect(jobs.get('sluice-reporter')?.static_configs?.[0]?.targets).toEqual([
      `reporter:${env('reporter', 'SLUICE_REPORTER_PORT')}`,
    ]);
    const dns = jobs.get('sluice-executor')?.dns_sd_configs?.[0];
    expect(dns).toMatchObject({ names: ['executor'], type: 'A', port: Number(env('executor', 'SLUICE_METRICS_PORT')) });
    for (const job of jobs.values()) expect(job.metrics_path ?? '/metrics').toBe('/metrics');
    const mounted = compose.services.prometheus!.volumes!.find((v) =>
      v.startsWith('./deploy/prometheus/prometheus.yml:'),
    );
    expect(mounted).toBeDefined();
  });

  it('needs an API token for the reporter, publishes its API on loopback only, and health-checks /readyz', () => {
    expect(env('reporter', 'SLUICE_API_TOKENS')).toMatch(/^operator:operate:\$\{SLUICE_API_TOKEN:\?.+\}$/);
    expect(compose.services.reporter!.ports).toEqual(['127.0.0.1:8080:8080']);
    for (const name of ['planner', 'executor', 'reporter']) {
      const check = compose.services[name]!.healthcheck!.test.join(' ');
      expect(check, name).toMatch(/\/readyz'/);
    }
  });

  // `docker compose` (v2) or `docker-compose` (v1), whichever exists; the YAML checks above run regardless.
  const composeCommand = ((): string[] | undefined => {
    if (spawnSync('docker', ['compose', 'version'], { encoding: 'utf8' }).status === 0) return ['docker', 'compose'];
    if (spawnSync('docker-compose', ['version'], { encoding: 'utf8' }).status === 0) return ['docker-compose'];
    return undefined;
  })();
  const composeEnv = { ...process.env, SLUICE_API_TOKEN: 'compose-config-check-token-0123456789' };

  it('passes `docker compose config` (or `docker-compose config`)', async () => {
    // Required, not skipped: compose reads the file without an engine (`.ci/run` installs Debian's
    // docker-compose where neither is present).
    if (!composeCommand)
      throw new Error(
        'neither `docker compose` nor `docker-compose` is installed: install one to check docker-compose.yml',
      );
    const [binary, ...pre] = composeCommand;
    await run(binary!, [...pre, '-f', 'docker-compose.yml', 'config', '--quiet'], { cwd: REPO_ROOT, env: composeEnv });
    // Without the token, compose refuses to start the stack and says what to set.
    const refused = await run(binary!, [...pre, '-f', 'docker-compose.yml', 'config', '--quiet'], {
      cwd: REPO_ROOT,
      env: { ...composeEnv, SLUICE_API_TOKEN: '' },
    }).then(
      () => '',
      (error: { stderr: string }) => error.stderr,
    );
    expect(refused).toMatch(/SLUICE_API_TOKEN/);
    const { stdout } = await run(
      binary!,
      [
        ...pre,
        '-f',
        'docker-compose.yml',
        '--profile',
        'cli',
        '--profile',
        'mongodb',
        '--profile',
        'dynamodb',
        'config',
        '--services',
      ],
      { cwd: REPO_ROOT, env: composeEnv },
    );
    expect(stdout.trim().split('\n').sort()).toEqual(Object.keys(compose.services).sort());
  });
});

describe('Dockerfile', () => {
  it('is multi-stage on a current Node LTS slim image, builds with the commands CI runs, and runs as a non-root user', async () => {
    const dockerfile = await text('Dockerfile');
    const version = /^ARG NODE_VERSION=(\d+)$/m.exec(dockerfile)?.[1];
    expect(Number(version) % 2, 'an LTS line (even major)').toBe(0);
    expect(Number(version)).toBeGreaterThanOrEqual(22);
    const stages = [...dockerfile.matchAll(/^FROM (\S+) AS (\w+)$/gm)].map((m) => ({ image: m[1], name: m[2] }));
    expect(stages).toEqual([
      { image: 'node:${NODE_VERSION}-bookworm-slim', name: 'build' },
      { image: 'node:${NODE_VERSION}-bookworm-slim', name: 'runtime' },
    ]);
    const [build, runtime] = dockerfile.split(/^FROM .* AS runtime$/m) as [string, string];
    // CI (.ci/run) installs with `npm ci`; `npm test` builds through turbo (test depends on build).
    const ci = await text('.ci/run');
    expect(ci).toMatch(/^npm ci\b/m);
    // Without install scripts: tsc needs none, and no dependency's postinstall runs in the build.
    expect(build).toMatch(/^RUN npm ci --ignore-scripts && npm run build$/m);
    const turbo = JSON.parse(await text('turbo.json')) as { tasks: Record<string, { dependsOn?: string[] }> };
    expect(turbo.tasks.test!.dependsOn).toContain('build');
    expect(runtime).toMatch(/^RUN npm ci --omit=dev\b/m);
    expect(runtime).toMatch(/^USER node$/m);
    expect(runtime).toMatch(/^ENTRYPOINT \["sluice-entrypoint"\]$/m);
    expect(runtime).toContain('COPY deploy/docker/entrypoint.sh /usr/local/bin/sluice-entrypoint');
    // `sluice` is a command in the image, the CLI's own bin script.
    expect(runtime).toContain('ln -s /app/packages/cli/bin/sluice.js /usr/local/bin/sluice');
  });

  it('copies every workspace manifest (npm ci needs them to match the lockfile), and .dockerignore keeps what it copies', async () => {
    const dockerfile = await text('Dockerfile');
    const { workspaces } = JSON.parse(await text('package.json')) as { workspaces: string[] };
    for (const workspace of workspaces) {
      const dir = workspace.replace(/\/\*$/, '');
      const copied = workspace.endsWith('/*')
        ? new RegExp(`^COPY ${dir} \\./${dir}$`, 'm')
        : new RegExp(`^COPY ${dir}/package\\.json \\./${dir}/package\\.json$`, 'm');
      expect(dockerfile, `the build stage copies ${workspace}`).toMatch(copied);
    }
    const ignored = (await text('.dockerignore')).split('\n').filter((l) => l.trim() && !l.startsWith('#'));
    const copiedPaths = [...dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => m[1]!.split(' '));
    for (const source of copiedPaths) {
      expect(existsSync(repo(source)), `Dockerfile copies missing ${source}`).toBe(true);
      expect(
        ignored.some((pattern) => pattern.replace(/^\*\*\//, '') === source || pattern === source),
        `.dockerignore drops ${source}`,
      ).toBe(false);
    }
  });
});

describe('Grafana dashboard', () => {
  it('queries only metrics the services export, and covers throughput, queue depth, breakers, limits, task duration and errors', async () => {
    const dashboard = JSON.parse(await text('deploy/grafana/sluice-dashboard.json')) as {
      uid: string;
      panels: Array<{
        id: number;
        type: string;
        title: string;
        datasource?: Json;
        targets?: Array<{ expr: string; datasource?: Json }>;
      }>;
    };
    const panels = dashboard.panels.filter((p) => p.type !== 'row');
    expect(new Set(dashboard.panels.map((p) => p.id)).size).toBe(dashboard.panels.length);
    const used = new Set<string>();
    for (const panel of panels) {
      expect(panel.targets?.length, `${panel.title} has no query`).toBeGreaterThan(0);
      expect(panel.datasource).toEqual({ type: 'prometheus', uid: '${datasource}' });
      for (const target of panel.targets!) {
        for (const [name] of target.expr.matchAll(/\bsluice_[a-z0-9_]+/g)) {
          const metric = name.replace(/_(bucket|sum|count)$/, '');
          expect(METRICS.has(metric), `${panel.title}: unknown metric ${name}`).toBe(true);
          if (name.endsWith('_bucket')) expect(metric).toMatch(/_seconds$/);
          used.add(metric);
        }
      }
    }
    for (const needed of [
      'sluice_executor_tasks_total',
      'sluice_run_tenants_per_second',
      'sluice_queue_pending',
      'sluice_executor_breaker_state',
      'sluice_executor_host_limit',
      'sluice_queue_limit',
      'sluice_executor_task_duration_seconds',
      'sluice_executor_errors_total',
    ]) {
      expect(used.has(needed), `the dashboard shows ${needed}`).toBe(true);
    }
  });

  it('is provisioned in compose from the Prometheus service', async () => {
    const datasources = parse(await text('deploy/grafana/provisioning/datasources/prometheus.yml')) as {
      datasources: Array<{ url: string; type: string }>;
    };
    expect(datasources.datasources[0]).toMatchObject({ type: 'prometheus', url: 'http://prometheus:9090' });
    const providers = parse(await text('deploy/grafana/provisioning/dashboards/sluice.yml')) as {
      providers: Array<{ options: { path: string } }>;
    };
    const dashboardMount = compose.services.grafana!.volumes!.find((v) =>
      v.startsWith('./deploy/grafana/sluice-dashboard.json:'),
    )!;
    expect(path.dirname(dashboardMount.split(':')[1]!)).toBe(providers.providers[0]!.options.path);
  });
});

describe('Kubernetes manifests (deploy/k8s)', () => {
  interface Doc {
    apiVersion: string;
    kind: string;
    metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
    data?: Record<string, string>;
    stringData?: Record<string, string>;
    spec?: Json;
  }
  let docs: Doc[];
  /** The example Secret, deliberately outside the kustomization. */
  let exampleSecret: Doc;
  let kustomizationText: string;
  const byKind = (kind: string): Doc[] => docs.filter((d) => d.kind === kind);
  interface Container {
    name: string;
    args?: string[];
    env?: Array<{ name: string }>;
    envFrom?: Array<{ configMapRef?: { name: string }; secretRef?: { name: string } }>;
    ports?: Array<{ name: string; containerPort: number }>;
    readinessProbe?: { httpGet: { path: string; port: string } };
    livenessProbe?: { httpGet: { path: string; port: string } };
  }
  type Deployment = Doc & {
    spec: {
      selector: { matchLabels: Record<string, string> };
      template: {
        metadata: { labels: Record<string, string>; annotations?: Record<string, string> };
        spec: { containers: Container[]; serviceAccountName?: string };
      };
    };
  };

  beforeAll(async () => {
    kustomizationText = await text('deploy/k8s/kustomization.yaml');
    exampleSecret = parse(await text('deploy/k8s/secret.example.yaml')) as Doc;
    const kustomization = parse(kustomizationText) as { resources: string[] };
    docs = [];
    for (const resource of kustomization.resources) {
      for (const doc of parseAllDocuments(await text('deploy/k8s', resource))) {
        expect(doc.errors, resource).toEqual([]);
        docs.push(doc.toJSON() as Doc);
      }
    }
  });

  it('has Deployments and Services for the three services, a ConfigMap, a ServiceAccount, a NetworkPolicy and the ScaledObject', () => {
    expect(
      byKind('Deployment')
        .map((d) => d.metadata.name)
        .sort(),
    ).toEqual(['sluice-executor', 'sluice-planner', 'sluice-reporter']);
    expect(
      byKind('Service')
        .map((d) => d.metadata.name)
        .sort(),
    ).toEqual(['sluice-executor', 'sluice-planner', 'sluice-reporter']);
    expect(byKind('ConfigMap')).toHaveLength(1);
    expect(byKind('ScaledObject')).toHaveLength(1);
    expect(byKind('ServiceAccount').map((d) => d.metadata.name)).toEqual(['sluice']);
    for (const d of byKind('Deployment') as Deployment[])
      expect(d.spec.template.spec.serviceAccountName, d.metadata.name).toBe('sluice');
  });

  it('keeps the example Secret out of the kustomization, and says how to create the real one', () => {
    // `kubectl apply -k` would otherwise overwrite the real Secret with placeholders.
    expect(byKind('Secret')).toEqual([]);
    expect(kustomizationText).not.toMatch(/^\s*-\s*secret\.example\.yaml/m);
    expect(kustomizationText).toMatch(/kubectl -n sluice create secret generic sluice-credentials/);
    expect(exampleSecret).toMatchObject({ kind: 'Secret', metadata: { name: 'sluice-credentials' } });
    expect(Object.keys(exampleSecret.stringData!)).toEqual(
      expect.arrayContaining(['PGUSER', 'PGPASSWORD', 'NATS_USER', 'NATS_PASSWORD', 'SLUICE_API_TOKENS']),
    );
  });

  it('gives every service the Secret (the reporter too: NATS credentials and API tokens)', () => {
    for (const d of byKind('Deployment') as Deployment[]) {
      const refs = d.spec.template.spec.containers[0]!.envFrom!.map((f) => f.secretRef?.name).filter(Boolean);
      expect(refs, d.metadata.name).toEqual(['sluice-credentials']);
    }
  });

  it('admits the reporter API only from pods and namespaces labelled as its clients (and the scraper)', () => {
    const [policy] = byKind('NetworkPolicy') as Array<
      Doc & {
        spec: {
          podSelector: { matchLabels: Record<string, string> };
          policyTypes: string[];
          ingress: Array<{
            from: Array<{
              podSelector?: { matchLabels: Record<string, string> };
              namespaceSelector?: { matchLabels: Record<string, string> };
            }>;
            ports: Array<{ port: string }>;
          }>;
        };
      }
    >;
    expect(policy).toBeDefined();
    const reporter = (byKind('Deployment') as Deployment[]).find((d) => d.metadata.name === 'sluice-reporter')!;
    expect(reporter.spec.template.metadata.labels).toMatchObject(policy!.spec.podSelector.matchLabels);
    expect(policy!.spec.policyTypes).toEqual(['Ingress']);
    const sources = policy!.spec.ingress.flatMap((rule) => rule.from);
    expect(sources.length).toBeGreaterThan(0);
    // Every source is a label selector: nothing admits "everyone".
    for (const source of sources) {
      const labels = { ...source.podSelector?.matchLabels, ...source.namespaceSelector?.matchLabels };
      expect(Object.keys(labels).length, JSON.stringify(source)).toBeGreaterThan(0);
    }
    expect(sources).toContainEqual({ podSelector: { matchLabels: { 'sluice.io/api-client': 'true' } } });
    expect(policy!.spec.ingress.flatMap((r) => r.ports.map((p) => p.port))).toEqual(['http']);
  });

  it('probes readiness on /readyz and liveness on /healthz', () => {
    for (const d of byKind('Deployment') as Deployment[]) {
      const c = d.spec.template.spec.containers[0]!;
      expect(c.readinessProbe?.httpGet.path, d.metadata.name).toBe('/readyz');
      expect(c.livenessProbe?.httpGet.path, d.metadata.name).toBe('/healthz');
    }
  });

  it('keeps labels, selectors, ports and probes consistent', () => {
    const deployments = byKind('Deployment') as Deployment[];
    for (const d of deployments) {
      expect(d.spec.template.metadata.labels, `${d.metadata.name}: selector matches its pods`).toMatchObject(
        d.spec.selector.matchLabels,
      );
      for (const c of d.spec.template.spec.containers) {
        expect(IMAGE_COMMANDS).toContain(c.args?.[0]);
        const ports = new Set((c.ports ?? []).map((p) => p.name));
        for (const probe of [c.readinessProbe, c.livenessProbe])
          expect(ports.has(probe!.httpGet.port), `${d.metadata.name} probes a named port`).toBe(true);
        const scrapePort = d.spec.template.metadata.annotations?.['prometheus.io/port'];
        expect((c.ports ?? []).map((p) => String(p.containerPort))).toContain(scrapePort);
      }
    }
    for (const service of byKind('Service')) {
      const spec = service.spec as { selector: Record<string, string>; ports: Array<{ targetPort: string }> };
      const target = deployments.find((d) =>
        Object.entries(spec.selector).every(([k, v]) => d.spec.template.metadata.labels[k] === v),
      );
      expect(target, `Service ${service.metadata.name} selects a Deployment's pods`).toBeDefined();
      const names = target!.spec.template.spec.containers.flatMap((c) => (c.ports ?? []).map((p) => p.name));
      for (const port of spec.ports) expect(names).toContain(port.targetPort);
    }
    // Container ports are the ones the ConfigMap configures.
    const config = byKind('ConfigMap')[0]!.data!;
    const portOf = (name: string) =>
      deployments.find((d) => d.metadata.name === name)!.spec.template.spec.containers[0]!.ports![0]!.containerPort;
    expect(portOf('sluice-planner')).toBe(Number(config.SLUICE_METRICS_PORT));
    expect(portOf('sluice-executor')).toBe(Number(config.SLUICE_METRICS_PORT));
    expect(portOf('sluice-reporter')).toBe(Number(config.SLUICE_REPORTER_PORT));
  });

  it('sets only variables the code (or its drivers) reads, from a ConfigMap and Secret that exist', () => {
    const configMaps = new Set(byKind('ConfigMap').map((d) => d.metadata.name));
    const secrets = new Set([exampleSecret.metadata.name]);
    const variables = [...Object.keys(byKind('ConfigMap')[0]!.data!), ...Object.keys(exampleSecret.stringData!)];
    for (const d of byKind('Deployment') as Deployment[]) {
      for (const c of d.spec.template.spec.containers) {
        for (const from of c.envFrom ?? []) {
          if (from.configMapRef) expect(configMaps.has(from.configMapRef.name)).toBe(true);
          if (from.secretRef) expect(secrets.has(from.secretRef.name)).toBe(true);
        }
        variables.push(...(c.env ?? []).map((e) => e.name));
      }
    }
    for (const variable of variables)
      expect(codeEnv.has(variable) || readByLibrary(variable), `${variable} is set but nothing reads it`).toBe(true);
  });

  it('scales the executor Deployment with one nats-jetstream trigger per host consumer (host_<token> on SLUICE_TASKS)', async () => {
    const scaled = byKind('ScaledObject')[0]!.spec as {
      scaleTargetRef: { kind: string; name: string };
      maxReplicaCount: number;
      triggers: Array<{ type: string; metadata: Record<string, string> }>;
    };
    expect(scaled.scaleTargetRef).toMatchObject({ kind: 'Deployment', name: 'sluice-executor' });
    expect(byKind('Deployment').map((d) => d.metadata.name)).toContain(scaled.scaleTargetRef.name);
    const config = byKind('ConfigMap')[0]!.data!;
    const limits = new Map(
      config.SLUICE_HOST_LIMITS!.split(',').map((pair) => [pair.split('=')[0]!, Number(pair.split('=')[1])]),
    );
    const consumers = scaled.triggers.map((t) => {
      expect(t.type).toBe('nats-jetstream');
      expect(t.metadata.stream).toBe(STREAMS.tasks.name);
      expect(Number(t.metadata.lagThreshold)).toBeGreaterThan(0);
      const host = hostKeyOfConsumer(t.metadata.consumer!);
      expect(
        host && limits.has(host),
        `trigger consumer ${t.metadata.consumer} is the consumer of a configured host`,
      ).toBe(true);
      expect(t.metadata.consumer).toBe(hostConsumerName(host!));
      return host;
    });
    expect(consumers.sort()).toEqual([...limits.keys()].sort());
    // More replicas than the hosts' limits can use would only wait.
    const useful = Math.ceil([...limits.values()].reduce((a, b) => a + b, 0) / Number(config.SLUICE_CONCURRENCY));
    expect(scaled.maxReplicaCount).toBeLessThanOrEqual(useful);

    const alternative = parse(await text('deploy/k8s/alternatives/keda-scaledobject-prometheus.yaml')) as Doc & {
      spec: typeof scaled;
    };
    expect(alternative.spec.scaleTargetRef.name).toBe('sluice-executor');
    for (const [name] of alternative.spec.triggers[0]!.metadata.query!.matchAll(/\bsluice_[a-z_]+/g))
      expect(METRICS.has(name)).toBe(true);
  });
});

describe('compose registry seed (deploy/compose/seed-registry.mjs)', () => {
  const seed = async (extra: Record<string, string>): Promise<void> => {
    await run(process.execPath, [repo('deploy/compose/seed-registry.mjs')], {
      cwd: REPO_ROOT,
      env: {
        PATH: process.env.PATH,
        SLUICE_DEMO_HOSTS: 'pg-a:5432,pg-b:5432',
        TENANTS_PER_HOST: '30',
        PGUSER: 'sluice',
        ...extra,
      },
    });
  };
  /** Reads the registry back the way the planner does, from the same settings. */
  const readBack = async (settings: Record<string, string>) => {
    const registry = await createRegistry(loadRegistryConfig(settings));
    const tenants = [];
    try {
      for await (const row of registry.list()) tenants.push(parseTenantRow(row));
    } finally {
      await registry.close();
    }
    return tenants;
  };
  const expectFleet = (tenants: Array<{ tenantId: string; host: string }>) => {
    expect(tenants).toHaveLength(60);
    expect(new Set(tenants.map((t) => t.tenantId)).size).toBe(60);
    expect(new Set(tenants.map((t) => t.host))).toEqual(new Set(['pg-a:5432', 'pg-b:5432']));
  };

  it('writes the file registry the planner reads', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'sluice-seed-'));
    try {
      const settings = { SLUICE_REGISTRY: 'file', SLUICE_TENANTS_FILE: path.join(dir, 'tenants.json') };
      await seed(settings);
      expectFleet(await readBack(settings));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  describe('DynamoDB (dynalite standing in for DynamoDB Local)', () => {
    let server: Server;
    let endpoint: string;
    beforeAll(async () => {
      const dynalite = createRequire(import.meta.url)('dynalite') as (o: Json) => Server;
      server = dynalite({ createTableMs: 0 });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
      endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    afterAll(async () => {
      server?.closeAllConnections();
      await new Promise((resolve) => server?.close(resolve));
    });

    it('creates the table and writes the rows the planner reads', async () => {
      const aws = {
        AWS_REGION: 'us-east-1',
        AWS_ACCESS_KEY_ID: 'local',
        AWS_SECRET_ACCESS_KEY: 'local',
        AWS_ENDPOINT_URL_DYNAMODB: endpoint,
      };
      const settings = { SLUICE_REGISTRY: 'dynamodb', SLUICE_TENANTS_TABLE: 'tenants' };
      await seed({ ...aws, ...settings });
      // The registry's SDK client reads the standard AWS variables from the process.
      const saved = Object.fromEntries(Object.keys(aws).map((k) => [k, process.env[k]]));
      Object.assign(process.env, aws);
      try {
        expectFleet(await readBack(settings));
      } finally {
        for (const [k, v] of Object.entries(saved)) {
          if (v === undefined) delete process.env[k];
          else process.env[k] = v;
        }
      }
    });
  });
});
