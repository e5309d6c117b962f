/**
 * What ships in the repository stays valid: the configurations in config/ pass
 * `octopus validate`, and the committed JSON Schemas in schema/ are what
 * `octopus schema` generates from the zod schemas today.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../src/config/profiles.ts';
import { runCli } from '../support/cli.ts';

const scratch = mkdtempSync(join(tmpdir(), 'octopus-schema-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('shipped files', () => {
  it('every configuration in config/ validates (exit 0)', () => {
    const files = readdirSync(join(PROJECT_ROOT, 'config'))
      .filter((f) => f.endsWith('.yaml'))
      .map((f) => join('config', f));
    expect(files).toContain(join('config', 'default.yaml'));
    // Credentials named by the example come from the environment; give them dummies.
    const r = runCli(['validate', ...files], {
      env: {
        OCTOPUS_MQTT_USERNAME: 'u',
        OCTOPUS_MQTT_PASSWORD: 'p',
        OCTOPUS_OPCUA_USERNAME: 'u',
        OCTOPUS_OPCUA_PASSWORD: 'p',
      },
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('schema/ holds exactly what `octopus schema` generates (run it and commit when this fails)', () => {
    const r = runCli(['schema', '--out', scratch]);
    expect(r.code).toBe(0);
    const generated = readdirSync(scratch).sort();
    expect(readdirSync(join(PROJECT_ROOT, 'schema')).sort()).toEqual(generated);
    for (const f of generated)
      expect(readFileSync(join(PROJECT_ROOT, 'schema', f), 'utf8'), f).toBe(readFileSync(join(scratch, f), 'utf8'));
  });

  it('the JSON Schemas describe every field, so editors show help on hover', () => {
    const undescribed: string[] = [];
    const walk = (node: unknown, path: string) => {
      if (!node || typeof node !== 'object') return;
      const n = node as Record<string, unknown>;
      for (const [k, v] of Object.entries((n.properties ?? {}) as Record<string, Record<string, unknown>>)) {
        if (typeof v.description !== 'string' || !v.description) undescribed.push(`${path}.${k}`);
        walk(v, `${path}.${k}`);
      }
      for (const key of ['items', 'additionalProperties']) walk(n[key], `${path}[]`);
      for (const key of ['anyOf', 'oneOf', 'allOf'])
        if (Array.isArray(n[key])) (n[key] as unknown[]).forEach((x, i) => walk(x, `${path}|${i}`));
      for (const [k, v] of Object.entries((n.$defs ?? {}) as Record<string, unknown>)) walk(v, `${path}#${k}`);
    };
    let fields = 0;
    for (const f of readdirSync(join(PROJECT_ROOT, 'schema'))) {
      const text = readFileSync(join(PROJECT_ROOT, 'schema', f), 'utf8');
      fields += (text.match(/"description"/g) ?? []).length;
      walk(JSON.parse(text), f);
    }
    expect(undescribed).toEqual([]);
    expect(fields).toBeGreaterThan(150);
  });
});
