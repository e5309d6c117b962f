/**
 * The database path is safe by default: `octopus collect` with the default configuration
 * (stable client id, persistent session) killed with SIGKILL under a live load stores
 * every published sample exactly once; a gateway restarted with an empty data folder
 * (new epoch, seq from 0) has its new messages stored; a forged far-ahead seq does not
 * make real messages look like duplicates; never more requests in flight than
 * `influx.concurrency`, and a batch is sent again only when its own send failed; after a
 * kill, a batch the journal records as written is not sent again even when its first
 * records are already gone from the buffer, and a journal from before a buffer reset
 * holds nothing back.
 * Real Mosquitto and VictoriaMetrics; a tiny HTTP server stands in for the database where
 * requests must be counted.
 */
import type { ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectMqtt } from '../../src/bus/mqtt-client.ts';
import { Spool } from '../../src/bus/spool.ts';
import { messageKey } from '../../src/collector/dedupe.ts';
import { InfluxSink } from '../../src/collector/sinks/influx/sink.ts';
import { InfluxConfig, SpoolConfig } from '../../src/config/instance-schema.ts';
import { createLogger } from '../../src/core/log.ts';
import { cleanScratch, collector, scratch, syntheticGateway } from '../support/collector-fixtures.ts';
import { Mosquitto } from '../support/mosquitto.ts';
import { startCollect } from '../support/cli.ts';
import { eventually, freePort } from '../support/ports.ts';
import { Victoria, type ExportedSeries } from '../support/victoria.ts';
import { standaloneHealth, withCollector } from '../../src/collector/health.ts';

let mq: Mosquitto;
let vm: Victoria;

beforeAll(async () => {
  [mq, vm] = await Promise.all([Mosquitto.start({ persistence: true }), Victoria.start()]);
});
afterAll(async () => {
  await Promise.all([mq?.close(), vm?.close()]);
  cleanScratch();
});

/** Rows and distinct (series, time) pairs of the samples matching `selector`. */
async function rows(selector: string): Promise<{ total: number; distinct: number; series: ExportedSeries[] }> {
  const series = await vm.export(selector);
  let total = 0;
  const keys = new Set<string>();
  for (const s of series) {
    total += s.timestamps.length;
    const id = JSON.stringify(Object.entries(s.metric).sort());
    for (const t of s.timestamps) keys.add(`${id}@${t}`);
  }
  return { total, distinct: keys.size, series };
}

const kill9 = (p: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (p.exitCode !== null || p.signalCode !== null) return resolve();
    p.once('exit', () => resolve());
    p.kill('SIGKILL');
  });

/** A stand-in database: answers every write after `delayMs`, or fails while `failing`; counts concurrent requests and accepted lines. */
async function fakeDatabase() {
  const db = {
    delayMs: 150,
    failing: 0,
    active: 0,
    maxActive: 0,
    requests: 0,
    /** Lines answered with 204, with how many times each was accepted. */
    accepted: new Map<string, number>(),
    server: undefined as unknown as Server,
    url: '',
  };
  db.server = createServer((req, res) => {
    db.active++;
    db.requests++;
    db.maxActive = Math.max(db.maxActive, db.active);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const body = (req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw).toString('utf8');
      const fail = db.failing > 0;
      if (fail) db.failing--;
      setTimeout(() => {
        db.active--;
        if (fail) {
          res.writeHead(503).end('unavailable');
          return;
        }
        for (const line of body.split('\n')) if (line) db.accepted.set(line, (db.accepted.get(line) ?? 0) + 1);
        res.writeHead(204).end();
      }, db.delayMs);
    });
  });
  await new Promise<void>((r) => db.server.listen(0, '127.0.0.1', r));
  const addr = db.server.address();
  db.url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  return db;
}

/**
 * A collector restart on what `dir` holds (InfluxDB buffer and sent journal): a new sink
 * (`inspect` sees it before it starts) sends the buffer to a stand-in database until it is
 * empty; returns the lines the database accepted, with how many times each.
 */
async function drainAfterRestart(dir: string, inspect?: (sink: InfluxSink) => void): Promise<Map<string, number>> {
  const db = await fakeDatabase();
  db.delayMs = 0;
  try {
    const cfg = InfluxConfig.parse({ url: db.url, bucket: 'octopus', measurement: 'journal', flush_interval_ms: 50 });
    const sink = new InfluxSink(cfg, dir, undefined, createLogger('journal-test'));
    inspect?.(sink);
    sink.start();
    await eventually(() => sink.health().buffered === 0, 'the buffer emptied');
    await sink.close();
    return db.accepted;
  } finally {
    db.server.closeAllConnections();
    await new Promise((r) => db.server.close(r));
  }
}

describe('collector durability with the default configuration', () => {
  it('stores every published sample exactly once although `octopus collect` is killed with SIGKILL three times under load', async () => {
    const dataDir = scratch('octopus-collect-kill-');
    const healthPort = await freePort();
    const config = join(dataDir, 'collect.yaml');
    // Only what a collector must be told: where the broker, the database and its data are. Everything else default.
    writeFileSync(
      config,
      [
        `data_dir: ${JSON.stringify(join(dataDir, 'data'))}`,
        `mqtt: { url: "${mq.url}" }`,
        `influx: { url: "${vm.url}", bucket: octopus, measurement: killed }`,
        'experiments: { enabled: false }',
        '',
      ].join('\n'),
    );
    const env = { OCTOPUS_HEALTH_PORT: String(healthPort) };
    let col = await startCollect(config, env);
    expect(col.output()).not.toContain('Simulating');
    const health = async () =>
      (await (await fetch(`http://127.0.0.1:${healthPort}/api/health`)).json()) as {
        sinks: { collector: { client_id: string; clean_session: boolean } };
      };
    const h = await eventually(() => health().catch(() => undefined), 'health answers on OCTOPUS_HEALTH_PORT');
    expect(h.sinks.collector.clean_session).toBe(false);
    expect(h.sinks.collector.client_id).toMatch(/^octopus-collector-gw1-/);
    const firstId = h.sinks.collector.client_id;

    const gw = syntheticGateway(mq.url, 'gw-kill');
    await eventually(() => gw.pub.stats().connected, 'gateway connected');
    // Live load: 2 chambers × 40 tags every 50 ms (1,600 values/s) while the collector is killed and restarted.
    const load = setInterval(() => gw.cycle(['k1', 'k2'], 40), 50);
    try {
      for (let kill = 0; kill < 3; kill++) {
        const before = (await rows('killed_value')).total;
        await eventually(
          async () => (await rows('killed_value')).total > before + 2000,
          `collector writing before kill ${kill + 1}`,
          40_000,
        );
        await kill9(col.proc);
        // Down for a moment while the gateway keeps publishing: the broker queues for the persistent session.
        const sentAtKill = gw.sent;
        await eventually(() => gw.sent > sentAtKill + 2000, 'load continues while the collector is down');
        col = await startCollect(config, env);
        expect(
          (await eventually(() => health().catch(() => undefined), 'health after restart')).sinks.collector.client_id,
        ).toBe(firstId);
      }
    } finally {
      clearInterval(load);
    }
    await eventually(
      () => gw.pub.stats().inflight === 0 && gw.pub.spoolDepth().messages === 0,
      'gateway drained',
      30_000,
    );
    const sent = gw.sent;
    await eventually(async () => (await rows('killed_value')).distinct >= sent, `all ${sent} samples stored`, 60_000);
    await eventually(
      async () =>
        (
          (await (await fetch(`http://127.0.0.1:${healthPort}/api/health`)).json()) as {
            sinks: { influx: { buffered: number } };
          }
        ).sinks.influx.buffered === 0,
      'buffer empty',
    );
    const r = await rows('killed_value');
    expect(r.distinct).toBe(sent);
    expect(r.total).toBe(sent);
    col.proc.kill('SIGINT');
    await new Promise((res) => col.proc.once('exit', res));
    await gw.pub.close();
  }, 240_000);

  it('does not store twice a batch whose request was running when `octopus collect` was killed', async () => {
    // A proxy that forwards every write to VictoriaMetrics at once but holds the answer while `hold` is set.
    let hold = true;
    let forwarded = 0;
    const held: Array<() => void> = [];
    const proxy = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        fetch(`${vm.url}${req.url}`, {
          method: req.method,
          headers: {
            'content-type': req.headers['content-type'] ?? 'text/plain',
            ...(req.headers['content-encoding'] ? { 'content-encoding': req.headers['content-encoding'] } : {}),
          },
          body: req.method === 'POST' ? Buffer.concat(chunks) : undefined,
        })
          .then(async (up) => {
            const body = Buffer.from(await up.arrayBuffer());
            if (req.method === 'POST') forwarded++;
            const answer = () =>
              res.writeHead(up.status, { 'content-type': up.headers.get('content-type') ?? 'text/plain' }).end(body);
            if (hold && req.method === 'POST') held.push(answer);
            else answer();
          })
          .catch(() => res.writeHead(502).end());
      });
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const addr = proxy.address();
    const proxyUrl = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
    try {
      const dataDir = scratch('octopus-collect-inflight-');
      const config = join(dataDir, 'collect.yaml');
      writeFileSync(
        config,
        [
          `data_dir: ${JSON.stringify(join(dataDir, 'data'))}`,
          `mqtt: { url: "${mq.url}" }`,
          `influx: { url: "${proxyUrl}", bucket: octopus, measurement: inflight }`,
          'experiments: { enabled: false }',
          '',
        ].join('\n'),
      );
      const env = { OCTOPUS_HEALTH_PORT: String(await freePort()) };
      let col = await startCollect(config, env);
      const gw = syntheticGateway(mq.url, 'gw-inflight');
      await eventually(() => gw.pub.stats().connected, 'gateway connected');
      for (let i = 0; i < 20; i++) gw.cycle(['i1', 'i2'], 10);
      // The database stored what the collector sent, but the collector never heard back.
      await eventually(
        async () => forwarded > 0 && held.length === forwarded && (await vm.count('inflight_value')) === gw.sent,
        'batches stored, answers held',
      );
      await kill9(col.proc);
      hold = false;
      held.splice(0).forEach((answer) => answer());
      col = await startCollect(config, env);
      for (let i = 0; i < 5; i++) gw.cycle(['i1', 'i2'], 10);
      await eventually(() => col.output().includes('sent again'), 'the batches in flight at the kill checked', 60_000);
      await eventually(
        async () => (await rows('inflight_value')).distinct === gw.sent,
        `all ${gw.sent} samples stored`,
      );
      await eventually(
        async () =>
          (
            (await (await fetch(`http://127.0.0.1:${env.OCTOPUS_HEALTH_PORT}/api/health`)).json()) as {
              sinks: { influx: { buffered: number } };
            }
          ).sinks.influx.buffered === 0,
        'buffer empty',
      );
      const r = await rows('inflight_value');
      expect(r.total).toBe(gw.sent);
      expect(col.output()).toMatch(/were being written when the collector stopped: \d+ already stored, 0 sent again/);
      col.proc.kill('SIGINT');
      await new Promise((res) => col.proc.once('exit', res));
      await gw.pub.close();
    } finally {
      proxy.closeAllConnections();
      await new Promise((r) => proxy.close(r));
    }
  }, 120_000);

  it('stores the new messages of a gateway restarted with an empty data folder (seq from 0 again)', async () => {
    const { c } = collector(
      {
        mqtt: { url: mq.url },
        influx: { url: vm.url, bucket: 'octopus', measurement: 'reborn', flush_interval_ms: 100 },
      },
      mq.url,
    );
    await c.subscribed;
    const before = syntheticGateway(mq.url, 'gw-reborn');
    await eventually(() => before.pub.stats().connected, 'gateway connected');
    for (let i = 0; i < 200; i++) before.cycle(['r1'], 5);
    await eventually(async () => (await vm.count('reborn_value')) === 1000, 'first life stored');
    await before.pub.close();
    // Same gateway id, fresh spool: numbering starts at 0 again, with a new epoch.
    const after = syntheticGateway(mq.url, 'gw-reborn');
    expect(after.pub.epoch).not.toBe(before.pub.epoch);
    await eventually(() => after.pub.stats().connected, 'restarted gateway connected');
    for (let i = 0; i < 50; i++) after.cycle(['r2'], 5);
    await eventually(async () => (await vm.count('reborn_value{chamber="r2"}')) === 250, 'second life stored');
    expect(c.health().subscriber).toMatchObject({ duplicates: 0, stale_dropped: 0 });
    // A redelivery of a message of the second life (same gw, ep, seq) is dropped and counted.
    const again = connectMqtt({ url: mq.url, clientId: 'redeliverer' });
    await eventually(() => again.connected, 'redeliverer connected');
    await again.publish(
      'octopus/r2/data',
      JSON.stringify({
        v: 1,
        gw: 'gw-reborn',
        ep: after.pub.epoch,
        seq: 3,
        chamber: 'r2',
        samples: [{ tag: 'dup', ts: Date.now() - 1000, value: 1, q: 'good' }],
      }),
      { qos: 1 },
    );
    await eventually(() => c.health().subscriber.duplicates === 1, 'redelivery dropped');
    expect(await vm.count('reborn_value{tag="dup"}')).toBe(0);
    await Promise.all([c.stop(), after.pub.close(), again.end()]);
  });

  it('a forged far-ahead seq with the real gateway id and epoch does not make its real messages look like duplicates', async () => {
    const { c } = collector(
      {
        mqtt: { url: mq.url },
        influx: { url: vm.url, bucket: 'octopus', measurement: 'poisoned', flush_interval_ms: 100 },
      },
      mq.url,
    );
    await c.subscribed;
    const gw = syntheticGateway(mq.url, 'gw-poisoned');
    await eventually(() => gw.pub.stats().connected, 'gateway connected');
    for (let i = 0; i < 20; i++) gw.cycle(['p1'], 5);
    await eventually(async () => (await vm.count('poisoned_value')) === 100, 'first messages stored');
    const forger = connectMqtt({ url: mq.url, clientId: 'forger' });
    await eventually(() => forger.connected, 'forger connected');
    // Epoch and gateway id read off the wire, seq far ahead.
    const fake = {
      v: 1,
      gw: 'gw-poisoned',
      ep: gw.pub.epoch,
      seq: 9_000_000_000,
      chamber: 'p1',
      samples: [{ tag: 'forged', ts: Date.now() - 5000, value: 1, q: 'good' }],
    };
    await forger.publish('octopus/p1/data', JSON.stringify(fake), { qos: 1 });
    await eventually(() => c.health().subscriber.seq_jumps === 1, 'far-ahead seq noticed');
    for (let i = 0; i < 20; i++) gw.cycle(['p1'], 5);
    await eventually(
      async () => (await vm.count('poisoned_value{tag!="forged"}')) === 200,
      'real messages after the forgery stored',
    );
    expect(c.health().subscriber).toMatchObject({ duplicates: 0, stale_dropped: 0 });
    await Promise.all([c.stop(), gw.pub.close(), forger.end()]);
  });

  it('refuses a sample stamped far in the future for that chamber only, counting it', async () => {
    const { c } = collector(
      {
        mqtt: { url: mq.url },
        influx: { url: vm.url, bucket: 'octopus', measurement: 'future', flush_interval_ms: 100 },
      },
      mq.url,
    );
    await c.subscribed;
    const sender = connectMqtt({ url: mq.url, clientId: 'future-sender' });
    await eventually(() => sender.connected, 'sender connected');
    const now = Date.now();
    const msg = (chamber: string, seq: number, samples: Array<{ tag: string; ts: number }>) =>
      JSON.stringify({
        v: 1,
        gw: 'gw-future',
        ep: 'e1',
        seq,
        chamber,
        samples: samples.map((s) => ({ ...s, value: 1, q: 'good' })),
      });
    await sender.publish(
      'octopus/f1/data',
      msg('f1', 0, [
        { tag: 'a', ts: now },
        { tag: 'b', ts: now + 3_600_000 },
        { tag: 'c', ts: now - 1000 },
      ]),
      { qos: 1 },
    );
    await sender.publish('octopus/f2/data', msg('f2', 1, [{ tag: 'a', ts: now }]), { qos: 1 });
    await eventually(async () => (await vm.count('future_value')) === 3, 'the samples of the present stored');
    expect(await vm.count('future_value{tag="b"}')).toBe(0);
    expect(c.health().subscriber.future_refused).toEqual({ f1: 1 });
    await Promise.all([c.stop(), sender.end()]);
  });
});

describe('requests to the database', () => {
  it('never runs more requests than influx.concurrency, and sends no batch twice after an outage', async () => {
    const db = await fakeDatabase();
    try {
      const { c } = collector(
        {
          mqtt: { url: mq.url },
          influx: {
            url: db.url,
            bucket: 'octopus',
            measurement: 'flights',
            concurrency: 3,
            batch_lines: 100,
            flush_interval_ms: 50,
            retry_min_ms: 200,
            retry_max_ms: 400,
          },
        },
        mq.url,
      );
      await c.subscribed;
      const gw = syntheticGateway(mq.url, 'gw-flights');
      await eventually(() => gw.pub.stats().connected, 'gateway connected');
      // Some requests fail while others of the same round succeed.
      db.failing = 4;
      for (let i = 0; i < 100; i++) gw.cycle(['x1', 'x2'], 25);
      await eventually(() => db.accepted.size === gw.sent, `all ${gw.sent} lines accepted`, 60_000);
      await eventually(() => c.health().influx!.buffered === 0, 'buffer trimmed');
      const twice = [...db.accepted.values()].filter((n) => n > 1).length;
      expect(twice).toBe(0);
      expect(db.maxActive).toBeLessThanOrEqual(3);
      expect(db.maxActive).toBeGreaterThan(1);
      expect(c.health().influx!.max_in_flight).toBeLessThanOrEqual(3);
      expect(c.health().influx!.retries).toBeGreaterThanOrEqual(1);
      await Promise.all([c.stop(), gw.pub.close()]);
    } finally {
      db.server.closeAllConnections();
      await new Promise((r) => db.server.close(r));
    }
  }, 90_000);

  it('after a kill, does not send again a written batch whose first records were already deleted from the buffer', async () => {
    // The state a kill can leave: batch 50–149 written (journal), the buffer segment holding
    // 0–99 deleted after the trim, the cursor on disk not yet past 50 (it lags by up to 200 ms).
    const dir = scratch('octopus-journal-');
    const bufferDir = join(dir, 'influx-buffer');
    const key = (seq: number) => messageKey({ gw: 'gw-j', ep: 'e1', seq });
    const line = (seq: number) => `journal,chamber=j1,q=good,tag=t value=${seq} ${1_700_000_000_000 + seq * 1000}\n`;
    const spoolCfg = SpoolConfig.parse({ fsync: 'never' });
    let spool = Spool.open(bufferDir, spoolCfg);
    for (let i = 0; i < 100; i++) spool.append(key(i), line(i), 1);
    spool.close();
    spool = Spool.open(bufferDir, spoolCfg); // a new segment from 100 on
    for (let i = 100; i < 200; i++) spool.append(key(i), line(i), 1);
    expect(spool.read(100)).toHaveLength(100);
    spool.ack(99); // deletes the segment of 0–99
    spool.close();
    const cursorFile = join(bufferDir, 'cursor.json');
    writeFileSync(cursorFile, JSON.stringify({ ...JSON.parse(readFileSync(cursorFile, 'utf8')), acked: 50 }));
    writeFileSync(
      `${bufferDir}.sent-journal`,
      `${JSON.stringify({ first: 50, last: 149, firstKey: key(50), lastKey: key(149) })}\n`,
    );
    const accepted = await drainAfterRestart(dir, (sink) =>
      // The dedupe rebuild still gets every message the buffer holds.
      expect(sink.bufferedKeys()).toEqual(Array.from({ length: 100 }, (_, i) => key(100 + i))),
    );
    const sent = [...accepted.keys()].map((l) => Number(/value=(\d+)/.exec(l)![1])).sort((a, b) => a - b);
    expect(sent).toEqual(Array.from({ length: 50 }, (_, i) => 150 + i));
    expect([...accepted.values()].every((n) => n === 1)).toBe(true);
  });

  it('sends a journalled range again when the buffer holds other records under its numbers (the buffer was reset)', async () => {
    const dir = scratch('octopus-journal-reset-');
    const bufferDir = join(dir, 'influx-buffer');
    const spool = Spool.open(bufferDir, SpoolConfig.parse({ fsync: 'never' }));
    for (let i = 0; i < 20; i++)
      spool.append(
        messageKey({ gw: 'gw-new', ep: 'e2', seq: i }),
        `reset,chamber=r1,q=good,tag=t value=${i} ${1_700_000_000_000 + i}\n`,
        1,
      );
    spool.close();
    // A journal from before the reset: its range names other messages.
    const old = (seq: number) => messageKey({ gw: 'gw-old', ep: 'e1', seq });
    writeFileSync(
      `${bufferDir}.sent-journal`,
      `${JSON.stringify({ first: 0, last: 19, firstKey: old(0), lastKey: old(19) })}\n`,
    );
    expect((await drainAfterRestart(dir)).size).toBe(20);
  });

  it('reports an unreachable database at the first refused connection, not after timeout_ms', async () => {
    const closed = await freePort();
    const { c } = collector(
      {
        mqtt: { url: mq.url },
        influx: {
          url: `http://127.0.0.1:${closed}`,
          bucket: 'octopus',
          measurement: 'refused',
          timeout_ms: 600_000,
          flush_interval_ms: 50,
        },
      },
      mq.url,
    );
    await c.subscribed;
    const gw = syntheticGateway(mq.url, 'gw-refused');
    await eventually(() => gw.pub.stats().connected, 'gateway connected');
    gw.cycle(['y'], 3);
    // timeout_ms is ten minutes: only the refused connection can degrade it within the wait.
    const h = await eventually(
      () => (c.health().influx!.state === 'retrying' ? c.health().influx : undefined),
      'state retrying',
      30_000,
    );
    expect(h.last_error).toMatch(/ECONNREFUSED/);
    expect(h.buffered).toBe(3);
    await Promise.all([c.stop(), gw.pub.close()]);
  });

  it('reports a database that accepts connections but does not answer, long before timeout_ms', async () => {
    const frozen = await Victoria.start();
    try {
      const { c } = collector(
        {
          mqtt: { url: mq.url },
          influx: {
            url: frozen.url,
            bucket: 'octopus',
            measurement: 'frozen',
            timeout_ms: 600_000,
            flush_interval_ms: 50,
          },
        },
        mq.url,
      );
      await c.subscribed;
      const gw = syntheticGateway(mq.url, 'gw-frozen');
      await eventually(() => gw.pub.stats().connected, 'gateway connected');
      gw.cycle(['z'], 3);
      await eventually(async () => (await frozen.count('frozen_value')) === 3, 'written while it answers');
      frozen.signal('SIGSTOP');
      gw.cycle(['z'], 3);
      const report = () => withCollector(standaloneHealth('gw1', mq.url, c), c.health());
      // timeout_ms is ten minutes: only the unanswered request can degrade it within the wait.
      const h = await eventually(
        () => (report().status === 'degraded' ? report() : undefined),
        'health degraded',
        30_000,
      );
      expect(h.problems.join('\n')).toMatch(
        /not writable \(no answer to a write for \d+\.\d s\); 3 samples buffered on disk/,
      );
      frozen.signal('SIGCONT');
      await eventually(async () => (await frozen.count('frozen_value')) === 6, 'written once it answers again');
      await eventually(() => report().status === 'ok', 'health ok again');
      await Promise.all([c.stop(), gw.pub.close()]);
    } finally {
      frozen.signal('SIGCONT');
      await frozen.close();
    }
  }, 90_000);
});
