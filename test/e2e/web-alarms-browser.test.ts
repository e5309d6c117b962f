/**
 * Alarms in a real browser (Debian chromium via playwright-core) against `octopus start`
 * (embedded broker, gateway, collector with the alarm engine, web page) reading simulated
 * PLCs that run in this process so the test can inject faults: a CO2 drift on chamber c1
 * beyond its band for longer than the chamber's short `min_duration_s` raises an alarm;
 * the banner appears in the operator's and the viewer's live view within 5 s of the raise
 * (measured in the page: the moment the banner item is inserted vs the alarm's
 * `raised_at`, both on this machine's clock); the operator acknowledges it with a comment
 * and both banners show "acknowledged by olga" without reload; the viewer has no button
 * and a forged call is refused; the alarm page lists the history; when the drift ends the
 * banner goes away by itself and an open alarm page redraws its lists. No page breaks the Content-Security-Policy. Screenshots go
 * to test-artifacts/.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Alarm } from '../../src/alarms/model.ts';
import { loadConfig } from '../../src/config/loader.ts';
import { createLogger } from '../../src/core/log.ts';
import { startSimulator, type RunningSimulator } from '../../src/sim/simulator.ts';
import { launchBrowser, screenshot, signIn } from '../support/browser.ts';
import { startOctopus, type RunningOctopus } from '../support/cli.ts';
import { person } from '../support/people.ts';
import { freePort } from '../support/ports.ts';

/** The alarm must be on screen within this long after the engine raised it (issue 12). */
const BANNER_BOUND_MS = 5000;
/** Minimum duration of a CO2 excursion on c1 (chamber tolerance override below). */
const MIN_S = 3;

const dir = mkdtempSync(join(tmpdir(), 'octopus-web-alarms-'));
const dataDir = join(dir, 'data');
const config = join(dir, 'lab.yaml');
let sim: RunningSimulator;
let octopus: RunningOctopus;
let browser: Browser;
let base = '';
let olga: { username: string; password: string };
const contexts: BrowserContext[] = [];
/** Every Content-Security-Policy violation any page reported (console), with its URL. */
const cspViolations: string[] = [];

async function newPage(viewport = { width: 1280, height: 900 }): Promise<Page> {
  const ctx = await browser.newContext({ viewport });
  contexts.push(ctx);
  const page = await ctx.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy|Refused to (load|execute|apply|frame|connect)/i.test(m.text()))
      cspViolations.push(`${page.url()}: ${m.text()}`);
  });
  return page;
}

/** Opens the live view and waits until its event stream is connected and c1 is drawn. */
async function openLive(page: Page): Promise<void> {
  await page.goto(`${base}/live`);
  await expect.poll(() => page.locator('#live-state').textContent(), { timeout: 20_000 }).toBe('live');
  await page.locator('section.chamber[data-chamber="c1"] .live-body table').waitFor({ timeout: 20_000 });
}

/** The banner item of c1's CO2 deviation alarm (other alarms the simulation may cause are not this test's). */
const CO2_ALARM = 'section.chamber[data-chamber="c1"] .alarm-banner [data-class="deviation"][data-tag="co2"]';

/**
 * Resolves (in the page) with the page's clock at the moment c1's CO2 deviation alarm is
 * inserted in its banner, with its id. Installed before the fault, so nothing is missed.
 */
function bannerSeen(page: Page): Promise<{ at: number; id: string }> {
  return page.evaluate(
    (selector) =>
      new Promise<{ at: number; id: string }>((resolve) => {
        const banner = document.querySelector('section.chamber[data-chamber="c1"] .alarm-banner')!;
        const found = () => document.querySelector<HTMLElement>(selector);
        const now = found();
        if (now) return resolve({ at: Date.now(), id: now.dataset.alarm! });
        new MutationObserver((_, obs) => {
          const item = found();
          if (!item) return;
          obs.disconnect();
          resolve({ at: Date.now(), id: item.dataset.alarm! });
        }).observe(banner, { childList: true, subtree: true });
      }),
    CO2_ALARM,
  );
}

const api = async (path: string): Promise<unknown> => {
  const r = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${olga.password}` } });
  if (!r.ok) throw new Error(`GET ${path}: ${r.status} ${await r.text()}`);
  return r.json();
};

beforeAll(async () => {
  const ports = { opcua: await freePort(), modbus: await freePort(), mqtt: await freePort(), http: await freePort() };
  base = `http://127.0.0.1:${ports.http}`;
  writeFileSync(
    config,
    `
gateway: { id: web-alarms }
data_dir: ${JSON.stringify(dataDir)}
simulator: { enabled: false }
mqtt: { port: ${ports.mqtt}, prefix: lab }
http: { port: ${ports.http}, host: 127.0.0.1 }
alarms: { evaluate_interval_ms: 200 }
chambers:
  - id: c1
    driver: opcua
    profile: ecotron-chamberctl
    endpoint: "opc.tcp://127.0.0.1:${ports.opcua}"
    interval_ms: 500
    # Wide bands (the simulated day programme must not alarm by itself); CO2 judged quickly.
    tolerances: { co2: { band: 100, min_duration_s: ${MIN_S}, hysteresis: 10 }, air_temperature: { band: 5 }, relative_humidity: { band: 30 }, par: { band: 2000 } }
  - id: c2
    driver: modbus
    profile: phytolab-gc2
    endpoint: "tcp://127.0.0.1:${ports.modbus}"
    interval_ms: 500
    modbus: { unit_id: 1 }
    tolerances: { co2: { band: 300 }, air_temperature: { band: 5 }, relative_humidity: { band: 30 }, par: { band: 2000 } }
`,
  );
  // The simulated PLCs run here, so the test holds the fault injector; octopus reads them as real PLCs.
  sim = await startSimulator(
    loadConfig(config, {
      ...process.env,
      OCTOPUS_CONFIG: '',
      OCTOPUS_DATA_DIR: '',
      OCTOPUS_MQTT_URL: '',
      OCTOPUS_HTTP_PORT: '',
    }),
    createLogger('sim'),
  );
  sim.faults.quiet('c1');
  sim.faults.quiet('c2');
  octopus = await startOctopus(config);
  olga = await person(dataDir, 'olga', 'operator', 'olga-password');
  await person(dataDir, 'vic', 'viewer', 'vic-password');
  browser = await launchBrowser();
}, 120_000);

afterAll(async () => {
  for (const c of contexts) await c.close().catch(() => undefined);
  await browser?.close();
  await octopus?.stop();
  await sim?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('alarms in the browser', () => {
  it('fault → banner within 5 s of the raise; operator acknowledges with a comment; viewer sees it without a button; alarm page shows the history; the clear removes the banner', async () => {
    const op = await newPage();
    await signIn(op, base, 'olga', 'olga-password');
    await openLive(op);
    const viewer = await newPage({ width: 390, height: 844 }); // a phone
    await signIn(viewer, base, 'vic', 'vic-password');
    await openLive(viewer);
    // No CO2 alarm before the fault.
    expect(await op.locator(CO2_ALARM).count()).toBe(0);
    await expect
      .poll(() => op.locator('#alarm-summary').textContent(), { timeout: 20_000 })
      .toMatch(/^Alarms: (none active|\d+ active)/);

    const seenByOp = bannerSeen(op);
    const seenByViewer = bannerSeen(viewer);
    sim.faults.drift('c1', 'co2', 400);
    const shown = await Promise.race([
      seenByOp,
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error('no banner within 90 s of the fault')), 90_000),
      ),
    ]);
    const alarm = ((await api('/api/alarms')) as { alarms: Alarm[] }).alarms.find((a) => a.id === shown.id)!;
    expect(alarm).toMatchObject({ chamber: 'c1', class: 'deviation', tag: 'co2', state: 'raised' });
    // Raised only after the minimum duration, and on screen within the bound after that.
    expect(alarm.raised_at - alarm.since).toBeGreaterThanOrEqual(MIN_S * 1000);
    const latency = shown.at - alarm.raised_at;
    const viewerLatency = (await seenByViewer).at - alarm.raised_at;
    console.log(
      `alarm raised → banner: operator ${latency} ms, viewer ${viewerLatency} ms (bound ${BANNER_BOUND_MS} ms)`,
    );
    expect(latency).toBeGreaterThanOrEqual(0);
    expect(latency).toBeLessThan(BANNER_BOUND_MS);
    expect(viewerLatency).toBeLessThan(BANNER_BOUND_MS);

    const region = op.getByRole('region', { name: 'Alarms of c1' });
    const item = region.locator(`div.alarm-item[data-alarm="${alarm.id}"]`);
    await expect
      .poll(() => item.locator('.alarm-text').textContent())
      .toMatch(/deviation co2 — .+ since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC · raised$/);
    await expect
      .poll(() => op.locator('#alarm-summary').textContent())
      .toMatch(/^Alarms: [1-9]\d* active \([1-9]\d* not acknowledged\) in [1-9]\d* chamber\(s\)$/);
    await screenshot(op, 'alarms-banner-operator');

    // The viewer sees the same banner, with no acknowledge control; a forged call from the page is refused.
    const vItem = viewer
      .getByRole('region', { name: 'Alarms of c1' })
      .locator(`div.alarm-item[data-alarm="${alarm.id}"]`);
    await expect.poll(() => vItem.getAttribute('data-state')).toBe('raised');
    expect(await viewer.locator('form.alarm-ack').count()).toBe(0);
    expect(await viewer.getByRole('button', { name: 'Acknowledge' }).count()).toBe(0);
    const forged = await viewer.evaluate(async (id) => {
      const csrf = (document.querySelector('meta[name="csrf-token"]') as HTMLMetaElement).content;
      const r = await fetch(`/api/alarms/${encodeURIComponent(id)}/ack`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-csrf-token': csrf },
        body: '{"comment":"not mine"}',
      });
      return r.status;
    }, alarm.id);
    expect(forged).toBe(403);
    await screenshot(viewer, 'alarms-banner-viewer');

    // The operator acknowledges from the banner with a comment.
    const ack = op.getByRole('form', { name: 'Acknowledge deviation alarm co2 of c1' });
    // A comment is required: empty, the browser does not submit; blank, the script refuses.
    await ack.getByRole('button', { name: 'Acknowledge' }).click();
    expect(await ack.getByLabel('Comment').evaluate((e) => (e as HTMLInputElement).validity.valueMissing)).toBe(true);
    await ack.getByLabel('Comment').fill('   ');
    await ack.getByRole('button', { name: 'Acknowledge' }).click();
    await expect.poll(() => ack.locator('.ack-result').textContent()).toBe('Write a comment first.');
    expect(await item.getAttribute('data-state')).toBe('raised');
    await ack.getByLabel('Comment').fill('CO2 valve stuck open, technician called');
    // New values redraw the card; the half-done acknowledgement keeps its text and focus.
    const values = () => op.locator('section.chamber[data-chamber="c1"] .live-body td.value').allInnerTexts();
    const before = await values();
    await expect.poll(values, { timeout: 20_000 }).not.toEqual(before);
    expect(await ack.getByLabel('Comment').inputValue()).toBe('CO2 valve stuck open, technician called');
    expect(await ack.getByLabel('Comment').evaluate((e) => e === document.activeElement)).toBe(true);
    await ack.getByRole('button', { name: 'Acknowledge' }).click();
    await expect.poll(() => item.getAttribute('data-state'), { timeout: 15_000 }).toBe('acknowledged');
    expect(await item.locator('.alarm-text').textContent()).toMatch(
      /· acknowledged by olga at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC: “CO2 valve stuck open, technician called”$/,
    );
    expect(await item.locator('form.alarm-ack').count()).toBe(0);
    // The viewer's banner follows without reload.
    await expect
      .poll(() => vItem.textContent(), { timeout: 15_000 })
      .toMatch(/acknowledged by olga .*“CO2 valve stuck open, technician called”/);
    await screenshot(op, 'alarms-banner-acknowledged');

    // The alarm page: active (acknowledged, by olga) and the history.
    await op.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Alarms' }).click();
    await op.waitForURL(/\/alarms$/);
    const row = op.locator(`#active-alarms tr[data-alarm="${alarm.id}"]`);
    expect(await row.textContent()).toMatch(
      /c1\s*deviation\s*co2\s*\w+[^]*acknowledged\s*by olga at [^]*“CO2 valve stuck open, technician called”/,
    );
    const history = op.locator(`#alarm-history tr[data-alarm="${alarm.id}"]`);
    expect(await history.evaluateAll((rows) => rows.map((r) => (r as HTMLElement).dataset.event))).toEqual([
      'acknowledged',
      'raised',
    ]);
    expect(
      await op.locator(`#alarm-history tr[data-alarm="${alarm.id}"][data-event="acknowledged"] td`).allTextContents(),
    ).toEqual([
      expect.stringMatching(/UTC$/),
      'acknowledged',
      'c1',
      'deviation',
      'co2',
      'olga',
      'CO2 valve stuck open, technician called',
    ]);
    await op.getByLabel('Chamber').selectOption('c2');
    await op.getByRole('button', { name: 'Show' }).click();
    await op.waitForURL(/\/alarms\?chamber=c2$/);
    expect(await op.locator(`tr[data-alarm="${alarm.id}"]`).count()).toBe(0);
    await op.goto(`${base}/alarms`);
    await screenshot(op, 'alarms-page');

    // The drift ends: the alarm clears (back inside band − hysteresis); the banner goes away
    // by itself in the live view, and the alarm page (open in a second tab) redraws its lists.
    const listPage = await newPage();
    await signIn(listPage, base, 'vic', 'vic-password');
    await listPage.goto(`${base}/alarms?chamber=c1`);
    await listPage.locator(`#active-alarms tr[data-alarm="${alarm.id}"]`).waitFor();
    await listPage.waitForFunction(() => document.readyState === 'complete');
    sim.faults.drift('c1', 'co2', 0);
    await expect.poll(() => vItem.count(), { timeout: 60_000 }).toBe(0);
    const historyOf = (p: Page) =>
      p
        .locator(`#alarm-history tr[data-alarm="${alarm.id}"]`)
        .evaluateAll((rows) => rows.map((r) => (r as HTMLElement).dataset.event));
    await expect.poll(() => historyOf(listPage), { timeout: 20_000 }).toEqual(['cleared', 'acknowledged', 'raised']);
    expect(await listPage.locator(`#active-alarms tr[data-alarm="${alarm.id}"]`).count()).toBe(0);
    await viewer.goto(`${base}/alarms?chamber=c1`);
    expect(await historyOf(viewer)).toEqual(['cleared', 'acknowledged', 'raised']);
    expect(await viewer.locator('form.alarm-ack').count()).toBe(0);
    await screenshot(viewer, 'alarms-page-viewer-cleared');

    expect(cspViolations).toEqual([]);
  }, 240_000);
});
