/**
 * Runs the OPC UA simulator server as its own process, so tests can kill -9 it and start
 * it again on the same port, and benchmarks do not count its CPU:
 *
 *   node bin/run-ts.js test/support/opcua-server-process.ts --port 4840 \
 *     [--namespace urn:x] [--extra-ns urn:a,urn:b] [--count 10000] [--profile file.yaml --folder Chamber] [--interval-ms 1000]
 *
 * Prints `READY opc.tcp://127.0.0.1:<port> <n> variables` on stdout once it serves, then
 * changes every numeric variable each interval.
 */
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { OpcuaProfile } from '../../src/config/profile-schema.ts';
import { startOpcuaServer, type SimVariable } from '../../src/sim/opcua-server.ts';

const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    namespace: { type: 'string', default: 'urn:octopus:test' },
    'extra-ns': { type: 'string', default: '' },
    count: { type: 'string', default: '0' },
    profile: { type: 'string' },
    folder: { type: 'string', default: 'Chamber' },
    'interval-ms': { type: 'string', default: '1000' },
  },
});
const port = Number(values.port);
if (!Number.isInteger(port) || port <= 0) {
  console.error(`opcua-server-process: --port must be a port number (got ${JSON.stringify(values.port)})`);
  process.exit(2);
}
const count = Number(values.count);
const variables: SimVariable[] = Array.from({ length: count }, (_, i) => ({
  id: `Bench.V${String(i).padStart(5, '0')}`,
  browseName: `V${String(i).padStart(5, '0')}`,
  type: 'Double',
  writable: false,
  initial: i,
}));
const profile = values.profile ? OpcuaProfile.parse(parse(readFileSync(values.profile, 'utf8'))) : undefined;

const server = await startOpcuaServer({
  port,
  namespaceUri: values.namespace,
  extraNamespacesFirst: values['extra-ns'] ? values['extra-ns'].split(',') : [],
  variables,
  profile: profile ? { profile, folder: values.folder } : undefined,
});
const numeric = new Set(['SByte', 'Byte', 'Int16', 'UInt16', 'Int32', 'UInt32', 'Float', 'Double']);
const changing = [
  ...variables.map((v) => ({ id: v.id, base: Number(v.initial), integer: false })),
  ...(profile?.tags ?? [])
    .filter((t) => numeric.has(t.type))
    .map((t) => ({ id: t.node.replace(/^.*;s=/, ''), base: t.min ?? 0, integer: !/Float|Double/.test(t.type) })),
];
let tick = 0;
const timer = setInterval(() => {
  tick++;
  for (const c of changing) server.setValue(c.id, c.integer ? c.base + (tick % 2) : c.base + tick / 10);
}, Number(values['interval-ms']));

process.stdout.write(`READY ${server.endpoint} ${server.ids().length} variables\n`);
const shutdown = async () => {
  clearInterval(timer);
  await server.stop();
  process.exit(0);
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
