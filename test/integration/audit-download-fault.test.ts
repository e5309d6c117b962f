/**
 * The data.nc download that used to kill the whole process: the audit entry of a
 * download is written when its stream closes, and with the audit log's folder turned
 * read-only during the transfer (a real tmpfs remount, not chmod) that write threw in
 * the close handler. Now the download finishes, the failed entry is logged and shown in
 * health with path and errno, the next download is refused with 503 (nothing unaudited),
 * and everything works again once the folder is writable.
 */
import { ftruncateSync, openSync, closeSync, readFileSync } from 'node:fs';
import { get } from 'node:http';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/app.ts';
import { withFaults } from '../../src/api/health-faults.ts';
import { AuditLog } from '../../src/auth/audit.ts';
import type { Logger } from '../../src/core/log.ts';
import { UnexpectedErrors } from '../../src/core/unexpected.ts';
import { WriteFaults } from '../../src/core/write-faults.ts';
import { experimentBody, fixture, health, type Fixture } from './api-fixtures.ts';
import { mountTmpfs, type Mount } from '../support/faulty-fs.ts';

let f: Fixture;
let app: FastifyInstance;
let state: Mount;
let port: number;
let big: string;
const lines: string[] = [];
const log: Logger = {
  debug: () => {},
  info: (m) => void lines.push(m),
  warn: (m) => void lines.push(m),
  error: (m) => void lines.push(m),
  child: () => log,
};
const faults = new WriteFaults(60_000, log);
const SIZE = 64 * 1024 * 1024;

beforeAll(async () => {
  f = await fixture();
  state = mountTmpfs(join(f.dir, 'audit-state'), 1024);
  await f.store.create(experimentBody('dl-fault', ['c1']), 'test');
  f.store.startRun('dl-fault', 'test');
  // A large run file (sparse), so the transfer is still going when the disk turns read-only.
  big = join(f.dir, 'big.nc');
  const fd = openSync(big, 'w');
  ftruncateSync(fd, SIZE);
  closeSync(fd);
  const audit = new AuditLog(join(state.dir, 'audit.jsonl'), faults, log);
  app = await buildApp({
    health: () => withFaults(health(), faults, new UnexpectedErrors()),
    experiments: f.store,
    users: f.users,
    audit,
    runFile: () => big,
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  port = (app.server.address() as { port: number }).port;
}, 60_000);

afterAll(async () => {
  await app?.close();
  state?.unmount();
  await f?.close();
});

/** Downloads data.nc; `midway` runs after the first chunk, with the transfer paused. */
function download(midway?: () => void): Promise<{ status: number; bytes: number; body: string }> {
  return new Promise((resolve, reject) => {
    get(
      {
        host: '127.0.0.1',
        port,
        path: '/api/experiments/dl-fault/runs/r001/data.nc',
        headers: { authorization: `Bearer ${f.tokens.researcher}` },
      },
      (res) => {
        let bytes = 0;
        let first = true;
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => {
          bytes += c.length;
          if (res.statusCode !== 200) chunks.push(c);
          if (first && midway) {
            first = false;
            res.pause();
            midway();
            res.resume();
          }
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes, body: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      },
    ).on('error', reject);
  });
}

const healthNow = async () =>
  (await app.inject({ url: '/api/health' })).json() as {
    status: string;
    write_faults: Array<{ target: string; path: string; errno: string }>;
  };

describe('audit log turning read-only during a data.nc download', () => {
  it('finishes the download, logs the lost entry, and reports the audit file with EROFS; the server keeps serving', async () => {
    const r = await download(() => state.readOnly());
    expect(r).toMatchObject({ status: 200, bytes: SIZE });
    await expect.poll(() => faults.get('audit')?.errno, { timeout: 15_000 }).toBe('EROFS');
    expect(
      lines.some(
        (l) =>
          l.includes('entry not recorded') && l.includes('"action":"download"') && l.includes('dl-fault/r001/data.nc'),
      ),
    ).toBe(true);
    const h = await healthNow();
    expect(h.status).toBe('degraded');
    expect(h.write_faults).toEqual([
      expect.objectContaining({ target: 'audit', path: join(state.dir, 'audit.jsonl'), errno: 'EROFS' }),
    ]);
  }, 60_000);

  it('refuses the next download with 503 naming the file and the errno', async () => {
    const r = await download();
    expect(r.status).toBe(503);
    expect(JSON.parse(r.body)).toMatchObject({ path: join(state.dir, 'audit.jsonl'), errno: 'EROFS' });
  });

  it('serves and audits downloads again once the folder is writable', async () => {
    state.writable();
    faults.retryNow();
    expect((await healthNow()).status).toBe('ok');
    const r = await download();
    expect(r).toMatchObject({ status: 200, bytes: SIZE });
    await expect
      .poll(() => readFileSync(join(state.dir, 'audit.jsonl'), 'utf8').includes('"what":"dl-fault/r001/data.nc"'), {
        timeout: 15_000,
      })
      .toBe(true);
  }, 60_000);
});
