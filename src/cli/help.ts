import { ADMIN_USAGE } from './admin.ts';
import { RUN_USAGE } from './runs.ts';
import { TEST_PROFILE_USAGE, VALIDATE_USAGE } from './validate.ts';

const CONFIG = `  --config, -c <file>   configuration file (default: $OCTOPUS_CONFIG, else config/default.yaml)`;

/** `octopus <command> --help` texts; commands without one get their lines of the general usage. */
export const COMMAND_HELP: Record<string, string> = {
  start: `usage: octopus start [--config file]

Starts everything the configuration enables: the simulated chambers (simulator.enabled),
the embedded MQTT broker (unless mqtt.url names an external one), the gateway with one
driver per chamber, the collector (InfluxDB and the NetCDF archive) and the HTTP API and
web pages. Ctrl-C (SIGINT) or SIGTERM stops it cleanly. Exit 2 on an invalid configuration.

${CONFIG}`,
  collect: `usage: octopus collect [--config file]

Runs only the collector: subscribes to the gateway's MQTT data and writes InfluxDB and the
NetCDF archive of experiment runs (collector.* and influx.* in the configuration).

${CONFIG}`,
  simulate: `usage: octopus simulate [--config file]

Runs only the simulated chambers of a configuration (chambers whose endpoint is on this
machine's loopback) as real OPC UA and Modbus TCP servers, from their profiles.

${CONFIG}`,
  validate: VALIDATE_USAGE,
  'test-profile': TEST_PROFILE_USAGE,
  schema: `usage: octopus schema [--out dir]

Writes the JSON Schemas of the configuration files (octopus-config.schema.json) and of
the device profiles (octopus-profile.schema.json), with a description for every field,
for editor completion and hover help (# yaml-language-server: $schema=…).

  --out, -o <dir>   folder to write to (default: schema)`,
  browse: `usage: octopus browse <opc.tcp://host:port> [--depth n] [--out file]

Drafts an OPC UA device profile from a live server's address space: one tag per
Variable under Objects, with node id, data type, writable and unit where known.

  --depth <n>        levels below Objects to walk (default 6)
  --out, -o <file>   write the draft there instead of printing it`,
  user: `usage:
${ADMIN_USAGE.split('\n')
  .filter((l) => l.includes('octopus user'))
  .join('\n')}

Manages the accounts of the HTTP API in <data_dir>/state/users.json (roles: see docs).
  --config, -c <file>   configuration file (its data_dir holds the accounts)
  --password-stdin      read a password for the web login from standard input
  --json                machine-readable output`,
  token: `usage:
${ADMIN_USAGE.split('\n')
  .filter((l) => l.includes('octopus token'))
  .join('\n')}

API tokens of the accounts (stored hashed; shown once at creation). Use them as
Authorization: Bearer <token>.
  --config, -c <file>   configuration file (its data_dir holds the accounts)
  --name, -n <label>    a label for the new token
  --json                machine-readable output`,
  run: `usage:
${RUN_USAGE}

Starts and stops runs of an experiment directly on its folder (the audit log names you).
  --config, -c <file>   configuration file
  --note <text>         a note stored with the run
  --json                machine-readable output`,
  help: `usage: octopus help [command]

Prints the general usage, or the help of one command.`,
};

/** The help of one command: its own text, else its lines of the general usage; undefined for unknown commands. */
export function helpFor(command: string, usage: string): string | undefined {
  const own = COMMAND_HELP[command];
  if (own !== undefined) return own;
  const lines = usage.split('\n');
  const at = lines.findIndex(
    (l) => l.trimStart().startsWith(`octopus ${command} `) || l.trim() === `octopus ${command}`,
  );
  if (at < 0) return undefined;
  const block = [lines[at]!];
  for (const l of lines.slice(at + 1)) {
    if (!/^\s{20,}\S/.test(l)) break;
    block.push(l);
  }
  return `usage:\n${block.join('\n')}`;
}
