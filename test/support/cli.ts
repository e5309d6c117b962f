import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { PROJECT_ROOT } from '../../src/config/profiles.ts';
import { eventually } from './ports.ts';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the real `octopus` command (bin/octopus.js) as a user would. */
export function runCli(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): CliResult {
  const r = spawnSync(process.execPath, [join(PROJECT_ROOT, 'bin', 'octopus.js'), ...args], {
    cwd: opts.cwd ?? PROJECT_ROOT,
    env: { ...process.env, ...opts.env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Environment variables that would redirect `octopus start` away from the test's config. */
const OVERRIDES = [
  'OCTOPUS_CONFIG',
  'OCTOPUS_MQTT_URL',
  'OCTOPUS_MQTT_PORT',
  'OCTOPUS_HTTP_PORT',
  'OCTOPUS_DATA_DIR',
  'OCTOPUS_GATEWAY_ID',
  'OCTOPUS_INFLUX_URL',
];

export interface RunningOctopus {
  proc: ChildProcess;
  /** stdout and stderr so far. */
  output(): string;
  /** Sends a signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * `octopus start --config <file>` as a user runs it, resolved once it printed its
 * banner (everything is up). The user's OCTOPUS_* overrides are cleared; `env` adds more.
 */
export async function startOctopus(
  config: string,
  opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<RunningOctopus> {
  const env: NodeJS.ProcessEnv = { ...process.env, ...Object.fromEntries(OVERRIDES.map((k) => [k, ''])), ...opts.env };
  const proc = spawn(process.execPath, [join(PROJECT_ROOT, 'bin', 'octopus.js'), 'start', '--config', config], {
    cwd: opts.cwd ?? dirname(config),
    env,
  });
  let output = '';
  proc.stdout!.on('data', (b: Buffer) => (output += b.toString()));
  proc.stderr!.on('data', (b: Buffer) => (output += b.toString()));
  await eventually(
    () => output.includes('Ctrl-C stops it cleanly') || proc.exitCode !== null,
    'octopus start banner',
    40_000,
  );
  if (proc.exitCode !== null) throw new Error(`octopus start exited with ${proc.exitCode}:\n${output}`);
  return {
    proc,
    output: () => output,
    stop: (signal = 'SIGINT') =>
      new Promise((resolve) => {
        if (proc.exitCode !== null) return resolve(proc.exitCode);
        proc.once('exit', (code) => resolve(code));
        proc.kill(signal);
      }),
  };
}

/**
 * The `chambers:` section of a test configuration with simulated chambers on loopback:
 * c1 OPC UA (ecotron-chamberctl), c2 Modbus float registers (phytolab-gc2, unit 1) and,
 * with `count: 3`, c3 Modbus scaled integers (climatec-ch400, unit 2) on the same port.
 */
export function simulatedChambers(
  ports: { opcua: number; modbus: number },
  opts: { count?: 2 | 3; intervalMs?: number } = {},
): string {
  const every = opts.intervalMs ?? 500;
  return [
    'chambers:',
    `  - { id: c1, name: OPC UA chamber, driver: opcua, profile: ecotron-chamberctl, endpoint: "opc.tcp://127.0.0.1:${ports.opcua}", interval_ms: ${every} }`,
    `  - { id: c2, name: Float registers, driver: modbus, profile: phytolab-gc2, endpoint: "tcp://127.0.0.1:${ports.modbus}", interval_ms: ${every}, modbus: { unit_id: 1 } }`,
    ...((opts.count ?? 3) === 3
      ? [
          `  - { id: c3, name: Integer registers, driver: modbus, profile: climatec-ch400, endpoint: "tcp://127.0.0.1:${ports.modbus}", interval_ms: ${every}, modbus: { unit_id: 2 } }`,
        ]
      : []),
    '',
  ].join('\n');
}

/** `octopus collect --config <file>` as an operator runs it, resolved once it printed its banner. */
export async function startCollect(
  config: string,
  env: NodeJS.ProcessEnv = {},
): Promise<{ proc: ChildProcess; output: () => string }> {
  const proc = spawn(process.execPath, [join(PROJECT_ROOT, 'bin', 'octopus.js'), 'collect', '--config', config], {
    env: {
      ...process.env,
      OCTOPUS_CONFIG: '',
      OCTOPUS_MQTT_URL: '',
      OCTOPUS_HTTP_PORT: '',
      OCTOPUS_INFLUX_URL: '',
      OCTOPUS_DATA_DIR: '',
      ...env,
    },
  });
  let out = '';
  proc.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  proc.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  await eventually(
    () => out.includes('Ctrl-C stops it cleanly') || proc.exitCode !== null,
    'octopus collect banner',
    40_000,
  );
  if (proc.exitCode !== null) throw new Error(`octopus collect exited with ${proc.exitCode}:\n${out}`);
  return { proc, output: () => out };
}
