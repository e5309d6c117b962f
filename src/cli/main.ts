import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, EXIT_CONFIG } from '../core/errors.ts';
import { jsonSchemas } from '../config/json-schema.ts';
import { ADMIN_USAGE, adminCommand } from './admin.ts';
import { RUN_USAGE, runCommand } from './runs.ts';
import { validateFiles } from './validate.ts';
import { VERIFY_USAGE, verifyCommand } from './verify.ts';

const USAGE = `octopus — climate-chamber acquisition gateway

usage:
  octopus start [--config file]        simulator (if enabled), broker, gateway and HTTP API
  octopus collect [--config file]      only the collector: MQTT data → InfluxDB and the NetCDF archive
  octopus simulate [--config file]     only the simulated chambers of a configuration
  octopus validate <file.yaml>…        check configuration and profile files (exit 2 on problems)
  octopus schema [--out dir]           write JSON Schemas of the config and profile files
  octopus browse <opc.tcp://…> [--depth n] [--out file]
                                       draft an OPC UA profile from a live address space
${RUN_USAGE}
${VERIFY_USAGE}
${ADMIN_USAGE}

environment: OCTOPUS_CONFIG, OCTOPUS_DATA_DIR, OCTOPUS_HTTP_PORT, OCTOPUS_MQTT_URL,
             OCTOPUS_MQTT_PORT, OCTOPUS_GATEWAY_ID, OCTOPUS_LOG_LEVEL, OCTOPUS_INFLUX_URL,
             OCTOPUS_INFLUX_TOKEN, OCTOPUS_INFLUX_ORG, OCTOPUS_INFLUX_BUCKET, OCTOPUS_ADMIN_TOKEN,
             OCTOPUS_HEALTH_PORT, OCTOPUS_COLLECTOR_CLIENT_ID`;

const out = (line: string) => process.stdout.write(`${line}\n`);
const err = (line: string) => process.stderr.write(`${line}\n`);

/** Runs the octopus command; resolves to the process exit code (long-running commands resolve on shutdown). */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
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
          options: { depth: { type: 'string' }, out: { type: 'string', short: 'o' } },
        });
        const endpoint = positionals[0];
        if (!endpoint || !endpoint.startsWith('opc.tcp://')) {
          err(`browse: expected an opc.tcp:// endpoint (got ${JSON.stringify(endpoint ?? '')})`);
          return EXIT_CONFIG;
        }
        const { browseProfile } = await import('../drivers/opcua/browse.ts');
        const yaml = await browseProfile(endpoint, { depth: values.depth ? Number(values.depth) : undefined });
        if (values.out) {
          writeFileSync(values.out, yaml);
          out(`wrote ${values.out}`);
        } else out(yaml);
        return 0;
      }
      case 'user':
      case 'token':
        return await adminCommand(command, rest, out, err);
      case 'run':
        return await runCommand(rest, out, err);
      case 'verify':
        return await verifyCommand(rest, out, err);
      case undefined:
      case 'help':
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
