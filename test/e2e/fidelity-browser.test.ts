/**
 * The experiment page in a real browser (Debian chromium via playwright-core): a
 * researcher opens a stopped run with a scripted 7-minute excursion in chamber c2 and
 * sees the treatment-fidelity table (c2 below 100 % with its excursion interval, c1 and c3
 * at 100 %), the deviation plot drawn from the API (one line per chamber, the dashed
 * tolerance band, c2's line above it), and the completeness table with the gap of c3;
 * no Content-Security-Policy violation. Screenshots: test-artifacts/fidelity-*.png.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/app.ts';
import { AuditLog } from '../../src/auth/audit.ts';
import { UserStore } from '../../src/auth/users.ts';
import { writeCompletenessReport } from '../../src/experiments/completeness.ts';
import { ArchiveRoot } from '../../src/experiments/archive-root.ts';
import { ExperimentStore } from '../../src/experiments/store.ts';
import type { ToleranceSource } from '../../src/fidelity/plan.ts';
import { computeFidelity, saveFidelityReport } from '../../src/fidelity/report.ts';
import { health } from '../integration/api-fixtures.ts';
import { launchBrowser, screenshot, signIn } from '../support/browser.ts';
import {
  EXC_SLOTS,
  EXC_START,
  FID_CHAMBERS,
  FID_T0,
  FID_TAGS,
  FID_VARS,
  writeFidelityRun,
} from '../support/fidelity-fixture.ts';

const dir = mkdtempSync(join(tmpdir(), 'octopus-fidelity-web-'));
let app: FastifyInstance;
let base = '';
let browser: Browser;
const iso = (slot: number) => new Date(FID_T0 + slot * 1000).toISOString().replace('.000Z', 'Z');
const source: ToleranceSource = (c) =>
  FID_CHAMBERS.includes(c)
    ? {
        tags: FID_TAGS,
        profile: { air_temperature: { band: 0.5, min_duration_s: 300 }, co2: { band: 50, min_duration_s: 300 } },
        chamber: {},
      }
    : undefined;

beforeAll(async () => {
  const store = new ExperimentStore(new ArchiveRoot(join(dir, 'experiments'), join(dir, 'local')), {
    chambers: () => FID_CHAMBERS,
    variables: (chambers, only) =>
      FID_VARS.filter((v) => !only.length || only.includes(v.name)).map((v) => ({
        name: v.name,
        unit: v.unit,
        standard_name: v.standard_name,
        description: v.description,
        chambers,
      })),
  });
  const users = new UserStore(join(dir, 'state', 'users.json'), 'bootstrap-admin-token-for-tests');
  await users.addUser('rita', 'researcher', 'rita-password');
  app = await buildApp({
    health,
    experiments: store,
    users,
    audit: new AuditLog(join(dir, 'state', 'audit.jsonl')),
    tolerances: source,
  });
  await store.create(
    {
      id: 'warming-2026',
      title: 'Warming of beech',
      principal_investigator: { name: 'Ada Lovelace' },
      chambers: FID_CHAMBERS,
      treatments: [
        { chamber: 'c1', name: 'warming' },
        { chamber: 'c2', name: 'warming' },
        { chamber: 'c3', name: 'control' },
      ],
    },
    'test',
  );
  const run = store.startRun('warming-2026', 'test');
  const file = join(store.get('warming-2026').dir, run.file);
  mkdirSync(dirname(file), { recursive: true });
  writeFidelityRun(file, 1, { id: 'warming-2026/r001' });
  store.stopRun('warming-2026', run.id, 'test');
  saveFidelityReport(computeFidelity(file, { source, metadata: store.get('warming-2026').metadata }), dirname(file));
  writeCompletenessReport(file, dirname(file));
  await store.document('warming-2026');
  base = await app.listen({ port: 0, host: '127.0.0.1' });
  browser = await launchBrowser();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await app?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('treatment fidelity on the experiment page (chromium)', () => {
  it('shows the fidelity table, the deviation plot with its band, and the completeness of the run', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const csp: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' && /Content Security Policy|Refused to/i.test(m.text())) csp.push(m.text());
    });
    await signIn(page, base, 'rita', 'rita-password');
    await page.goto(`${base}/experiments/warming-2026`);
    const table = page.locator('#fidelity-table');
    await table.waitFor();
    const c2 = table.locator('tr[data-chamber="c2"][data-variable="air_temperature"]');
    expect(await c2.locator('td.within').textContent()).toBe('86.7 %'); // 3600 − 420 − 60 (the spike) of 3600
    expect(await c2.locator('td.longest').textContent()).toContain(
      `${iso(EXC_START)} – ${iso(EXC_START + EXC_SLOTS - 1)} (420 s)`,
    );
    expect(await c2.locator('td.excursions').textContent()).toBe('1');
    for (const c of ['c1', 'c3'])
      expect(
        await table.locator(`tr[data-chamber="${c}"][data-variable="air_temperature"] td.within`).textContent(),
      ).toBe('100.0 %');
    await expect.poll(() => page.locator('#fidelity-groups tbody tr').count()).toBeGreaterThan(0);
    // the deviation plot is drawn from the API on load: one line per chamber, the band dashed
    const plot = page.locator('#dev-plot svg');
    await plot.locator('polyline.series').first().waitFor({ timeout: 15_000 });
    expect(await plot.locator('polyline.series').count()).toBe(3);
    expect(await plot.locator('line.band').count()).toBe(2);
    // c2's line goes above the +band line (smaller y is higher on screen)
    const bandY = Math.min(
      ...(await plot.locator('line.band').evaluateAll((ls) => ls.map((l) => Number(l.getAttribute('y1'))))),
    );
    const c2Top = await plot.locator('polyline[data-chamber="c2"]').evaluate((p) =>
      Math.min(
        ...p
          .getAttribute('points')!
          .split(' ')
          .map((xy) => Number(xy.split(',')[1])),
      ),
    );
    expect(c2Top).toBeLessThan(bandY);
    // another variable on demand
    await page.locator('#dev-var').selectOption('co2');
    await page.getByRole('button', { name: 'Draw deviation' }).click();
    await page.locator('#dev-plot svg[aria-label^="deviation of co2"]').waitFor({ timeout: 15_000 });
    await page.locator('#dev-var').selectOption('air_temperature');
    await page.getByRole('button', { name: 'Draw deviation' }).click();
    await page.locator('#dev-plot svg[aria-label^="deviation of air_temperature"]').waitFor({ timeout: 15_000 });
    // completeness of the run, with c3's gap
    const comp = page.locator('#completeness-table tr[data-chamber="c3"][data-variable="air_temperature"] td.missing');
    expect(await comp.textContent()).toBe('100');
    await page.locator('#completeness-gaps summary').click();
    await expect.poll(() => page.locator('#completeness-gaps li').first().textContent()).toContain('not received');
    await page.locator('#reports').scrollIntoViewIfNeeded();
    await screenshot(page, 'fidelity-experiment-page');
    expect(csp).toEqual([]);
    await page.close();
  });
});
