/**
 * The minimal collector that bench/influx.ts measures Octopus's collector against: subscribe
 * (persistent session, QoS 1, PUBACK at once), template line protocol per sample, POST
 * 5,000-line batches to /api/v2/write (up to 4 at a time), nothing else — no validation,
 * no disk buffer, no retry, no dedupe. Prints `written <n>` after every 2xx. It imports
 * mqtt.js directly on purpose: it stands for a collector written without Octopus.
 *
 *   node bin/run-ts.js bench/minimal-collector.ts <mqtt url> <write url> <client id> <measurement>
 */
import mqtt from 'mqtt';

const [url, writeUrl, clientId, measurement] = process.argv.slice(2) as [string, string, string, string];
const BATCH = 5000;
let batch = '';
let lines = 0;
let written = 0;
let inflight = 0;
const waiting: Array<{ body: string; n: number }> = [];

function send(body: string, n: number): void {
  inflight++;
  fetch(writeUrl, { method: 'POST', body, headers: { 'content-type': 'text/plain' } })
    .then(async (res) => {
      await res.arrayBuffer();
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      written += n;
      process.stdout.write(`written ${written}\n`);
    })
    .catch((err: Error) => process.stderr.write(`write failed: ${err.message}\n`))
    .finally(() => {
      inflight--;
      const next = waiting.shift();
      if (next) send(next.body, next.n);
    });
}

function flush(): void {
  if (!lines) return;
  const body = batch;
  const n = lines;
  batch = '';
  lines = 0;
  if (inflight < 4) send(body, n);
  else waiting.push({ body, n });
}

const client = mqtt.connect(url, { clientId, clean: false, protocolVersion: 4 });
client.on('connect', () => {
  client.subscribe('octopus/+/data', { qos: 1 }, () => process.stdout.write('subscribed\n'));
});
client.on('message', (_topic, payload) => {
  const m = JSON.parse(payload.toString()) as {
    chamber: string;
    samples: Array<{ tag: string; ts: number; value: number; q: string }>;
  };
  for (const s of m.samples)
    batch += `${measurement},chamber=${m.chamber},q=${s.q},tag=${s.tag} value=${s.value} ${s.ts}\n`;
  lines += m.samples.length;
  if (lines >= BATCH) flush();
});
setInterval(flush, 1000);
