import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, expect, it } from 'vitest';
import { eventually, freePort } from '../support/ports.ts';
import { makeDriver, TEST_NS, testProfile } from '../support/opcua-fixtures.ts';
import { startOpcuaChild, type OpcuaChild } from '../support/opcua-child.ts';
import type { Driver } from '../../src/drivers/types.ts';

let child: OpcuaChild | undefined;
let driver: Driver | undefined;
afterAll(async () => {
  await driver?.stop();
  await child?.kill();
});

it('recovers after the server process is killed (-9) and started again: values flow within 15 s', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'octopus-opcua-restart-'));
  const profileFile = join(dir, 'profile.yaml');
  writeFileSync(profileFile, stringify(testProfile));
  const port = await freePort();
  const args = ['--port', String(port), '--namespace', TEST_NS, '--profile', profileFile, '--interval-ms', '200'];
  child = await startOpcuaChild(args);

  const made = makeDriver(child.endpoint);
  driver = made.driver;
  const sink = made.sink;
  await driver.start();
  expect(sink.state).toBe('online');
  await eventually(
    () => sink.all().filter((s) => s.tag === 'air_temperature' && s.q === 'good').length >= 3,
    'values before the kill',
  );

  await child.kill();
  const killedAt = Date.now();
  await eventually(() => sink.state === 'offline', 'offline status after the kill');
  expect(sink.states.at(-1)?.reason).toMatch(/lost|closed/);
  expect(
    sink.all().filter((s) => s.ts >= killedAt - 1000 && s.q === 'bad' && s.tag === 'air_temperature').length,
  ).toBeGreaterThanOrEqual(1);
  // Stay down long enough for the driver to fail a few reconnect attempts.
  await new Promise((r) => setTimeout(r, 2000));

  // The restarted server lists its namespaces differently: indices shift, nsu= ids still resolve.
  child = await startOpcuaChild([...args, '--extra-ns', 'urn:dummy:a,urn:dummy:b']);
  const restartedAt = Date.now();
  await eventually(
    () => sink.all().some((s) => s.tag === 'air_temperature' && s.q === 'good' && s.ts > restartedAt),
    'good values from the restarted server',
    15_000,
  );
  const recoveredMs = Date.now() - restartedAt;
  expect(recoveredMs).toBeLessThan(15_000);
  expect(sink.state).toBe('online');
  expect(driver.health()).toMatchObject({ state: 'online', monitoredItems: 4 });
  expect(driver.health().reconnects).toBeGreaterThanOrEqual(1);
  console.log(`OPC UA restart: values flow again ${recoveredMs} ms after the server restarted`);
});

it('notices a frozen server (SIGSTOP: socket open, no answers) and reconnects once it answers again', async () => {
  const port = await freePort();
  const frozen = await startOpcuaChild([
    '--port',
    String(port),
    '--namespace',
    TEST_NS,
    '--count',
    '3',
    '--interval-ms',
    '200',
  ]);
  const profile = {
    ...testProfile,
    tags: [{ ...testProfile.tags[0]!, name: 'v0', node: `nsu=${TEST_NS};s=Bench.V00000` }],
  };
  const made = makeDriver(frozen.endpoint, {}, profile);
  try {
    await made.driver.start();
    await eventually(() => made.sink.all().filter((s) => s.q === 'good').length >= 3, 'values before freezing');
    frozen.proc.kill('SIGSTOP');
    const frozenAt = Date.now();
    await eventually(() => made.sink.state === 'offline', 'offline while the server is frozen', 20_000);
    const noticedMs = Date.now() - frozenAt;
    expect(made.sink.states.at(-1)?.reason).toMatch(/no publish response|keep-alive|lost|closed/);
    frozen.proc.kill('SIGCONT');
    const resumedAt = Date.now();
    await eventually(
      () => made.sink.all().some((s) => s.q === 'good' && s.ts > resumedAt),
      'values after the server resumes',
      15_000,
    );
    expect(made.driver.health().reconnects).toBeGreaterThanOrEqual(1);
    console.log(
      `OPC UA frozen server: noticed after ${noticedMs} ms, values again ${Date.now() - resumedAt} ms after it resumed`,
    );
  } finally {
    await made.driver.stop();
    frozen.proc.kill('SIGCONT');
    await frozen.kill();
  }
});
