/**
 * OPC UA server trust (issue 11): with Sign/SignAndEncrypt Octopus talks only to a PLC
 * whose certificate is trusted. Trust-on-first-use pins an endpoint's first certificate;
 * a regenerated one is refused and reported in health until an operator runs
 * `octopus trust accept <thumbprint>`. In pinned mode (the default) even the first one
 * waits for that.
 */
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../src/config/profiles.ts';
import { eventually, freePort } from '../support/ports.ts';
import { makeDriver, RecordingSink, TEST_NS, testProfile } from '../support/opcua-fixtures.ts';
import { loadConfig } from '../../src/config/loader.ts';
import { auditFile } from '../../src/auth/audit.ts';
import { createLogger } from '../../src/core/log.ts';
import { createOpcuaDriver } from '../../src/drivers/opcua/driver.ts';
import { startSimulator } from '../../src/sim/simulator.ts';
import type { ResolvedOpcua } from '../../src/config/resolved.ts';
import { startOpcuaServer, type RunningOpcuaServer } from '../../src/sim/opcua-server.ts';
import { composeHealth } from '../../src/gateway/health.ts';
import { decideTrust } from '../../src/drivers/opcua/trust.ts';
import type { Driver } from '../../src/drivers/types.ts';

const tmp = (what: string) => mkdtempSync(join(tmpdir(), `octopus-trust-${what}-`));
const thumbprintOf = (der: Buffer) => new X509Certificate(der).fingerprint.replace(/:/g, '').toLowerCase();
const SECURE = { security_mode: 'SignAndEncrypt', security_policy: 'Basic256Sha256' };

const servers: RunningOpcuaServer[] = [];
const drivers: Driver[] = [];
afterEach(async () => {
  await Promise.all(drivers.splice(0).map((d) => d.stop()));
});
afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop().catch(() => undefined)));
});

/** A test server on `port` whose certificate is made in its own (new) PKI folder. */
async function serve(port: number, pkiDir = tmp('server-pki')): Promise<RunningOpcuaServer> {
  const s = await startOpcuaServer({
    port,
    namespaceUri: TEST_NS,
    profile: { profile: testProfile, folder: 'Chamber' },
    pkiDir,
  });
  servers.push(s);
  return s;
}

/**
 * `octopus trust …` as an operator runs it (bin/octopus.js), against the gateway's data
 * directory; spawned asynchronously so the in-process server and driver keep running.
 */
function trust(dataDir: string, ...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const proc = spawn(process.execPath, [join(PROJECT_ROOT, 'bin', 'octopus.js'), 'trust', ...args], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, OCTOPUS_DATA_DIR: dataDir, OCTOPUS_CONFIG: '' },
  });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  proc.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  return new Promise((resolve) => proc.once('close', (code) => resolve({ code, stdout, stderr })));
}

describe('OPC UA server trust', () => {
  it(
    'tofu: trusts the first certificate, refuses a regenerated one (reported in health) until an operator accepts it',
    { timeout: 240_000 },
    async () => {
      const dataDir = tmp('data');
      const port = await freePort();
      const first = await serve(port);
      const firstThumb = thumbprintOf(first.certificate());

      const { driver, sink } = makeDriver(first.endpoint, { ...SECURE, server_trust: 'tofu' }, testProfile, 200, {
        dataDir,
      });
      drivers.push(driver);
      await driver.start();
      expect(sink.states.at(-1)).toEqual({ state: 'online', reason: undefined });
      first.setValue('Chamber.AirTemperature', 18.5);
      await eventually(
        () => sink.all().find((s) => s.tag === 'air_temperature' && s.value === 18.5),
        'a value over the channel to the first certificate',
      );
      const listed = await trust(dataDir, 'list');
      expect(listed.code).toBe(0);
      expect(listed.stdout).toMatch(new RegExp(`^trusted\\s+${firstThumb}\\s+.*CN=`, 'm'));
      expect(listed.stdout).toContain(`pinned for ${first.endpoint} (c1)`);

      // The PLC is replaced by one with a regenerated key pair on the same address.
      await first.stop();
      const second = await serve(port);
      const newThumb = thumbprintOf(second.certificate());
      expect(newThumb).not.toBe(firstThumb);
      await eventually(() => sink.state === 'error', 'the driver refuses the changed certificate', 30_000);
      const reason = sink.states.at(-1)!.reason!;
      expect(reason).toContain(`server certificate of ${first.endpoint} changed`);
      expect(reason).toContain(newThumb);
      expect(reason).toContain(`pinned was ${firstThumb}`);
      expect(reason).toContain(`octopus trust accept ${newThumb}`);
      const refusedAt = Date.now();

      const health = composeHealth({
        gateway: 'gw',
        version: 'test',
        startedAt: Date.now(),
        drivers: [driver.health()],
        broker: { url: 'mqtt://x', embedded: true, connected: true, reconnects: 0 },
        spool: { messages: 0, bytes: 0, samples: 0, droppedSamples: 0, publishedMessages: 0, publishedSamples: 0 },
      });
      expect(health.status).toBe('degraded');
      expect(health.problems).toHaveLength(1);
      expect(health.problems[0]).toMatch(
        new RegExp(`^chamber c1 \\(opcua ${first.endpoint.replace(/\./g, '\\.')}\\) error: .*changed.*${newThumb}`),
      );
      expect(health.drivers[0]).toMatchObject({ state: 'error', monitoredItems: 0 });

      // Nothing from the impostor reached the sink while refused (a few retries happen meanwhile).
      second.setValue('Chamber.AirTemperature', 66.6);
      expect((await trust(dataDir, 'list')).stdout).toContain(`presented by ${first.endpoint} (c1)`);
      expect(sink.all().some((s) => s.value === 66.6)).toBe(false);
      const pending = (await trust(dataDir, 'list')).stdout;
      expect(pending).toMatch(new RegExp(`^refused, waiting for a decision\\s+${newThumb}`, 'm'));

      const accepted = await trust(dataDir, 'accept', newThumb.slice(0, 12));
      expect(accepted.code).toBe(0);
      expect(accepted.stdout).toContain(`trusted ${newThumb}`);
      await eventually(() => sink.state === 'online', 'connected to the accepted certificate', 30_000);
      second.setValue('Chamber.AirTemperature', 19.75);
      await eventually(
        () => sink.all().find((s) => s.tag === 'air_temperature' && s.value === 19.75 && s.ts > refusedAt),
        'values after the operator accepted',
      );
      expect(sink.all().some((s) => s.value === 66.6 && s.ts < refusedAt)).toBe(false);
    },
  );

  it(
    'pinned (the default): an unknown certificate is refused until accepted; a rejected one stays refused',
    { timeout: 240_000 },
    async () => {
      const dataDir = tmp('data');
      const server = await serve(await freePort());
      const thumb = thumbprintOf(server.certificate());
      const { driver, sink } = makeDriver(server.endpoint, SECURE, testProfile, 200, { dataDir });
      drivers.push(driver);
      await driver.start();
      expect(sink.state).toBe('error');
      expect(sink.states.at(-1)?.reason).toContain(`server certificate of ${server.endpoint} ${thumb} (subject `);
      expect(sink.states.at(-1)?.reason).toContain('is not trusted; refused');
      expect(sink.all()).toEqual([]);

      expect((await trust(dataDir, 'accept', 'abcdef0123')).stderr).toContain(
        'no certificate with thumbprint abcdef0123',
      );
      expect((await trust(dataDir, 'accept', thumb)).code).toBe(0);
      await eventually(() => sink.state === 'online', 'online once accepted', 30_000);
      await eventually(
        () => sink.all().some((s) => s.tag === 'air_temperature' && s.q === 'good'),
        'values once accepted',
      );

      // An operator's rejection wins, even over trust-on-first-use on another chamber.
      expect((await trust(dataDir, 'reject', thumb)).code).toBe(0);
      const tofu = makeDriver(
        server.endpoint.replace('127.0.0.1', 'localhost'),
        { ...SECURE, server_trust: 'tofu' },
        testProfile,
        200,
        { dataDir },
      );
      drivers.push(tofu.driver);
      await tofu.driver.start();
      expect(tofu.sink.state).toBe('error');
      expect(tofu.sink.states.at(-1)?.reason).toContain('was rejected by an operator; refused');
      expect((await trust(dataDir, 'list')).stdout).toMatch(new RegExp(`^rejected by operator\\s+${thumb}`, 'm'));
      // Both decisions are in the audit log, with the operator's identity and the certificate.
      const audit = readFileSync(auditFile(dataDir), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { who: string; action: string; what: string; detail: { subject: string } });
      expect(audit.map((a) => [a.action, a.what])).toEqual([
        ['opcua_trust_accept', thumb],
        ['opcua_trust_reject', thumb],
      ]);
      expect(audit.every((a) => a.who.startsWith('cli') && /CN=/.test(a.detail.subject))).toBe(true);
    },
  );

  it('security mode None has no certificate to check: it connects whatever the trust setting (nothing is authenticated)', async () => {
    const server = await serve(await freePort());
    const { driver, sink } = makeDriver(server.endpoint, { server_trust: 'pinned' }, testProfile, 200, {
      dataDir: tmp('data'),
    });
    drivers.push(driver);
    await driver.start();
    expect(sink.state).toBe('online');
  });
});

describe('the simulator (npm start)', () => {
  it(
    'a simulated chamber with SignAndEncrypt connects in pinned mode without any step: the simulator trusts its own certificate',
    { timeout: 120_000 },
    async () => {
      const dir = tmp('sim');
      const file = join(dir, 'octopus.yaml');
      const endpoint = `opc.tcp://127.0.0.1:${await freePort()}`;
      writeFileSync(
        file,
        [
          'gateway: { id: gw-test }',
          `data_dir: ${join(dir, 'data')}`,
          'simulator: { enabled: true }',
          'chambers:',
          '  - id: s1',
          '    driver: opcua',
          '    profile: ecotron-chamberctl',
          `    endpoint: ${endpoint}`,
          '    opcua: { security_mode: SignAndEncrypt, security_policy: Basic256Sha256 }',
          '',
        ].join('\n'),
      );
      const loaded = loadConfig(file, {});
      const log = createLogger('test');
      const sim = await startSimulator(loaded, log);
      try {
        const sink = new RecordingSink();
        const driver = createOpcuaDriver(loaded.chambers[0] as ResolvedOpcua, { sink, log, dataDir: loaded.dataDir });
        drivers.push(driver);
        await driver.start();
        expect(sink.states.at(-1)).toEqual({ state: 'online', reason: undefined });
        await eventually(
          () => sink.all().some((s) => s.tag === 'air_temperature' && s.q === 'good'),
          'simulated values over SignAndEncrypt',
        );
        const listed = await trust(loaded.dataDir, 'list');
        expect(listed.stdout).toContain(`pinned for ${endpoint} (s1)`);
      } finally {
        await Promise.all(drivers.splice(0).map((d) => d.stop()));
        await sim.stop();
      }
    },
  );
});

describe('the trust decision', () => {
  const base = { thumbprint: 'b', operatorRejected: false } as const;
  it.each([
    ['tofu, first use', { ...base, mode: 'tofu', store: 'unknown' }, { accept: true, trustNow: true, firstUse: true }],
    [
      'tofu, changed',
      { ...base, mode: 'tofu', store: 'unknown', pinned: 'a' },
      { accept: false, why: 'changed', pinned: 'a' },
    ],
    [
      'tofu, changed and refused before',
      { ...base, mode: 'tofu', store: 'rejected', pinned: 'a' },
      { accept: false, why: 'changed', pinned: 'a' },
    ],
    [
      'tofu, changed then accepted',
      { ...base, mode: 'tofu', store: 'trusted', pinned: 'a' },
      { accept: true, trustNow: false, firstUse: false },
    ],
    ['pinned, unknown', { ...base, mode: 'pinned', store: 'unknown' }, { accept: false, why: 'unknown' }],
    [
      'pinned, trusted',
      { ...base, mode: 'pinned', store: 'trusted' },
      { accept: true, trustNow: false, firstUse: false },
    ],
    [
      'pinned, changed',
      { ...base, mode: 'pinned', store: 'unknown', pinned: 'a' },
      { accept: false, why: 'changed', pinned: 'a' },
    ],
    [
      'operator rejected',
      { ...base, mode: 'tofu', store: 'trusted', operatorRejected: true },
      { accept: false, why: 'rejected' },
    ],
  ] as const)('%s', (_name, input, expected) => {
    expect(decideTrust(input)).toEqual(expected);
  });
});
