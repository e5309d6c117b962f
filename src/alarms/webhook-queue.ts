/**
 * The pending deliveries of one webhook, on disk: a JSON-lines journal
 * (`<data_dir>/alarms/webhooks/<name>.jsonl`) of `add` (a delivery with its event),
 * `try` (an attempt failed: attempts so far, error) and `done` (delivered or
 * dead-lettered) records, replayed at start so a restart loses no delivery and keeps
 * counting attempts. Compacted (rewritten through a temporary file and a rename) at start
 * and when finished records outnumber the pending ones.
 *
 * A record that cannot be appended does not stop anything: the queue keeps working in
 * memory, the fault is reported (write target `alarms:webhook:<name>`, health degraded)
 * and the whole queue is rewritten as soon as the folder can be written again.
 * Unreadable records (a torn last line, a hand edit) are skipped and counted.
 */
import { closeSync, openSync, readFileSync, renameSync, writeFileSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { z } from 'zod';
import { makeDir, type WriteFaults } from '../core/write-faults.ts';
import { AlarmEvent } from './model.ts';

export const Delivery = z.object({
  id: z.string().min(1),
  event: AlarmEvent,
  /** Epoch ms it was queued. */
  queued: z.number(),
  attempts: z.number().int().min(0),
  last_error: z.string().optional(),
  last_status: z.number().optional(),
});
export type Delivery = z.infer<typeof Delivery>;

const Rec = z.discriminatedUnion('op', [
  z.object({ op: z.literal('add'), d: Delivery }),
  z.object({
    op: z.literal('try'),
    id: z.string(),
    attempts: z.number().int(),
    error: z.string(),
    status: z.number().optional(),
  }),
  z.object({ op: z.literal('done'), id: z.string() }),
]);
type Rec = z.infer<typeof Rec>;

export class DeliveryQueue {
  /** Pending deliveries in order (a Map keeps insertion order). */
  private readonly pending = new Map<string, Delivery>();
  private finished = 0;
  private fd?: number;
  /** A write fault is reported for this queue. */
  private faulty = false;
  /** Records not on disk since the last failed append: the next successful write is a full rewrite. */
  private dirty = false;
  readonly skipped: number;

  constructor(
    readonly file: string,
    private readonly target: string,
    private readonly faults: WriteFaults,
  ) {
    this.skipped = this.load();
    this.compact();
  }

  get size(): number {
    return this.pending.size;
  }

  head(): Delivery | undefined {
    return this.pending.values().next().value;
  }

  all(): Delivery[] {
    return [...this.pending.values()];
  }

  add(d: Delivery): void {
    this.pending.set(d.id, d);
    this.write({ op: 'add', d });
  }

  failed(d: Delivery): void {
    this.write({
      op: 'try',
      id: d.id,
      attempts: d.attempts,
      error: d.last_error ?? '',
      ...(d.last_status !== undefined ? { status: d.last_status } : {}),
    });
  }

  done(id: string): void {
    if (!this.pending.delete(id)) return;
    this.finished++;
    this.write({ op: 'done', id });
    if (this.finished > 1000 && this.finished > this.pending.size) this.compact();
  }

  private load(): number {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch {
      return 0;
    }
    let skipped = 0;
    for (const line of text.split('\n')) {
      if (!line) continue;
      let rec: Rec;
      try {
        rec = Rec.parse(JSON.parse(line));
      } catch {
        skipped++;
        continue;
      }
      if (rec.op === 'add') this.pending.set(rec.d.id, rec.d);
      else if (rec.op === 'done') this.pending.delete(rec.id);
      else {
        const d = this.pending.get(rec.id);
        if (d)
          Object.assign(d, {
            attempts: rec.attempts,
            last_error: rec.error,
            ...(rec.status !== undefined ? { last_status: rec.status } : {}),
          });
      }
    }
    return skipped;
  }

  private write(rec: Rec): void {
    if (this.dirty) {
      this.compact();
      return;
    }
    try {
      // One descriptor kept open in append mode: a record is one write(2), no open/close.
      this.fd ??= openSync(this.file, 'a');
      writeSync(this.fd, `${JSON.stringify(rec)}\n`);
      if (this.faulty) this.faults.ok(this.target);
      this.faulty = false;
    } catch (err) {
      this.closeFd();
      this.fail(err);
    }
  }

  private closeFd(): void {
    if (this.fd === undefined) return;
    try {
      closeSync(this.fd);
    } catch {
      // Already unusable: nothing more to release.
    }
    this.fd = undefined;
  }

  /** Releases the journal's descriptor (the queue is not used after this). */
  close(): void {
    this.closeFd();
  }

  /** Rewrites the journal as the pending deliveries only. True when written. */
  compact(): boolean {
    const tmp = `${this.file}.tmp`;
    try {
      makeDir(dirname(this.file));
      writeFileSync(tmp, [...this.pending.values()].map((d) => `${JSON.stringify({ op: 'add', d })}\n`).join(''));
      renameSync(tmp, this.file);
      // The descriptor named the replaced file: reopen on the next record.
      this.closeFd();
      this.finished = 0;
      this.dirty = false;
      this.faulty = false;
      this.faults.ok(this.target);
      return true;
    } catch (err) {
      this.fail(err);
      return false;
    }
  }

  private fail(err: unknown): void {
    this.dirty = true;
    this.faulty = true;
    this.faults.fail(this.target, this.file, err, {
      effect: `${this.pending.size} pending alarm notification(s) held in memory only: a restart now would lose them`,
      retry: () => this.compact(),
    });
  }
}
