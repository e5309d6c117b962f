#!/usr/bin/env node
// Makes sure the real servers and tools the tests talk to are on this machine.
// As root it installs what is missing with apt-get (Debian packages only); otherwise
// it fails, naming each missing package. Tests never skip because a server is absent.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** Each check: the Debian package that provides it and how to tell it is there. */
const checks = [
  { pkg: 'mosquitto', ok: () => existsSync('/usr/sbin/mosquitto') },
  { pkg: 'mosquitto-clients', ok: () => existsSync('/usr/bin/mosquitto_pub') },
  { pkg: 'python3-pymodbus', ok: () => pyImports('pymodbus') },
  { pkg: 'socat', ok: () => existsSync('/usr/bin/socat') },
  // test/integration/standalone-clone.test.ts traces the files a fresh clone's test run reads
  { pkg: 'strace', ok: () => existsSync('/usr/bin/strace') },
  { pkg: 'udunits-bin', ok: () => existsSync('/usr/bin/udunits2') },
  { pkg: 'victoria-metrics', ok: () => existsSync('/usr/bin/victoria-metrics') },
  { pkg: 'influxdb', ok: () => existsSync('/usr/bin/influxd') },
  { pkg: 'netcdf-bin', ok: () => existsSync('/usr/bin/ncdump') },
  { pkg: 'python3-netcdf4', ok: () => pyImports('netCDF4') },
  { pkg: 'python3-xarray', ok: () => pyImports('xarray') },
  // the web page's browser tests (test/e2e) drive it with playwright-core
  { pkg: 'chromium', ok: () => existsSync('/usr/bin/chromium') },
];

function pyImports(mod) {
  if (!existsSync('/usr/bin/python3')) return false;
  return spawnSync('/usr/bin/python3', ['-c', `import ${mod}`], { stdio: 'ignore' }).status === 0;
}

const missing = checks.filter((c) => !c.ok()).map((c) => c.pkg);
if (missing.length === 0) process.exit(0);

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
if (!isRoot) {
  console.error(
    `missing system packages for the tests: ${missing.join(' ')}\n` +
      `install them with: sudo apt-get update && sudo apt-get install -y ${missing.join(' ')}`,
  );
  process.exit(1);
}
console.error(`installing system packages for the tests: ${missing.join(' ')}`);
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { stdio: 'inherit', env });
const still = checks.filter((c) => !c.ok()).map((c) => c.pkg);
if (still.length) {
  console.error(`still missing after apt-get install: ${still.join(' ')}`);
  process.exit(1);
}
