/**
 * The live view's setpoint control in a real browser (Debian chromium via
 * playwright-core) against `octopus start` with simulated chambers: an operator sees a
 * form per chamber, sets a value, reads the answer, and the PLC (read back over MQTT by
 * the page itself) takes it; a viewer sees no form and a forged request is refused.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simulatedChambers, startOctopus, type RunningOctopus } from '../support/cli.ts';
import { launchBrowser, screenshot, signIn } from '../support/browser.ts';
import { person } from '../support/people.ts';
import { auditOf } from '../support/mqtt-scenario.ts';
import { freePort } from '../support/ports.ts';

const dir = mkdtempSync(join(tmpdir(), 'octopus-web-sp-'));
const dataDir = join(dir, 'data');
let octopus: RunningOctopus;
let base = '';
let browser: Browser;

beforeAll(async () => {
  const ports = { opcua: await freePort(), modbus: await freePort(), mqtt: await freePort(), http: await freePort() };
  const config = join(dir, 'lab.yaml');
  writeFileSync(
    config,
    `
gateway: { id: web-sp }
data_dir: ${JSON.stringify(dataDir)}
simulator: { enabled: true, seed: 9 }
mqtt: { port: ${ports.mqtt} }
http: { port: ${ports.http}, host: 127.0.0.1 }
${simulatedChambers(ports, { count: 2 })}`,
  );
  await person(dataDir, 'olga', 'operator', 'olga-password');
  await person(dataDir, 'vic', 'viewer', 'vic-password');
  octopus = await startOctopus(config);
  base = `http://127.0.0.1:${ports.http}`;
  browser = await launchBrowser();
}, 80_000);

afterAll(async () => {
  await browser?.close();
  await octopus?.stop('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

describe('live view setpoint control in chromium', () => {
  it('operator: sets a chamber setpoint from the live view; the answer is shown and the live table follows', async () => {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await ctx.newPage();
    await signIn(page, base, 'olga', 'olga-password');
    await page.goto(`${base}/live`);
    const form = page.getByRole('form', { name: 'Setpoint for chamber c2' });
    await form.waitFor();
    await form.getByLabel('Tag').selectOption('co2_setpoint');
    await form.getByLabel('Value').fill('577');
    await form.getByRole('button', { name: 'Set' }).click();
    await expect
      .poll(() => form.locator('.setpoint-result').textContent(), { timeout: 15_000 })
      .toBe('Accepted: co2_setpoint = 577');
    // The live table shows the setpoint next to its measurement once the PLC reports it.
    const row = page.locator('section.chamber[data-chamber="c2"] tr[data-tag="co2"] td').nth(2);
    await expect.poll(() => row.textContent(), { timeout: 20_000 }).toBe('577');
    expect(auditOf(dataDir)).toContainEqual(
      expect.objectContaining({
        who: 'api:olga',
        action: 'setpoint',
        what: 'c2/co2_setpoint',
        detail: expect.objectContaining({ value: 577, result: 'written' }),
      }),
    );

    await form.getByLabel('Value').fill('99999');
    await form.getByRole('button', { name: 'Set' }).click();
    await expect
      .poll(() => form.locator('.setpoint-result').textContent(), { timeout: 15_000 })
      .toMatch(/^Refused: .*outside/);
    await screenshot(page, 'live-setpoint-operator');
    await ctx.close();
  });

  it('viewer: no setpoint control, and a forged request from the page is refused', async () => {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await ctx.newPage();
    await signIn(page, base, 'vic', 'vic-password');
    await page.goto(`${base}/live`);
    await page.locator('section.chamber[data-chamber="c2"]').waitFor();
    expect(await page.locator('form.setpoint').count()).toBe(0);
    expect(await page.getByRole('heading', { name: 'Setpoints' }).count()).toBe(0);
    const status = await page.evaluate(async () => {
      const csrf = (document.querySelector('meta[name="csrf-token"]') as HTMLMetaElement).content;
      const r = await fetch('/api/chambers/c2/setpoints/co2_setpoint', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-csrf-token': csrf },
        body: '{"value": 1999}',
      });
      return r.status;
    });
    expect(status).toBe(403);
    await ctx.close();
  });
});
