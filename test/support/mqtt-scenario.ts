import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { AuditEntry } from '../../src/auth/audit.ts';
import { DataMessage, RequestResult } from '../../src/bus/payload.ts';
import { eventually } from './ports.ts';
import type { Probe } from './mqtt-probe.ts';

/** The audit log of a data directory, parsed. */
export function auditOf(dataDir: string): AuditEntry[] {
  const f = join(dataDir, 'state', 'audit.jsonl');
  if (!existsSync(f)) return [];
  return readFileSync(f, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as AuditEntry);
}

/** Data messages a probe received for a chamber. */
export const dataOf = (p: Probe, chamber: string): DataMessage[] =>
  p.got.filter((m) => m.topic.endsWith(`/${chamber}/data`)).map((m) => DataMessage.parse(JSON.parse(m.payload)));

/** The newest published value of a tag (what the gateway read from the PLC). */
export function latest(p: Probe, chamber: string, tag: string): unknown {
  const msgs = dataOf(p, chamber);
  for (let i = msgs.length - 1; i >= 0; i--) {
    const s = msgs[i]!.samples.find((x) => x.tag === tag);
    if (s) return s.value;
  }
  return undefined;
}

/** Waits for `n` more data messages of a chamber: the PLC has been read again since now. */
export async function freshCycles(p: Probe, chamber: string, n = 3): Promise<void> {
  const before = dataOf(p, chamber).length;
  await eventually(() => dataOf(p, chamber).length >= before + n, `${n} new data messages of ${chamber}`, 30_000);
}

/** Results a probe received on a result topic. */
export const resultsOf = (p: Probe, topic: string): RequestResult[] =>
  p.got.filter((m) => m.topic === topic).map((m) => RequestResult.parse(JSON.parse(m.payload)));
