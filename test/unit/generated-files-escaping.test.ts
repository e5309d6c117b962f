/**
 * Generated files are injection-proof: hostile experiment metadata (titles, names, ids,
 * the NAS folder and host) with newlines, `$()`, backticks, quotes, `;` and unicode
 * reaches sync.sh, README.md, dmp.md and Content-Disposition escaped for each target.
 * sync.sh is parsed with `sh -n` and run for real in a sandbox folder with a fake
 * `rsync` first on PATH: only the sync runs, and no canary file appears.
 */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { contentDisposition, mdInline, shQuote } from '../../src/core/escape.ts';
import { dmp, readme, syncScript } from '../../src/experiments/documents.ts';
import { ArchiveRoot } from '../../src/experiments/archive-root.ts';
import { ExperimentStore } from '../../src/experiments/store.ts';
import type { ExperimentMetadata } from '../../src/experiments/schema.ts';

const base = mkdtempSync(join(tmpdir(), 'octopus-escape-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));
const canaries = join(base, 'canaries');
mkdirSync(canaries);

/** Each payload would create its own canary file if any part of it ran as shell. */
const attacks = (tag: string): string[] => [
  `x\ntouch ${canaries}/${tag}-newline\n`,
  `$(touch ${canaries}/${tag}-dollar)`,
  `\`touch ${canaries}/${tag}-backtick\``,
  `'; touch ${canaries}/${tag}-single; '`,
  `"; touch ${canaries}/${tag}-double; "`,
  `\\"; touch ${canaries}/${tag}-bs; #`,
  `\r\ntouch ${canaries}/${tag}-crlf`,
  `x\u2028touch ${canaries}/${tag}-u2028`,
  `Ünïcödé 🌱 ${'${'}IFS}touch${'${'}IFS}${canaries}/${tag}-ifs`,
];
const hostile = (tag: string) => attacks(tag).join(' ');

function metadata(): ExperimentMetadata {
  return {
    id: 'hostile-2026',
    title: `Drought ${hostile('title')}\n# Injected heading <script>alert(1)</script> [link](javascript:alert(1)) ![img](x) *bold* _em_ | col`,
    description: `First line\n## Injected section\n<img src=x onerror=alert(1)>\n- [x](javascript:alert(2))\n${hostile('desc')}`,
    principal_investigator: { name: `Ada\n# PI heading ${hostile('pi')}`, institution: 'Inst | <b>bold</b>' },
    contributors: [{ name: `Bob ${hostile('contrib')}` }],
    project: `P\`\`code\`\`${hostile('project')}`,
    chambers: ['ch01'],
    variables: [],
    treatments: [
      {
        chamber: 'ch01',
        name: `T | x\n| fake | row |`,
        description: hostile('treatment'),
        setpoints: { co2_setpoint: 700 },
        tolerances: {},
      },
    ],
    licence: 'CC-BY-4.0\n# licence',
    keywords: [],
    sampling_period_s: 1,
  };
}

/** Runs a script with sh in a sandbox folder; `rsync` and `sha256sum` are fakes that record their argv. */
function runInSandbox(
  script: string,
  name: string,
): { status: number | null; stderr: string; calls: string[][]; sandbox: string } {
  const sandbox = mkdtempSync(join(base, `sandbox-${name}-`));
  const bin = join(sandbox, 'bin');
  mkdirSync(bin);
  const log = join(sandbox, 'calls.log');
  for (const cmd of ['rsync', 'sha256sum']) {
    // Records argv NUL-separated, one call per line (printf %s keeps every byte of each argument).
    writeFileSync(
      join(bin, cmd),
      `#!/bin/sh\n{ printf '%s' '${cmd}'; for a in "$@"; do printf '\\037%s' "$a"; done; printf '\\036'; } >> '${log}'\n`,
    );
    chmodSync(join(bin, cmd), 0o755);
  }
  writeFileSync(join(sandbox, 'sync.sh'), script);
  const r = spawnSync('sh', ['sync.sh', 'dest'], {
    cwd: sandbox,
    env: { PATH: `${bin}:${process.env.PATH}`, HOME: sandbox },
    encoding: 'utf8',
  });
  const calls = existsSync(log)
    ? readFileSync(log, 'utf8')
        .split('\x1e')
        .filter(Boolean)
        .map((c) => c.split('\x1f'))
    : [];
  return { status: r.status, stderr: r.stderr, calls, sandbox };
}

describe('sync.sh', () => {
  it('parses with sh -n and runs only mkdir, the fake rsync and the checksum check, whatever the metadata', () => {
    const e = { ...metadata(), id: `id ${hostile('id')}` };
    const host = `host${hostile('host')}`;
    const folder = `/nas/${hostile('folder')}`;
    const script = syncScript(e, host, folder);
    writeFileSync(join(base, 'sync-n.sh'), script);
    const parse = spawnSync('sh', ['-n', join(base, 'sync-n.sh')], { encoding: 'utf8' });
    expect(parse.status, parse.stderr).toBe(0);
    // Values sit inside single quotes, whole: the quoted words are exactly the values.
    expect(script).toContain(`nas_folder=${shQuote(`${host}:${folder}`)}\n`);
    expect(
      script
        .split('\n')
        .filter((l) => l.startsWith('#'))
        .every((l) => !l.includes('\r')),
    ).toBe(true);

    const r = runInSandbox(script, 'hostile');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.calls).toEqual([
      ['rsync', '-av', '--partial', '--exclude', '*.part', '--', `${host}:${folder}/`, 'dest/'],
      ['sha256sum', '-c', 'MANIFEST.sha256'],
    ]);
    expect(readdirSync(canaries)).toEqual([]);
    expect(existsSync(join(r.sandbox, 'dest'))).toBe(true);
  });

  it('uses the default destination (./<id>) and OCTOPUS_NAS verbatim', () => {
    const e = { ...metadata(), id: `it's $(id)` };
    const script = syncScript(e, 'nas.example', '/srv/nas/x');
    const sandbox = mkdtempSync(join(base, 'sandbox-default-'));
    const bin = join(sandbox, 'bin');
    mkdirSync(bin);
    writeFileSync(
      join(bin, 'rsync'),
      `#!/bin/sh\nfor a in "$@"; do printf '%s\\n' "$a"; done > '${join(sandbox, 'argv')}'\n`,
    );
    writeFileSync(join(bin, 'sha256sum'), '#!/bin/sh\nexit 0\n');
    chmodSync(join(bin, 'rsync'), 0o755);
    chmodSync(join(bin, 'sha256sum'), 0o755);
    writeFileSync(join(sandbox, 'sync.sh'), script);
    const r = spawnSync('sh', ['sync.sh'], {
      cwd: sandbox,
      env: { PATH: `${bin}:${process.env.PATH}`, OCTOPUS_NAS: '/mnt/a b;c' },
      encoding: 'utf8',
    });
    expect(r.status, r.stderr).toBe(0);
    expect(readFileSync(join(sandbox, 'argv'), 'utf8').split('\n').slice(-3, -1)).toEqual([
      '/mnt/a b;c/',
      `./it's $(id)/`,
    ]);
    expect(existsSync(join(sandbox, "it's $(id)"))).toBe(true);
  });

  it('shQuote round-trips every byte sequence through sh', () => {
    for (const v of ["'", "''", "a'b", '$(x)', '`x`', '\\', '\n', '"', ' ; ', 'é🌱', '-n', '']) {
      const r = spawnSync('sh', ['-c', `printf '%s' ${shQuote(v)}`], { encoding: 'utf8' });
      expect(r.stdout).toBe(v);
    }
  });
});

describe('README.md and dmp.md', () => {
  const lines = (md: string) => md.split('\n');
  const headings = (md: string) => lines(md).filter((l) => /^#{1,6} /.test(l));

  it('a title, name or description cannot add a heading, HTML, a link or a table row', async () => {
    const nas = join(base, 'nas');
    mkdirSync(nas, { recursive: true });
    const store = new ExperimentStore(new ArchiveRoot(nas, join(base, 'local')), {
      chambers: () => ['ch01'],
      variables: (chambers) => [
        {
          name: 'co2',
          unit: 'umol mol-1',
          standard_name: 'mole_fraction_of_carbon_dioxide_in_air',
          description: 'CO2 <b>',
          chambers,
        },
      ],
    });
    const e = await store.create(metadata(), 'api:test');
    const text = readFileSync(join(e.dir, 'README.md'), 'utf8');
    expect(
      headings(text).map((h) => h.split(' ')[0] + ' ' + (h.startsWith('# ') ? '<title>' : h.slice(h.indexOf(' ') + 1))),
    ).toEqual([
      '# <title>',
      '## Who',
      '## Chambers and treatments',
      '## Variables',
      '## Runs',
      '## Files',
      '## How to cite',
    ]);
    expect(text).not.toMatch(/<(script|img|b)\b/i);
    expect(text).not.toMatch(/(^|[^\\])\]\(/);
    expect(text).not.toMatch(/(^|[^\\])!\[/);
    expect(text).toContain('&lt;script&gt;');
    // The treatment table keeps exactly its one row per chamber and three columns.
    const rows = lines(text).filter((l) => l.startsWith('| ch01'));
    expect(rows).toHaveLength(1);
    expect(rows[0]!.split(/(?<!\\)\|/).length - 2).toBe(3);
    expect(lines(text).some((l) => l.startsWith('| fake'))).toBe(false);
    // Plain values stay readable.
    expect(text).toContain('| `co2` | umol mol-1 | mole_fraction_of_carbon_dioxide_in_air | CO2 &lt;b&gt; | ch01 |');

    const plan = readFileSync(join(e.dir, 'dmp.md'), 'utf8');
    expect(headings(plan).filter((h) => h.startsWith('# '))).toHaveLength(1);
    expect(lines(plan).some((l) => l.startsWith('# licence') || l.startsWith('# Injected'))).toBe(false);
    expect(plan).not.toMatch(/<script/i);
    expect(readdirSync(canaries)).toEqual([]);
  });

  it('escapes markup characters but leaves words, units and snake_case alone', () => {
    expect(mdInline('air_temperature in umol mol-1')).toBe('air_temperature in umol mol-1');
    expect(mdInline('# x')).toBe('\\# x');
    expect(mdInline('1. item')).toBe('1\\. item');
    expect(mdInline('- item')).toBe('\\- item');
    expect(mdInline('a\nb\r\nc')).toBe('a b c');
    expect(mdInline('[a](b) *c* _d_ `e` <f> & g|h')).toBe('\\[a\\](b) \\*c\\* \\_d\\_ \\`e\\` &lt;f&gt; &amp; g\\|h');
    const md = readme({ ...metadata(), title: 'T' }, [], [], []);
    const plan = dmp({ ...metadata(), title: 'T' }, [], [], 0);
    expect(md.startsWith('# T\n')).toBe(true);
    expect(plan.startsWith('# Data management plan — T (`hostile-2026`)\n')).toBe(true);
  });
});

describe('Content-Disposition', () => {
  it('keeps a plain name as it was', () => {
    expect(contentDisposition('drought-2025_r001.nc')).toBe('attachment; filename="drought-2025_r001.nc"');
  });

  it('gives an ASCII fallback with unsafe characters replaced and the exact name as filename*= UTF-8', () => {
    for (const name of [
      'a"b;c.nc',
      'x\r\nSet-Cookie: a=b.nc',
      'é 🌱 $(id) `x`.zip',
      "it's\\..nc",
      '../../etc/passwd',
      '..hidden',
      '',
    ]) {
      const h = contentDisposition(name);
      expect(h).not.toMatch(/[\r\n\0]/);
      const m = /^attachment; filename="([A-Za-z0-9._-]+)"(?:; filename\*=UTF-8''([A-Za-z0-9!#$&+.^_`|~%-]+))?$/.exec(
        h,
      );
      expect(m, h).not.toBeNull();
      expect(m![1]!.startsWith('.')).toBe(false);
      if (m![2]) expect(decodeURIComponent(m![2])).toBe(name.replace(/[\r\n]/g, '').replace(/[/\\]/g, '_'));
    }
    expect(contentDisposition('é.nc')).toBe(`attachment; filename="_.nc"; filename*=UTF-8''%C3%A9.nc`);
  });
});
