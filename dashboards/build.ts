/**
 * `npm run dashboards`: writes every dashboard as JSON into dashboards/generated/, which
 * Grafana's file provider loads (dashboards/provisioning/dashboards/octopus.yaml). The
 * generated files are committed; a test fails when they differ from what this writes.
 */
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderDashboards } from './index.ts';

const dir = fileURLToPath(new URL('./generated/', import.meta.url));
mkdirSync(dir, { recursive: true });
const files = renderDashboards();
for (const f of readdirSync(dir)) if (f.endsWith('.json') && !files.has(f)) rmSync(join(dir, f));
for (const [name, json] of files) {
  writeFileSync(join(dir, name), json);
  console.log(`dashboards/generated/${name}`);
}
