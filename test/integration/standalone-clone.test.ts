/**
 * The repository stands alone: its tracked files, copied to an empty folder with nothing
 * beside it, install with `npm ci` and pass the profile corpus test, and nothing the test
 * run does reads a file outside that folder (no sibling `shared` folder, no path of the machine the
 * repository was developed on).
 *
 * How "reads nothing outside" is proven: the corpus test runs under `strace -f`, which logs
 * every path-taking syscall (open, stat, access, readlink, execve, …) of vitest and every
 * process it starts (udunits2 included). Each access is then judged:
 * - inside the copy: fine;
 * - a successful access elsewhere must be the operating system or the Node.js installation
 *   (/usr, /lib, /etc, /proc, /sys, /dev, …) and never a `node_modules` folder outside the
 *   copy (a globally installed package is not in a fresh clone);
 * - the folder around the copy is empty and its ancestors are not the project: a lookup
 *   there fails, and may only be the upward search tools make for their own config files
 *   (`package.json`, `node_modules`, workspace markers). Anything else — `<parent>/shared/…` —
 *   is a read outside the repository even though it fails here (it fails the run anyway);
 * - other failed lookups (PATH search for udunits2, Node's global folders) read nothing.
 * Temporary files go to a folder inside the copy (TMPDIR) and the environment is reduced to
 * PATH/HOME/LANG, so no variable of the calling test run points elsewhere. `npm ci` itself
 * is not traced: it reads the npm cache by design, and it runs no code of the project
 * (package.json has no install scripts, checked below). A first test proves the judge
 * catches a real read of the sibling `shared` folder and a read of the original working tree.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative, sep } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../src/config/profiles.ts';
import { CF_TABLE } from '../support/cf.ts';
import { parseStrace, PATH_SYSCALLS, type FileAccess } from '../support/strace.ts';

const STRACE = '/usr/bin/strace';
/** Where the operating system and its tools live; a fresh machine has these. */
const SYSTEM = ['/usr', '/lib', '/lib32', '/lib64', '/bin', '/sbin', '/etc', '/proc', '/sys', '/dev', '/run'];
/** Files tools look for in every folder above the project (vite, vitest, Node, npm). */
const UPWARD_LOOKUPS = new Set([
  'package.json',
  'node_modules',
  'pnpm-workspace.yaml',
  'lerna.json',
  'deno.json',
  'deno.jsonc',
  'rush.json',
  'bun.lock',
  'bun.lockb',
  '.git',
]);

const under = (p: string, dir: string) => p === dir || p.startsWith(dir.endsWith(sep) ? dir : dir + sep);

/** The accesses in a trace that read (or try to read) something outside `copy`, with why. */
function outsideReads(accesses: FileAccess[], copy: string): string[] {
  const nodeHome = dirname(dirname(process.execPath)); // e.g. /usr, /opt/node, ~/.nvm/versions/node/v20
  const box = dirname(copy);
  const ancestors: string[] = [];
  for (let d = box; ; d = dirname(d)) {
    ancestors.push(d);
    if (dirname(d) === d) break;
  }
  const system = (p: string) => SYSTEM.some((s) => under(p, s)) || under(p, nodeHome);
  /** A tool's upward search for its config: `<ancestor>/package.json`, `<ancestor>/node_modules/…`. */
  const upward = (p: string) =>
    ancestors.some((d) => (dirname(p) === d && UPWARD_LOOKUPS.has(basename(p))) || under(p, join(d, 'node_modules')));
  const bad = new Set<string>();
  for (const a of accesses) {
    const p = a.path;
    if (under(p, copy) || ancestors.includes(p)) continue; // the copy, and realpath() walking up to it
    if (a.ok) {
      if (/(^|\/)node_modules(\/|$)/.test(p)) bad.add(`${a.call} ${p}: a package outside the repository`);
      else if (!system(p)) bad.add(`${a.call} ${p}: outside the repository and the system`);
      continue;
    }
    // failed: only lookups beside the copy or beside one of its ancestors are a read outside
    const beside = under(p, box) || ancestors.includes(dirname(p));
    if (beside && !upward(p) && !system(p))
      bad.add(`${a.call} ${p}: looked outside the repository (absent here, would read whatever is there)`);
  }
  return [...bad];
}

/** Runs `argv` in `cwd` under strace with a reduced environment; returns the result and the accesses. */
function traced(argv: string[], cwd: string, traceDir: string, timeout: number) {
  const log = join(traceDir, `trace-${Date.now()}.log`);
  const tmp = join(cwd, 'node_modules', '.tmp');
  mkdirSync(tmp, { recursive: true });
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? tmp,
    LANG: 'C.UTF-8',
    TMPDIR: tmp,
    CI: '1',
    NO_COLOR: '1',
  };
  const r = spawnSync(
    STRACE,
    ['-f', '-qq', '-s', '4096', '-e', `trace=${PATH_SYSCALLS.join(',')},chdir`, '-o', log, ...argv],
    { cwd, env, encoding: 'utf8', timeout },
  );
  const accesses = existsSync(log) ? parseStrace(readFileSync(log, 'utf8'), cwd) : [];
  return { r, accesses };
}

describe('a copy of the tracked files with nothing beside it', () => {
  let box: string; // the empty folder around the copy
  let copy: string;
  let traceDir: string; // the strace logs, outside the box

  beforeAll(() => {
    expect(
      existsSync(STRACE),
      `${STRACE} is missing (Debian package strace; scripts/ensure-system-deps.mjs installs it)`,
    ).toBe(true);
    const files = spawnSync('git', ['ls-files', '-z'], { cwd: PROJECT_ROOT, encoding: 'utf8' });
    expect(files.status, `git ls-files in ${PROJECT_ROOT}: ${files.stderr}`).toBe(0);
    box = mkdtempSync(join(tmpdir(), 'octopus-standalone-'));
    traceDir = mkdtempSync(join(tmpdir(), 'octopus-standalone-trace-'));
    copy = join(box, 'octopus');
    for (const f of files.stdout.split('\0').filter(Boolean)) {
      if (!existsSync(join(PROJECT_ROOT, f))) continue; // deleted in the working tree, not yet committed
      mkdirSync(dirname(join(copy, f)), { recursive: true });
      copyFileSync(join(PROJECT_ROOT, f), join(copy, f));
    }
    expect(readdirSync(box)).toEqual(['octopus']);
  });

  afterAll(() => {
    for (const d of [box, traceDir]) if (d) rmSync(d, { recursive: true, force: true });
  });

  it('has no tracked file that points at the sibling shared folder', () => {
    const hits = spawnSync('git', ['grep', '-n', '-I', '-F', ['..', 'shared'].join('/')], {
      cwd: PROJECT_ROOT,
      encoding: 'utf8',
    });
    expect(hits.stdout.split('\n').filter(Boolean)).toEqual([]);
  });

  it('the read judge catches a read of the sibling shared folder and of the original working tree', () => {
    mkdirSync(join(copy, 'node_modules'), { recursive: true });
    const script = `const fs = require('node:fs');
      try { fs.readFileSync(${JSON.stringify(join('..', 'shared', 'cf', 'cf-standard-name-table.xml'))}); } catch {}
      fs.readFileSync(${JSON.stringify(join(PROJECT_ROOT, 'package.json'))});
      fs.readFileSync('package.json');`;
    const { r, accesses } = traced([process.execPath, '-e', script], copy, traceDir, 60_000);
    expect(r.status, `${r.stderr}`).toBe(0);
    const bad = outsideReads(accesses, copy);
    expect(
      bad.some((b) => b.includes(join(box, 'shared', 'cf', 'cf-standard-name-table.xml'))),
      bad.join('\n'),
    ).toBe(true);
    expect(
      bad.some((b) => b.includes(join(PROJECT_ROOT, 'package.json'))),
      bad.join('\n'),
    ).toBe(true);
    expect(bad.some((b) => b.includes(join(copy, 'package.json')))).toBe(false);
  });

  it('installs with npm ci (which runs no code of the project) and passes the profile corpus test reading nothing outside', () => {
    const pkg = JSON.parse(readFileSync(join(copy, 'package.json'), 'utf8')) as { scripts?: Record<string, string> };
    const installScripts = ['preinstall', 'install', 'postinstall', 'prepare', 'preprepare', 'postprepare'].filter(
      (s) => pkg.scripts?.[s],
    );
    expect(installScripts, 'package.json install scripts would run project code during npm ci').toEqual([]);

    rmSync(join(copy, 'node_modules'), { recursive: true, force: true });
    const ci = spawnSync('npm', ['ci', '--prefer-offline', '--no-audit', '--no-fund'], {
      cwd: copy,
      encoding: 'utf8',
      timeout: 600_000,
    });
    expect(ci.status, `npm ci in ${copy}:\n${ci.stdout}\n${ci.stderr}`).toBe(0);
    expect(readdirSync(box)).toEqual(['octopus']);

    const vitest = join(copy, 'node_modules', 'vitest', 'vitest.mjs');
    const { r, accesses } = traced(
      [process.execPath, vitest, 'run', 'test/unit/profiles-corpus.test.ts'],
      copy,
      traceDir,
      300_000,
    );
    expect(r.status, `vitest run test/unit/profiles-corpus.test.ts in ${copy}:\n${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/Test Files\s+1 passed \(1\)/);
    // the trace really covers the test run: the CF table and a profile were read from the copy
    expect(accesses.some((a) => a.ok && a.path === join(copy, relative(PROJECT_ROOT, CF_TABLE)))).toBe(true);
    expect(accesses.some((a) => a.ok && under(a.path, join(copy, 'drivers')) && a.path.endsWith('.yaml'))).toBe(true);
    expect(outsideReads(accesses, copy)).toEqual([]);
  }, 900_000);
});
