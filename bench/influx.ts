/**
 * MQTT → InfluxDB ingest against real servers: Mosquitto (Debian) in front,
 * VictoriaMetrics (Debian, InfluxDB line protocol on /api/v2/write) behind.
 *
 * Throughput is measured as the drain rate of a backlog: three persistent sessions
 * (clean: false, fixed client ids) are subscribed to `octopus/+/data`, then the real
 * Publisher (spool + QoS 1) pre-publishes 16 chambers × 200 tags per message into the
 * broker, which queues every message once per session. Each consumer then drains its own
 * queue, one after the other, so no producer competes for the CPU:
 *
 * - ours: `octopus collect` (bin/octopus.js, the real Collector with default batch
 *   settings: 5000 lines, 1000 ms, concurrency 2, gzip) in a child process; values
 *   written = its sink's health().influx.written read from /api/health, RSS and CPU from
 *   /proc/<pid>; it must drain the whole backlog, checked at the end by counting in VM;
 * - naive: one awaited fetch POST to /api/v2/write per MQTT message (low-code flow style),
 *   the PUBACK after the write; at most OCTOPUS_BENCH_SECONDS;
 * - client-default: @influxdata/influxdb-client `getWriteApi(org, bucket, 'ms')` with its
 *   default write options (batchSize 1000, flushInterval 60000, …) and one
 *   `writePoint(new Point(…))` per sample, the PUBACK at once; written = its writeSuccess
 *   callback; at most OCTOPUS_BENCH_SECONDS.
 *
 * Then end-to-end latency "PLC value change → queryable": the Publisher sends 16 chambers
 * × 20 tags at 1 Hz with ts = publish time through the same collector (default flush
 * interval); VM is polled (/api/v1/export, no force_flush) every 50 ms and the collector's
 * written count every 20 ms, giving p50/p99 of publish → written (2xx) and of publish →
 * visible in a query.
 *
 * Last, the collector's cost per value under a live load (not a pre-filled backlog): the
 * real Publisher publishes OCTOPUS_BENCH_COST_VALUES values (default 500,000) as fast as
 * the broker takes them while one consumer runs — first bench/minimal-collector.ts
 * (subscribe, template line protocol, 5,000-line batches, nothing else), then
 * `octopus collect` with its default configuration, then `octopus collect` with the
 * archive on (a run of all 16 chambers, samples stamped at publish time) — giving
 * CPU-seconds per million values and lossless values/s of each, and their ratios to the
 * minimal collector (goals ≤ 1.5× and ≥ 0.8×).
 * `node bin/run-ts.js bench/influx.ts cost` runs only this part.
 *
 *   node bin/run-ts.js bench/influx.ts      (OCTOPUS_BENCH_SECONDS=10 by default: the
 *                                            backlog is sized for that many seconds at
 *                                            250k values/s; the baselines run that long)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { InfluxDB, Point } from '@influxdata/influxdb-client';
import { MqttConfig, SpoolConfig } from '../src/config/instance-schema.ts';
import { createLogger } from '../src/core/log.ts';
import type { Sample } from '../src/core/sample.ts';
import { connectMqtt } from '../src/bus/mqtt-client.ts';
import { Publisher } from '../src/bus/publisher.ts';
import { Spool } from '../src/bus/spool.ts';
import { Mosquitto } from '../test/support/mosquitto.ts';
import { eventually, freePort } from '../test/support/ports.ts';
import { Victoria } from '../test/support/victoria.ts';
import type { BenchSummary } from './modbus.ts';

const GOAL = 200_000;
const CHAMBERS = 16;
const TAGS = 200;
const BACKLOG_RATE = 250_000;
const LAT_TAGS = 20;
const BUCKET = 'octopus';
const FILTER = 'octopus/+/data';
const SESSIONS = {
  ours: 'bench-influx-ours',
  naive: 'bench-influx-naive',
  client: 'bench-influx-client',
  none: 'bench-influx-null',
} as const;
const CLK_TCK = 100;

/** Busy and total jiffies of the whole host (first line of /proc/stat). */
function hostCpu(): { busy: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - f[3]! - (f[4] ?? 0), total };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const n = (x: number) => Math.round(x).toLocaleString('en');
const tmpDirs: string[] = [];
const scratch = (prefix: string) => {
  const d = mkdtempSync(join(tmpdir(), prefix));
  tmpDirs.push(d);
  return d;
};

interface WireMsg {
  chamber: string;
  samples: Array<{ tag: string; ts: number; value: number | boolean | string | null; q: string }>;
}

// ---- producer ----------------------------------------------------------------------------

/** Creates a persistent session subscribed to the data topics, then leaves (the broker queues for it). */
async function registerSession(url: string, clientId: string): Promise<void> {
  const conn = connectMqtt({ url, clientId, clean: false });
  await eventually(() => conn.connected, `${clientId} connected`);
  await conn.subscribe(FILTER, 1);
  await conn.end();
}

function newPublisher(url: string, gw: string): { pub: Publisher; spool: Spool } {
  const spool = Spool.open(scratch('octopus-bench-influx-spool-'), SpoolConfig.parse({ fsync: 'never' }));
  const pub = new Publisher({
    url,
    mqtt: MqttConfig.parse({ inflight: 512 }),
    gatewayId: gw,
    spool,
    log: createLogger('bench'),
  });
  return { pub, spool };
}

/** Pre-publishes `cycles` × CHAMBERS messages of TAGS samples; resolves when the broker acknowledged all. */
async function prefill(url: string, cycles: number): Promise<{ values: number; perS: number }> {
  const { pub, spool } = newPublisher(url, 'bench-backlog');
  await eventually(() => pub.stats().connected, 'backlog publisher connected');
  const base = Date.now() - 3_600_000;
  const t0 = performance.now();
  for (let k = 0; k < cycles; k++) {
    while (spool.depth().messages > 2000) await sleep(1);
    const ts = base + k;
    for (let c = 0; c < CHAMBERS; c++) {
      const chamber = `c${c}`;
      pub.publishSamples(
        chamber,
        Array.from({ length: TAGS }, (_, i): Sample => ({
          chamber,
          tag: `tag_${i}`,
          ts,
          value: 20 + ((k + i) % 100) / 10,
          q: 'good',
        })),
      );
    }
    if (k % 8 === 7) await new Promise((r) => setImmediate(r));
  }
  if (!(await pub.drain(300_000))) throw new Error('backlog publisher did not drain in 300 s');
  const perS = pub.stats().publishedSamples / ((performance.now() - t0) / 1000);
  const values = pub.stats().publishedSamples;
  await pub.close();
  return { values, perS };
}

// ---- ours: `octopus collect` in a child process ----------------------------------------

interface Health {
  sinks: {
    collector?: { messages: number; samples: number; state: string };
    influx?: {
      written: number;
      received: number;
      buffered: number;
      dropped: number;
      dead_lettered: number;
      retries: number;
      state: string;
    };
    netcdf?: { role: string; open_runs: string[]; records: number; future_samples: number; problems: string[] };
  };
}

interface CollectorChild {
  pid: number;
  health(): Promise<Health>;
  rssMb(): number;
  cpuS(): number;
  kill(): Promise<void>;
}

/**
 * The configuration of a collector whose archive covers the load: the 16 chambers with a
 * profile of the 200 tags the load publishes (written into a profile folder beside it).
 */
function archiveSection(dir: string): Record<string, unknown> {
  const profiles = join(dir, 'profiles', 'modbus');
  mkdirSync(profiles, { recursive: true });
  const tags = Array.from(
    { length: TAGS },
    (_, i) => `  - { name: tag_${i}, address: ${2 * i}, type: float32, unit: "1", description: bench tag ${i} }`,
  );
  writeFileSync(
    join(profiles, 'bench-t200.yaml'),
    [
      'kind: modbus',
      'vendor: bench',
      'model: t200',
      'description: the bench load',
      'addressing: zero-based',
      'defaults: { area: input, order: ABCD }',
      'tags:',
      ...tags,
      '',
    ].join('\n'),
  );
  return {
    profile_dirs: [join(dir, 'profiles')],
    // Never connected by \`octopus collect\`: only the chambers' tags matter to the archive.
    chambers: Array.from({ length: CHAMBERS }, (_, c) => ({
      id: `c${c}`,
      name: `c${c}`,
      driver: 'modbus',
      profile: 'bench-t200',
      endpoint: 'tcp://127.0.0.1:9',
      modbus: { unit_id: c + 1 },
    })),
  };
}

async function startCollector(
  mqttUrl: string,
  influxUrl: string,
  clientId: string = SESSIONS.ours,
  measurement = 'ours',
  opts: { archive?: boolean; dir?: string } = {},
): Promise<CollectorChild> {
  const dir = opts.dir ?? scratch('octopus-bench-collector-');
  const port = await freePort();
  const file = join(dir, 'octopus.yaml');
  // JSON is YAML.
  writeFileSync(
    file,
    JSON.stringify(
      {
        gateway: { id: 'bench-collector' },
        data_dir: join(dir, 'data'),
        mqtt: { url: mqttUrl },
        http: { host: '127.0.0.1' },
        collector: { client_id: clientId, http_port: port },
        influx: { url: influxUrl, bucket: BUCKET, measurement },
        ...(opts.archive ? archiveSection(dir) : {}),
      },
      null,
      2,
    ),
  );
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('OCTOPUS_')));
  const bin = fileURLToPath(new URL('../bin/octopus.js', import.meta.url));
  const proc: ChildProcess = spawn(process.execPath, [bin, 'collect', '--config', file], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env,
  });
  let output = '';
  const keep = (d: Buffer) => void (output = (output + d.toString()).slice(-4000));
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const pid = proc.pid!;
  const health = async (): Promise<Health> => {
    if (proc.exitCode !== null || proc.signalCode !== null)
      throw new Error(`collector exited (${proc.exitCode ?? proc.signalCode}): ${output}`);
    const res = await fetch(`http://127.0.0.1:${port}/api/health`);
    return (await res.json()) as Health; // 503 (degraded) has the same body
  };
  await eventually(
    () => health().then((h) => h.sinks.collector !== undefined),
    'collector /api/health',
    30_000,
    20,
  ).catch((err: Error) => {
    proc.kill('SIGKILL');
    throw new Error(`${err.message}; collector output: ${output}`);
  });
  return {
    pid,
    health,
    rssMb: () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024,
    cpuS: () => {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      return (Number(fields[11]) + Number(fields[12])) / CLK_TCK; // utime + stime
    },
    kill: async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await exited;
    },
  };
}

interface OursRun {
  hostBusyPercent: number;
  perS: number;
  drainS: number;
  cpuPercent: number;
  rssStartMb: number;
  rssEndMb: number;
  rssPeakMb: number;
  startMessages: number;
  retries: number;
  dropped: number;
}

/** Drains the backlog through the collector child; rate from the first message to the last value written. */
async function drainOurs(c: CollectorChild, values: number, capS: number): Promise<OursRun> {
  let h = await c.health();
  const rssStartMb = c.rssMb();
  const startMessages = h.sinks.collector?.messages ?? 0;
  let rssPeakMb = rssStartMb;
  const deadline = performance.now() + capS * 1000;
  // The first poll where messages arrive starts the clock.
  let t0 = 0;
  let written0 = 0;
  let cpu0 = 0;
  let host0 = hostCpu();
  for (;;) {
    const now = performance.now();
    h = await c.health();
    const inf = h.sinks.influx!;
    rssPeakMb = Math.max(rssPeakMb, c.rssMb());
    if (!t0 && (h.sinks.collector?.messages ?? 0) > 0) {
      t0 = now;
      written0 = inf.written;
      cpu0 = c.cpuS();
      host0 = hostCpu();
    }
    if (inf.written >= values) {
      const drainS = (now - t0) / 1000;
      const host1 = hostCpu();
      return {
        hostBusyPercent: ((host1.busy - host0.busy) / (host1.total - host0.total)) * 100,
        perS: (inf.written - written0) / drainS,
        drainS,
        cpuPercent: ((c.cpuS() - cpu0) / drainS) * 100,
        rssStartMb,
        rssEndMb: c.rssMb(),
        rssPeakMb,
        startMessages,
        retries: inf.retries,
        dropped: inf.dropped + inf.dead_lettered,
      };
    }
    if (now > deadline)
      throw new Error(`collector wrote ${inf.written} of ${values} values in ${capS} s (${JSON.stringify(inf)})`);
    await sleep(20);
  }
}

// ---- baselines, in this process (the producer is done by then) ----------------------------

/** Runs a consumer on a persistent session for at most `seconds` after its first message. */
async function consume(
  url: string,
  clientId: string,
  seconds: number,
  handle: (msg: WireMsg) => Promise<void>,
  written: () => number,
  values: number,
  parse = true,
): Promise<{ perS: number; values: number; elapsedS: number; final: number }> {
  let t0 = 0;
  const conn = connectMqtt({
    url,
    clientId,
    clean: false,
    handleMessage: async (_topic, payload) => {
      if (!t0) t0 = performance.now();
      await handle(parse ? (JSON.parse(payload.toString('utf8')) as WireMsg) : { chamber: '', samples: [] });
    },
  });
  const startedAt = performance.now();
  // The rate runs to the last poll where the count grew: a consumer that ran out of
  // backlog before the time was up is not charged for the idle rest.
  let last = 0;
  let lastAt = 0;
  for (;;) {
    await sleep(20);
    const now = performance.now();
    if (!t0 && now - startedAt > 15_000) throw new Error(`${clientId}: no message in 15 s`);
    if (written() > last) {
      last = written();
      lastAt = now;
    }
    if (t0 && (now - t0 >= seconds * 1000 || written() >= values)) break;
  }
  const elapsedS = (lastAt - t0) / 1000;
  const w = last;
  conn.destroy();
  // A write in flight at the cut still lands: count it for the check in VM, not for the rate.
  await sleep(500);
  return { perS: w / elapsedS, values: w, elapsedS, final: written() };
}

/** One awaited POST per MQTT message, lines built by hand. */
async function naive(
  url: string,
  vmUrl: string,
  seconds: number,
  values: number,
): Promise<{ perS: number; values: number; elapsedS: number; final: number }> {
  const endpoint = `${vmUrl}/api/v2/write?${new URLSearchParams({ org: '', bucket: BUCKET, precision: 'ms' })}`;
  let written = 0;
  return consume(
    url,
    SESSIONS.naive,
    seconds,
    async (msg) => {
      let body = '';
      for (const s of msg.samples)
        body += `naive,chamber=${msg.chamber},q=${s.q},tag=${s.tag} value=${Number(s.value)} ${s.ts}\n`;
      const res = await fetch(endpoint, {
        method: 'POST',
        body,
        headers: { 'content-type': 'text/plain; charset=utf-8' },
      });
      if (!res.ok) throw new Error(`naive write: HTTP ${res.status} ${await res.text()}`);
      await res.arrayBuffer();
      written += msg.samples.length;
    },
    () => written,
    values,
  );
}

/** @influxdata/influxdb-client with its default write options, one Point per sample. */
async function clientDefault(
  url: string,
  vmUrl: string,
  seconds: number,
  values: number,
): Promise<{ perS: number; values: number; elapsedS: number; final: number }> {
  let written = 0;
  let failed = '';
  const writeApi = new InfluxDB({ url: vmUrl }).getWriteApi('', BUCKET, 'ms', {
    // Only counts; every other write option stays the library's default.
    writeSuccess: (lines: string[]) => void (written += lines.length),
    writeFailed: (err: Error) => void (failed ||= err.message),
  });
  const r = await consume(
    url,
    SESSIONS.client,
    seconds,
    async (msg) => {
      for (const s of msg.samples)
        writeApi.writePoint(
          new Point('client')
            .tag('chamber', msg.chamber)
            .tag('q', s.q)
            .tag('tag', s.tag)
            .floatField('value', Number(s.value))
            .timestamp(s.ts),
        );
    },
    () => written,
    values,
  );
  await writeApi.close();
  if (failed) throw new Error(`influxdb-client write failed: ${failed}`);
  return { ...r, final: written };
}

// ---- latency -------------------------------------------------------------------------------

function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

interface LatencyRun {
  samples: number;
  visible: number;
  writtenP50: number;
  writtenP99: number;
  visibleP50: number;
  visibleP99: number;
  visibleMax: number;
}

async function latency(mqttUrl: string, vm: Victoria, c: CollectorChild, seconds: number): Promise<LatencyRun> {
  const { pub } = newPublisher(mqttUrl, 'bench-latency');
  await eventually(() => pub.stats().connected, 'latency publisher connected');
  const perCycle = CHAMBERS * LAT_TAGS;
  const publishCycle = (k: number): number => {
    const ts = Date.now();
    for (let ch = 0; ch < CHAMBERS; ch++) {
      const chamber = `lat${ch}`;
      pub.publishSamples(
        chamber,
        Array.from({ length: LAT_TAGS }, (_, i): Sample => ({
          chamber,
          tag: `t${i}`,
          ts,
          value: k + i / 100,
          q: 'good',
        })),
      );
    }
    return ts;
  };
  const seen = new Map<string, number>(); // chamber/tag/ts → first visible
  const since = Math.floor(Date.now() / 1000) - 1;
  let stop = false;
  const selector = `ours_value{chamber=~"lat.*"}`;
  const pollVm = (async () => {
    while (!stop) {
      const res = await fetch(
        `${vm.url}/api/v1/export?${new URLSearchParams({ 'match[]': selector, start: String(since) })}`,
      );
      const text = await res.text();
      const now = Date.now();
      for (const line of text.split('\n')) {
        if (!line) continue;
        const s = JSON.parse(line) as { metric: Record<string, string>; timestamps: number[] };
        for (const ts of s.timestamps) {
          const key = `${s.metric.chamber}/${s.metric.tag}/${ts}`;
          if (!seen.has(key)) seen.set(key, now);
        }
      }
      await sleep(50);
    }
  })();
  // Warm-up: VictoriaMetrics makes a new series searchable only after ~10 s (its index);
  // real tags exist for months, so the measured cycles go to series it already knows.
  publishCycle(-1);
  await eventually(() => seen.size >= perCycle, 'latency warm-up cycle visible in VictoriaMetrics', 60_000, 50);
  const writtenBefore = (await c.health()).sinks.influx!.written;
  const sentAt: number[] = []; // ts of cycle k
  const ackedAt: number[] = []; // when written covered cycle k
  const pollHealth = (async () => {
    while (!stop) {
      const w = (await c.health()).sinks.influx!.written - writtenBefore;
      const now = Date.now();
      while (ackedAt.length < sentAt.length && w >= (ackedAt.length + 1) * perCycle) ackedAt.push(now);
      await sleep(20);
    }
  })();
  const t0 = Date.now() + 1000;
  for (let k = 0; k < seconds; k++) {
    await sleep(Math.max(0, t0 + k * 1000 - Date.now()));
    sentAt.push(publishCycle(k));
  }
  const measured = new Set(sentAt);
  const visibleNow = () => [...seen.keys()].filter((key) => measured.has(Number(key.split('/')[2])));
  const total = seconds * perCycle;
  await eventually(
    () => visibleNow().length >= total && ackedAt.length >= seconds,
    `all ${total} latency samples visible`,
    30_000,
    50,
  ).catch(() => undefined);
  stop = true;
  await Promise.all([pollHealth, pollVm]);
  await pub.close();
  const vis = visibleNow()
    .map((key) => seen.get(key)! - Number(key.split('/')[2]))
    .sort((a, b) => a - b);
  const wr = ackedAt.map((at, k) => at - sentAt[k]!).sort((a, b) => a - b);
  return {
    samples: total,
    visible: vis.length,
    writtenP50: percentile(wr, 50),
    writtenP99: percentile(wr, 99),
    visibleP50: percentile(vis, 50),
    visibleP99: percentile(vis, 99),
    visibleMax: vis.at(-1) ?? NaN,
  };
}

/** MQTT delivery ceiling: a consumer that acknowledges every message at once and does nothing else. */
async function nullConsumer(url: string, seconds: number, values: number): Promise<{ perS: number }> {
  let got = 0;
  const r = await consume(
    url,
    SESSIONS.none,
    seconds,
    async () => void (got += TAGS),
    () => got,
    values,
    false,
  );
  return { perS: r.perS };
}

// ---- the bench ------------------------------------------------------------------------------

// ---- collector cost per value under a live load ----------------------------------------

interface CostRun {
  values: number;
  cpuS: number;
  cpuPerMillion: number;
  perS: number;
  elapsedS: number;
}

const procCpuS = (pid: number) => {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
};

/**
 * Publishes `values` live (the real Publisher, as fast as the broker takes them, 16
 * chambers × 200 tags per message) while one consumer runs; the clock starts with the
 * first publish and stops when the consumer reports all of it written. CPU = the
 * consumer process's utime + stime over that span.
 */
/** `stamp`: 'past' = samples 1 ms apart two hours ago (no run covers them), 'now' = stamped with the publish time (live). */
async function liveRun(
  url: string,
  values: number,
  consumer: { pid: number; written(): Promise<number> },
  stamp: 'past' | 'now' = 'past',
): Promise<CostRun> {
  const base = Date.now() - 7_200_000;
  const { pub, spool } = newPublisher(url, `bench-live-${consumer.pid}`);
  await eventually(() => pub.stats().connected, 'live publisher connected');
  const cycles = Math.ceil(values / (CHAMBERS * TAGS));
  const total = cycles * CHAMBERS * TAGS;
  const cpu0 = procCpuS(consumer.pid);
  const t0 = performance.now();
  for (let k = 0; k < cycles; k++) {
    while (spool.depth().messages > 200) await sleep(1);
    const ts = stamp === 'now' ? Date.now() : base + k;
    for (let c = 0; c < CHAMBERS; c++) {
      const chamber = `c${c}`;
      pub.publishSamples(
        chamber,
        Array.from({ length: TAGS }, (_, i): Sample => ({
          chamber,
          tag: `tag_${i}`,
          ts,
          value: 20 + ((k + i) % 100) / 10,
          q: 'good',
        })),
      );
    }
    if (k % 4 === 3) await new Promise((r) => setImmediate(r));
  }
  for (;;) {
    if ((await consumer.written()) >= total) break;
    if (performance.now() - t0 > 600_000) throw new Error('consumer did not write everything within 600 s');
    await sleep(20);
  }
  const elapsedS = (performance.now() - t0) / 1000;
  const cpuS = procCpuS(consumer.pid) - cpu0;
  await pub.close();
  return { values: total, cpuS, cpuPerMillion: (cpuS / total) * 1e6, perS: total / elapsedS, elapsedS };
}

async function startMinimal(
  mqttUrl: string,
  vmUrl: string,
): Promise<{ pid: number; written(): Promise<number>; kill(): Promise<void> }> {
  const runTs = fileURLToPath(new URL('../bin/run-ts.js', import.meta.url));
  const script = fileURLToPath(new URL('./minimal-collector.ts', import.meta.url));
  const proc = spawn(
    process.execPath,
    [runTs, script, mqttUrl, `${vmUrl}/api/v2/write?bucket=${BUCKET}&precision=ms`, 'bench-minimal', 'minimal'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let written = 0;
  let subscribed = false;
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => {
    for (const l of d.toString().split('\n')) {
      if (l === 'subscribed') subscribed = true;
      const m = /^written (\d+)$/.exec(l);
      if (m) written = Number(m[1]);
    }
  });
  proc.stderr!.on('data', (d: Buffer) => void (err = (err + d.toString()).slice(-2000)));
  await eventually(() => subscribed || proc.exitCode !== null, 'minimal collector subscribed', 30_000);
  if (!subscribed) throw new Error(`minimal collector exited: ${err}`);
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  return {
    pid: proc.pid!,
    written: async () => written,
    kill: async () => {
      if (proc.exitCode === null) proc.kill('SIGKILL');
      await exited;
    },
  };
}

/**
 * `octopus collect` with the archive on: an experiment of the 16 chambers with a run open
 * (started before the load), the same live load with the samples stamped at their publish
 * time (as a gateway does), so they fall in the run. Checked: every value written to the
 * database, the archive the writer, the run file holding a record per second of the
 * load, no refused sample and no fault.
 */
async function archiveOnRun(url: string, vmUrl: string, values: number): Promise<{ run: CostRun; records: number }> {
  const dir = scratch('octopus-bench-archive-');
  const child = await startCollector(url, vmUrl, 'bench-cost-archive', 'costarchive', { archive: true, dir });
  try {
    const { loadConfig } = await import('../src/config/loader.ts');
    const { experimentPaths } = await import('../src/experiments/factory.ts');
    const { ArchiveRoot } = await import('../src/experiments/archive-root.ts');
    const { ExperimentStore } = await import('../src/experiments/store.ts');
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('OCTOPUS_')));
    const paths = experimentPaths(loadConfig(join(dir, 'octopus.yaml'), env));
    mkdirSync(paths.root, { recursive: true });
    const chambers = Array.from({ length: CHAMBERS }, (_, c) => `c${c}`);
    const store = new ExperimentStore(new ArchiveRoot(paths.root, paths.local), {
      chambers: () => chambers,
      variables: () => [],
      now: () => new Date(),
    });
    await store.create(
      { id: 'bench-load', title: 'Bench load', principal_investigator: { name: 'Bench' }, chambers },
      'bench',
    );
    const run = store.startRun('bench-load', 'bench');
    const key = `bench-load/${run.id}`;
    await eventually(
      async () => (await child.health()).sinks.netcdf?.open_runs.includes(key),
      'the run open in the collector',
      30_000,
    );
    const r = await liveRun(
      url,
      values,
      { pid: child.pid, written: async () => (await child.health()).sinks.influx?.written ?? 0 },
      'now',
    );
    // The archive kept up: the grid has a record for every second of the load, nothing refused, no fault.
    const seconds = Math.floor(r.elapsedS);
    const h = await eventually(
      async () => {
        const x = (await child.health()).sinks.netcdf;
        return x && x.records >= seconds ? x : undefined;
      },
      'the run file holding the load',
      60_000,
    );
    if (h.role !== 'writer' || h.future_samples !== 0 || h.problems.length)
      throw new Error(`archive-on run: ${JSON.stringify(h)}`);
    return { run: r, records: h.records };
  } finally {
    await child.kill();
  }
}

/** Octopus's collector (default settings, persistent session, dedupe, disk buffer) against the minimal collector, same live load. */
export async function collectorCost(
  url: string,
  vmUrl: string,
  values: number,
): Promise<{ lines: string[]; ours: CostRun; minimal: CostRun }> {
  const minimalChild = await startMinimal(url, vmUrl);
  const minimal = await liveRun(url, values, minimalChild);
  await minimalChild.kill();
  const oursChild = await startCollector(url, vmUrl, 'bench-cost-ours', 'cost');
  await sleep(500);
  const ours = await liveRun(url, values, {
    pid: oursChild.pid,
    written: async () => (await oursChild.health()).sinks.influx?.written ?? 0,
  });
  await oursChild.kill();
  const archived = await archiveOnRun(url, vmUrl, values);
  const cpuRatio = ours.cpuPerMillion / minimal.cpuPerMillion;
  const rateRatio = ours.perS / minimal.perS;
  const aCpu = archived.run.cpuPerMillion / minimal.cpuPerMillion;
  const aRate = archived.run.perS / minimal.perS;
  const lines = [
    `collector cost, live load (${n(values)} values published by the real Publisher while the consumer runs, ${CHAMBERS}×${TAGS} per message):`,
    `  minimal collector (subscribe, template line protocol, 5,000-line batches): ${minimal.cpuPerMillion.toFixed(2)} CPU-s per million values, ${n(minimal.perS)} values/s lossless (${minimal.elapsedS.toFixed(1)} s)`,
    `  octopus collect (default config, archive off): ${ours.cpuPerMillion.toFixed(2)} CPU-s per million values, ${n(ours.perS)} values/s lossless (${ours.elapsedS.toFixed(1)} s)`,
    `  ratio ours/minimal: CPU per value ${cpuRatio.toFixed(2)}× (goal ≤ 1.5×: ${cpuRatio <= 1.5 ? 'ok' : 'MISSED'}), rate ${rateRatio.toFixed(2)}× (goal ≥ 0.8×: ${rateRatio >= 0.8 ? 'ok' : 'MISSED'})`,
    `  octopus collect (default config, archive ON: a run of all ${CHAMBERS} chambers × ${TAGS} variables, samples stamped at publish time, sample log before each PUBACK): ${archived.run.cpuPerMillion.toFixed(2)} CPU-s per million values, ${n(archived.run.perS)} values/s lossless (${archived.run.elapsedS.toFixed(1)} s; ${n(archived.records)} records in the run file)`,
    `  ratio archive-on/minimal: CPU per value ${aCpu.toFixed(2)}× (goal ≤ 1.5×: ${aCpu <= 1.5 ? 'ok' : 'MISSED'}), rate ${aRate.toFixed(2)}× (goal ≥ 0.8×: ${aRate >= 0.8 ? 'ok' : 'MISSED'})`,
  ];
  return { lines, ours, minimal };
}

export async function benchInflux(): Promise<{ name: string; lines: string[]; summary: BenchSummary }> {
  const seconds = Number(process.env.OCTOPUS_BENCH_SECONDS ?? 10);
  const latSeconds = Math.min(10, Math.max(5, seconds));
  const [broker, vm] = await Promise.all([Mosquitto.start(), Victoria.start()]);
  let collector: CollectorChild | undefined;
  try {
    for (const id of Object.values(SESSIONS)) await registerSession(broker.url, id);
    const cycles = Math.ceil((seconds * BACKLOG_RATE) / (CHAMBERS * TAGS));
    const fill = await prefill(broker.url, cycles);

    collector = await startCollector(broker.url, vm.url);
    const ours = await drainOurs(collector, fill.values, Math.max(120, seconds * 10));
    const slow = await naive(broker.url, vm.url, seconds, fill.values);
    const lib = await clientDefault(broker.url, vm.url, seconds, fill.values);
    const ceiling = await nullConsumer(broker.url, seconds, fill.values);
    const lat = await latency(broker.url, vm, collector, latSeconds);
    const rssAfterLatency = collector.rssMb();
    await collector.kill();
    collector = undefined;
    // The drained sessions would keep queueing the next load: end them (clean session).
    for (const id of Object.values(SESSIONS)) {
      const c = connectMqtt({ url: broker.url, clientId: id, clean: true });
      await eventually(() => c.connected, `${id} reconnected clean`);
      await c.end();
    }
    const cost = await collectorCost(broker.url, vm.url, Number(process.env.OCTOPUS_BENCH_COST_VALUES ?? 500_000));

    const inVm = {
      ours: await vm.count(`ours_value{chamber!~"lat.*"}`),
      naive: await vm.count('naive_value'),
      client: await vm.count('client_value'),
    };
    const verified = inVm.ours === fill.values && inVm.naive === slow.final && inVm.client === lib.final;
    const ok = ours.perS >= GOAL && verified && lat.visible === lat.samples;
    const rNaive = ours.perS / slow.perS;
    const rClient = ours.perS / lib.perS;
    const ms = (x: number) => `${Math.round(x)} ms`;
    const lines = [
      `backlog: ${n(fill.values)} values (${n(cycles)} cycles × ${CHAMBERS} chambers × ${TAGS} tags per message) pre-published into 3 persistent sessions on local Mosquitto by the real Publisher at ${n(fill.perS)} values/s, then drained by each consumer in turn into local VictoriaMetrics`,
      `ours (octopus collect, child process, default batch settings): ${n(ours.perS)} values/s written (whole backlog in ${ours.drainS.toFixed(1)} s, CPU ${ours.cpuPercent.toFixed(0)} % of one core, host ${ours.hostBusyPercent.toFixed(0)} % busy over ${cpus().length} cores, ${ours.retries} retries, ${ours.dropped} dropped) (goal ≥ ${n(GOAL)}: ${ours.perS >= GOAL ? 'ok' : 'MISSED'})`,
      `ours RSS: ${ours.rssStartMb.toFixed(0)} MB at start (${ours.startMessages} messages in) → ${ours.rssEndMb.toFixed(0)} MB at end of drain (peak ${ours.rssPeakMb.toFixed(0)} MB; ${rssAfterLatency.toFixed(0)} MB after the latency run)`,
      `naive (one awaited POST per message): ${n(slow.perS)} values/s (${n(slow.values)} values in ${slow.elapsedS.toFixed(1)} s)`,
      `client-default (@influxdata/influxdb-client defaults, writePoint per sample): ${n(lib.perS)} values/s (${n(lib.values)} values confirmed in ${lib.elapsedS.toFixed(1)} s)`,
      `MQTT delivery ceiling (one subscription, PUBACK at once, payload not even parsed): ${n(ceiling.perS)} values/s`,
      `ratio ours/naive: ${rNaive.toFixed(1)}x, ours/client-default: ${rClient.toFixed(1)}x`,
      `counted in VictoriaMetrics: ours ${n(inVm.ours)}/${n(fill.values)}, naive ${n(inVm.naive)}/${n(slow.final)}, client-default ${n(inVm.client)}/${n(lib.final)} (${verified ? 'exact' : 'MISMATCH'})`,
      `latency PLC value → written (2xx), ${CHAMBERS}×${LAT_TAGS} tags at 1 Hz for ${latSeconds} s, flush interval 1000 ms, after a warm-up cycle: p50 ${ms(lat.writtenP50)}, p99 ${ms(lat.writtenP99)} (collector health polled every 20 ms)`,
      `latency PLC value → queryable in VictoriaMetrics (/api/v1/export polled every 50 ms, no force_flush): p50 ${ms(lat.visibleP50)}, p99 ${ms(lat.visibleP99)}, max ${ms(lat.visibleMax)} (${n(lat.visible)}/${n(lat.samples)} seen)`,
      ...cost.lines,
    ];
    return {
      name: 'influx',
      lines,
      summary: {
        figure: `${n(ours.perS)} values/s, e2e p99 ${ms(lat.visibleP99)}`,
        baseline: `naive ${n(slow.perS)}, client ${n(lib.perS)} values/s`,
        ratio: `${rNaive.toFixed(1)}x / ${rClient.toFixed(1)}x`,
        goal: `≥ ${n(GOAL)} values/s`,
        ok,
      },
    };
  } finally {
    await collector?.kill();
    await Promise.all([broker.close(), vm.close()]);
    for (const d of tmpDirs.splice(0)) rmSync(d, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href && process.argv[2] === 'cost') {
  // Only the collector-cost section: node bin/run-ts.js bench/influx.ts cost
  const [broker, vm] = await Promise.all([Mosquitto.start(), Victoria.start()]);
  try {
    const r = await collectorCost(broker.url, vm.url, Number(process.env.OCTOPUS_BENCH_COST_VALUES ?? 500_000));
    for (const l of r.lines) console.log(l);
  } finally {
    await Promise.all([broker.close(), vm.close()]);
    for (const d of tmpDirs.splice(0)) rmSync(d, { recursive: true, force: true });
  }
  process.exit(0);
} else if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const r = await benchInflux();
  console.log(`== ${r.name}`);
  for (const l of r.lines) console.log(l);
  process.exit(0);
}
