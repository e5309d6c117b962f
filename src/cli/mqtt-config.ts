import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { UserStore } from '../auth/users.ts';
import {
  anonymousPrincipal,
  collectorPrincipal,
  gatewayPrincipal,
  personPrincipal,
  type MqttPrincipal,
} from '../bus/acl.ts';
import { aclFile, mosquittoConf, passwdLine, PBKDF2_ITERATIONS } from '../bus/mosquitto-config.ts';
import { loadConfig } from '../config/loader.ts';
import { EXIT_CONFIG } from '../core/errors.ts';

type Out = (line: string) => void;

export const MQTT_CONFIG_USAGE = `  octopus mqtt-config --out dir [--config file]… [--collector name]…
                    [--broker-dir /mosquitto/config/octopus] [--listener 1883] [--tls-port 8883
                    --tls-ca f --tls-cert f --tls-key f] [--persistence dir]
                                       Mosquitto password file, ACL file and mosquitto.conf from
                                       the gateways' configs and the users (docs/mqtt.md)`;

/** `OCTOPUS_MQTT_PASSWORD_<NAME>`: the environment variable that may hold a principal's password. */
export const passwordVar = (name: string): string =>
  `OCTOPUS_MQTT_PASSWORD_${name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;

/** Reads `OCTOPUS_MQTT_PASSWORD=…` from an env file written by an earlier run. */
function previous(file: string): string | undefined {
  if (!existsSync(file)) return undefined;
  const m = /^OCTOPUS_MQTT_PASSWORD=(.+)$/m.exec(readFileSync(file, 'utf8'));
  return m?.[1];
}

/**
 * `octopus mqtt-config`: the production broker's configuration from the same model as the
 * embedded broker (src/bus/acl.ts). One principal per gateway (each `--config`), per
 * collector (`--collector`, default "ingest") and per person (users of the first
 * config's data dir, disabled and pending ones left out). Passwords come from
 * `OCTOPUS_MQTT_PASSWORD_<NAME>`, else from the previous run's secrets/<name>.env, else
 * are generated; every secret is written to `<out>/secrets/<name>.env` (mode 0600) and
 * new ones are printed once.
 */
export async function mqttConfigCommand(
  args: string[],
  out: Out,
  err: Out,
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: 'string', short: 'c', multiple: true },
      collector: { type: 'string', multiple: true },
      out: { type: 'string', short: 'o' },
      'broker-dir': { type: 'string' },
      listener: { type: 'string' },
      'listener-host': { type: 'string' },
      'tls-port': { type: 'string' },
      'tls-ca': { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      persistence: { type: 'string' },
      iterations: { type: 'string' },
    },
  });
  if (!values.out) {
    err(`mqtt-config: --out <dir> is required\n\nusage:\n${MQTT_CONFIG_USAGE}`);
    return EXIT_CONFIG;
  }
  // The gateways' own MQTT/OPC UA credentials need not be set where the broker config is made.
  const lenient = new Proxy(env, { get: (t, k) => (typeof k === 'string' ? (t[k] ?? '') : undefined) });
  const configs = (values.config?.length ? values.config : [undefined]).map((f) => loadConfig(f, lenient));
  const first = configs[0]!;
  const prefix = first.config.mqtt.prefix;
  const gateways: MqttPrincipal[] = [];
  for (const [i, c] of configs.entries()) {
    if (c.config.mqtt.prefix !== prefix) {
      err(
        `mqtt-config: ${c.file}: mqtt.prefix "${c.config.mqtt.prefix}" differs from "${prefix}" (${first.file}); one broker serves one prefix`,
      );
      return EXIT_CONFIG;
    }
    const id = c.config.gateway.id;
    if (gateways.some((g) => g.name === gatewayPrincipal(prefix, id, []).name)) {
      err(`mqtt-config: --config #${i + 1} (${c.file}): gateway.id "${id}" is used twice`);
      return EXIT_CONFIG;
    }
    gateways.push(
      gatewayPrincipal(
        prefix,
        id,
        c.chambers.map((x) => x.chamber.id),
      ),
    );
  }
  const collectorNames = values.collector?.length ? values.collector : ['ingest'];
  for (const n of collectorNames) {
    if (!/^[a-z0-9][a-z0-9_-]*$/.test(n)) {
      err(`mqtt-config: --collector ${JSON.stringify(n)}: collector names are lower-case letters, digits, - and _`);
      return EXIT_CONFIG;
    }
  }
  const collectors = collectorNames.map((n) => collectorPrincipal(prefix, n));
  const people: MqttPrincipal[] = [];
  const users = UserStore.forDataDir(first.dataDir, {})
    .users()
    .filter((u) => !u.disabled && !u.pending);
  for (const u of users) {
    try {
      people.push(personPrincipal(prefix, u.name, u.role));
    } catch (e) {
      err(`mqtt-config: ${(e as Error).message}; rename the account`);
      return EXIT_CONFIG;
    }
  }
  const all = [...gateways, ...collectors, ...people];
  const dir = values.out;
  const secrets = join(dir, 'secrets');
  mkdirSync(secrets, { recursive: true, mode: 0o700 });
  const iterations = values.iterations ? Number(values.iterations) : PBKDF2_ITERATIONS;
  const lines: string[] = [];
  const fresh: string[] = [];
  for (const p of all) {
    const file = join(secrets, `${p.name}.env`);
    const fromEnv = env[passwordVar(p.name)];
    let password = fromEnv || previous(file);
    if (!password) {
      password = randomBytes(24).toString('base64url');
      fresh.push(`${p.name}\t${password}`);
    }
    writeFileSync(
      file,
      `# MQTT credentials of ${p.kind} ${p.name} (octopus mqtt-config). Secret: never commit.\nOCTOPUS_MQTT_USERNAME=${p.name}\nOCTOPUS_MQTT_PASSWORD=${password}\n`,
      { mode: 0o600 },
    );
    chmodSync(file, 0o600);
    lines.push(passwdLine(p.name, password, iterations));
  }
  const limits = first.config.mqtt.broker;
  const brokerDir = values['broker-dir'] ?? dir;
  writeFileSync(join(dir, 'passwd'), `${lines.join('\n')}\n`, { mode: 0o600 });
  chmodSync(join(dir, 'passwd'), 0o600);
  writeFileSync(join(dir, 'acl'), aclFile(all, limits.allow_anonymous ? anonymousPrincipal(prefix) : undefined), {
    mode: 0o644,
  });
  const tlsPort = values['tls-port'] ? Number(values['tls-port']) : undefined;
  if (tlsPort && !(values['tls-ca'] && values['tls-cert'] && values['tls-key'])) {
    err('mqtt-config: --tls-port needs --tls-ca, --tls-cert and --tls-key (paths as the broker sees them)');
    return EXIT_CONFIG;
  }
  writeFileSync(
    join(dir, 'mosquitto.conf'),
    mosquittoConf({
      limits,
      passwordFile: join(brokerDir, 'passwd'),
      aclFile: join(brokerDir, 'acl'),
      listener:
        values.listener === 'none'
          ? undefined
          : { port: Number(values.listener ?? 1883), host: values['listener-host'] },
      tls: tlsPort
        ? { port: tlsPort, cafile: values['tls-ca']!, certfile: values['tls-cert']!, keyfile: values['tls-key']! }
        : undefined,
      persistenceDir: values.persistence,
    }),
  );
  out(
    `wrote ${join(dir, 'passwd')}, ${join(dir, 'acl')}, ${join(dir, 'mosquitto.conf')} and ${secrets}/<name>.env (0600) for ${gateways.length} gateway(s), ${collectors.length} collector(s), ${people.length} person(s)`,
  );
  for (const p of all) out(`  ${p.kind.padEnd(9)} ${p.name}${p.role ? ` (${p.role})` : ''}`);
  if (fresh.length) {
    out('new passwords (shown once; also in secrets/<name>.env):');
    for (const f of fresh) out(`  ${f}`);
  }
  return 0;
}
