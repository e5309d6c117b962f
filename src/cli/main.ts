import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, EXIT_CONFIG } from '../core/errors.ts';
import { jsonSchemas } from '../config/json-schema.ts';
import { ADMIN_USAGE, adminCommand } from './admin.ts';
import { RUN_USAGE, runCommand } from './runs.ts';
import { helpFor } from './help.ts';
import { MQTT_CONFIG_USAGE } from './mqtt-config.ts';
import { TRUST_USAGE } from './trust-usage.ts';
import { testProfiles, validateFiles } from './validate.ts';
import { VERIFY_USAGE, verifyCommand } from './verify.ts';
import { FIDELITY_USAGE, fidelityCommand } from './fidelity.ts';

const USAGE = `octopus — climate-chamber acquisition gateway

usage:
  octopus start [--config file]        simulator (if enabled), broker, gateway and HTTP API
  octopus collect [--config file]      only the collector: MQTT data → InfluxDB and the NetCDF archive
  octopus simulate [--config file]     only the simulated chambers of a configuration
  octopus validate <file.yaml>… [--verbose]
                                       check configuration, profile and testcase files (exit 2 on problems)
  octopus test-profile <profile.yaml|id>…
                                       run a profile's testcases, printing every case and check
  octopus schema [--out dir]           write JSON Schemas of the config and profile files
  octopus browse <opc.tcp://…> [--root node] [--depth n] [--out file]
                                       draft an OPC UA profile from a live address space
${TRUST_USAGE}
${RUN_USAGE}
${VERIFY_USAGE}
${FIDELITY_USAGE}
${ADMIN_USAGE}
${MQTT_CONFIG_USAGE}

environment: OCTOPUS_CONFIG, OCTOPUS_DATA_DIR, OCTOPUS_HTTP_PORT, OCTOPUS_MQTT_URL,
             OCTOPUS_MQTT_PORT, OCTOPUS_GATEWAY_ID, OCTOPUS_LOG_LEVEL, OCTOPUS_INFLUX_URL,
             OCTOPUS_INFLUX_TOKEN, OCTOPUS_INFLUX_ORG, OCTOPUS_INFLUX_BUCKET, OCTOPUS_ADMIN_TOKEN,
             OCTOPUS_HEALTH_PORT, OCTOPUS_COLLECTOR_CLIENT_ID

octopus <command> --help (or octopus help <command>) explains one command.`;

const out = (line: string) => process.stdout.write(`${line}\n`);
const err = (line: string) => process.stderr.write(`${line}\n`);

/** Runs the octopus command; resolves to the process exit code (long-running commands resolve on shutdown). */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  // `octopus <command> --help` for every command, before its own argument parsing.
  if (
    command !== undefined &&
    !command.startsWith('-') &&
    command !== 'help' &&
    (rest.includes('--help') || rest.includes('-h'))
  ) {
    const text = helpFor(command, USAGE);
    if (text !== undefined) {
      out(text);
      return 0;
    }
  }
  try {
    switch (command) {
      case 'start':
      case 'collect':
      case 'simulate': {
        const { values } = parseArgs({ args: rest, options: { config: { type: 'string', short: 'c' } } });
        const { runUntilSignal } = await import('./start.ts');
        return await runUntilSignal(command, values.config);
      }
      case 'validate':
        return validateFiles(rest, out, err);
      case 'test-profile':
        return testProfiles(rest, out, err);
      case 'schema': {
        const { values } = parseArgs({ args: rest, options: { out: { type: 'string', short: 'o' } } });
        const dir = values.out ?? 'schema';
        mkdirSync(dir, { recursive: true });
        for (const [name, schema] of Object.entries(jsonSchemas())) {
          writeFileSync(join(dir, name), `${JSON.stringify(schema, null, 2)}\n`);
          out(`wrote ${join(dir, name)}`);
        }
        return 0;
      }
      case 'browse': {
        const { values, positionals } = parseArgs({
          args: rest,
          allowPositionals: true,
          options: { depth: { type: 'string' }, root: { type: 'string' }, out: { type: 'string', short: 'o' } },
        });
        const endpoint = positionals[0];
        if (!endpoint || !endpoint.startsWith('opc.tcp://')) {
          err(`browse: expected an opc.tcp:// endpoint (got ${JSON.stringify(endpoint ?? '')})`);
          return EXIT_CONFIG;
        }
        const { browseProfile } = await import('../drivers/opcua/browse.ts');
        const yaml = await browseProfile(endpoint, {
          depth: values.depth ? Number(values.depth) : undefined,
          root: values.root,
        });
        if (values.out) {
          writeFileSync(values.out, yaml);
          out(`wrote ${values.out}`);
        } else out(yaml);
        return 0;
      }
      case 'trust': {
        const { trustCommand } = await import('./trust.ts');
        return await trustCommand(rest, out, err);
      }
      case 'user':
      case 'token':
        return await adminCommand(command, rest, out, err);
      case 'run':
        return await runCommand(rest, out, err);
      case 'mqtt-config': {
        const { mqttConfigCommand } = await import('./mqtt-config.ts');
        return await mqttConfigCommand(rest, out, err);
      }
      case 'verify':
        return await verifyCommand(rest, out, err);
      case 'fidelity':
        return await fidelityCommand(rest, out, err);
      case 'help':
        if (rest[0] !== undefined) {
          const text = helpFor(rest[0], USAGE);
          if (text === undefined) {
            err(`unknown command ${JSON.stringify(rest[0])}\n\n${USAGE}`);
            return EXIT_CONFIG;
          }
          out(text);
          return 0;
        }
        out(USAGE);
        return 0;
      case undefined:
      case '--help':
      case '-h':
        out(USAGE);
        return command === undefined ? EXIT_CONFIG : 0;
      default:
        err(`unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
        return EXIT_CONFIG;
    }
  } catch (e) {
    if (e instanceof ConfigError) {
      err(e.message);
      err(`${e.issues.length} problem${e.issues.length > 1 ? 's' : ''} found`);
      return EXIT_CONFIG;
    }
    if ((e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      err(`${(e as Error).message}\n\n${USAGE}`);
      return EXIT_CONFIG;
    }
    // Anything else (an unreachable endpoint, a port in use…): say what failed, no stack.
    err(`octopus ${command}: ${(e as Error).message ?? String(e)}`);
    if (process.env.OCTOPUS_LOG_LEVEL === 'debug') err((e as Error).stack ?? '');
    return 1;
  }
}
