/**
 * 12-factor overrides: environment variables win over the YAML. Applied to the raw
 * document before validation, so a bad value is reported like a bad YAML value.
 */
const numeric = (v: string) => (/^\d+$/.test(v) ? Number(v) : v);

const OVERRIDES: Array<{ env: string; path: string[]; convert?: (v: string) => unknown }> = [
  { env: 'OCTOPUS_DATA_DIR', path: ['data_dir'] },
  { env: 'OCTOPUS_HTTP_PORT', path: ['http', 'port'], convert: numeric },
  { env: 'OCTOPUS_HTTP_HOST', path: ['http', 'host'] },
  { env: 'OCTOPUS_MQTT_URL', path: ['mqtt', 'url'] },
  { env: 'OCTOPUS_MQTT_PORT', path: ['mqtt', 'port'], convert: numeric },
  { env: 'OCTOPUS_GATEWAY_ID', path: ['gateway', 'id'] },
  { env: 'OCTOPUS_INFLUX_URL', path: ['influx', 'url'] },
  { env: 'OCTOPUS_INFLUX_ORG', path: ['influx', 'org'] },
  { env: 'OCTOPUS_INFLUX_BUCKET', path: ['influx', 'bucket'] },
  { env: 'OCTOPUS_HEALTH_PORT', path: ['collector', 'http_port'], convert: numeric },
  { env: 'OCTOPUS_COLLECTOR_CLIENT_ID', path: ['collector', 'client_id'] },
];

export function applyEnvOverrides(raw: unknown, env: NodeJS.ProcessEnv): unknown {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return raw;
  const doc = structuredClone(raw) as Record<string, unknown>;
  for (const o of OVERRIDES) {
    const value = env[o.env];
    if (value === undefined || value === '') continue;
    let node = doc;
    for (const key of o.path.slice(0, -1)) {
      const next = node[key];
      node[key] = next && typeof next === 'object' && !Array.isArray(next) ? next : {};
      node = node[key] as Record<string, unknown>;
    }
    node[o.path[o.path.length - 1]!] = o.convert ? o.convert(value) : value;
  }
  return doc;
}

export const ENV_OVERRIDES = OVERRIDES.map((o) => o.env);
