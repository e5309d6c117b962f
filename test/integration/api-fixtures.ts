/** Shared set-up of the API tests: an experiment store in a temp folder, users, and a real run file. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/api/app.ts';
import type { HealthReport } from '../../src/core/health.ts';
import { AuditLog } from '../../src/auth/audit.ts';
import { ROLES, type Role } from '../../src/auth/roles.ts';
import { UserStore } from '../../src/auth/users.ts';
import { buildRunSchema, type ArchiveVar } from '../../src/collector/sinks/netcdf/cf.ts';
import { NetcdfWriter, type NcRecord } from '../../src/netcdf/writer.ts';
import { ArchiveRoot } from '../../src/experiments/archive-root.ts';
import type { Run } from '../../src/experiments/schema.ts';
import { ExperimentStore } from '../../src/experiments/store.ts';

export const CHAMBERS = ['c1', 'c2', 'c3'];
export const VARS: ArchiveVar[] = [
  {
    name: 'air_temperature',
    description: 'Air temperature',
    unit: 'degree_Celsius',
    standard_name: 'air_temperature',
    kind: 'float',
  },
  { name: 'co2', description: 'CO2 mole fraction', unit: 'umol mol-1', kind: 'double' },
  { name: 'lights_on', description: 'Lights on', kind: 'bool' },
];

export const health = (): HealthReport => ({
  status: 'ok',
  gateway: 'gw1',
  version: 'test',
  uptime_s: 1,
  drivers: [],
  broker: { url: 'mqtt://x', embedded: true, connected: true, reconnects: 0 },
  spool: { messages: 0, bytes: 0, samples: 0, dropped_samples: 0 },
  published: { messages: 0, samples: 0 },
  sinks: {},
  problems: [],
});

export interface Fixture {
  dir: string;
  app: FastifyInstance;
  store: ExperimentStore;
  users: UserStore;
  audit: AuditLog;
  tokens: Record<Role, string>;
  /** Run files placed elsewhere (the working-folder hook). */
  elsewhere: Map<string, string>;
  close(): Promise<void>;
}

export async function fixture(adminToken = 'bootstrap-admin-token-for-tests'): Promise<Fixture> {
  const dir = mkdtempSync(join(tmpdir(), 'octopus-api-'));
  const store = new ExperimentStore(new ArchiveRoot(join(dir, 'experiments'), join(dir, 'local')), {
    chambers: () => CHAMBERS,
    variables: (chambers, only) =>
      VARS.filter((v) => !only.length || only.includes(v.name)).map((v) => ({
        name: v.name,
        unit: v.unit,
        standard_name: v.standard_name,
        description: v.description,
        chambers,
      })),
  });
  const users = new UserStore(join(dir, 'state', 'users.json'), adminToken);
  const audit = new AuditLog(join(dir, 'state', 'audit.jsonl'));
  const tokens = {} as Record<Role, string>;
  for (const role of ROLES) {
    await users.addUser(`${role}-user`, role);
    tokens[role] = users.createToken(`${role}-user`, 'test').token;
  }
  const elsewhere = new Map<string, string>();
  const app = await buildApp({
    health,
    experiments: store,
    users,
    audit,
    runFile: (id, run) => elsewhere.get(`${id}/${run.id}`) ?? join(store.get(id).dir, run.file),
  });
  return {
    dir,
    app,
    store,
    users,
    audit,
    tokens,
    elsewhere,
    async close() {
      await app.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export const T0 = Date.UTC(2025, 2, 1, 0, 0, 0);

/** Value of the fixture file at record k, chamber c (null = missing). */
export const temp = (k: number, c: number): number | null =>
  k % 7 === 3 && c === 1 ? null : Math.fround(20 + c + k / 100);
export const co2 = (k: number, c: number): number => 400 + 10 * c + k;

/** Record k (one second apart from T0) of the fixture variables for `chambers` chambers. */
export function fixtureRecord(k: number, chambers: number): NcRecord {
  const cs = Array.from({ length: chambers }, (_, c) => c);
  return {
    time: (T0 + k * 1000) / 1000,
    values: {
      air_temperature: cs.map((c) => temp(k, c)),
      air_temperature_qc: cs.map((c) => (temp(k, c) === null ? 3 : 0)),
      co2: cs.map((c) => co2(k, c)),
      co2_qc: cs.map(() => 0),
      lights_on: cs.map(() => k % 2),
      lights_on_qc: cs.map(() => 0),
    },
  };
}

/** Writes `n` one-second records of the fixture variables for a run. */
export function writeRunFile(path: string, run: Pick<Run, 'experiment' | 'id' | 'chambers'>, n: number): void {
  const { schema } = buildRunSchema(
    {
      id: `${run.experiment}/${run.id}`,
      title: 'test',
      summary: 'test',
      chambers: run.chambers,
      startMs: T0,
      periodMs: 1000,
      creator_name: 'tests',
    },
    VARS,
  );
  const w = NetcdfWriter.create(path, schema, { fsync: false, overwrite: true });
  w.appendRecords(Array.from({ length: n }, (_, k) => fixtureRecord(k, run.chambers.length)));
  w.close();
}

export const experimentBody = (id: string, chambers = ['c1', 'c2'], extra: Record<string, unknown> = {}) => ({
  id,
  title: `Experiment ${id}`,
  principal_investigator: { name: 'Ada Lovelace' },
  chambers,
  ...extra,
});
