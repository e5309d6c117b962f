/**
 * The dead-letter log of the alarm webhooks: one JSON line per notification given up
 * (`<data_dir>/alarms/dead-letter.jsonl`): when, which webhook, the delivery id, the
 * attempts made, the last HTTP status and error, and the whole event, so it can be
 * inspected and replayed by hand.
 *
 * An entry that cannot be written is kept in memory (reported as write target
 * `alarms:dead-letter`, health degraded) and written as soon as the file can be; beyond
 * `maxHeld` the oldest held entry is logged in full at error level instead, never
 * dropped silently.
 */
import { appendFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from '../core/log.ts';
import { makeDir, type WriteFaults } from '../core/write-faults.ts';
import type { AlarmEvent } from './model.ts';

export interface DeadLetter {
  ts: string;
  webhook: string;
  delivery_id: string;
  attempts: number;
  status?: number;
  error: string;
  event: AlarmEvent;
}

export const DEAD_LETTER_TARGET = 'alarms:dead-letter';

export class DeadLetterLog {
  private readonly held: DeadLetter[] = [];

  constructor(
    readonly file: string,
    private readonly faults: WriteFaults,
    private readonly log: Logger,
    private readonly maxHeld = 10_000,
  ) {}

  get heldInMemory(): number {
    return this.held.length;
  }

  append(entry: DeadLetter): void {
    this.held.push(entry);
    if (this.held.length > this.maxHeld)
      this.log.error(
        `dead-letter entry not written (${this.file} unwritable, ${this.maxHeld} held): ${JSON.stringify(this.held.shift())}`,
      );
    this.flush();
  }

  /** Writes the held entries; true when none is left. */
  flush(): boolean {
    if (this.held.length === 0) return true;
    try {
      makeDir(dirname(this.file));
      appendFileSync(this.file, this.held.map((e) => `${JSON.stringify(e)}\n`).join(''));
      this.held.length = 0;
      this.faults.ok(DEAD_LETTER_TARGET);
      return true;
    } catch (err) {
      this.faults.fail(DEAD_LETTER_TARGET, this.file, err, {
        effect: `${this.held.length} dead-lettered alarm notification(s) held in memory until the file can be written`,
        retry: () => this.flush(),
      });
      return false;
    }
  }
}
