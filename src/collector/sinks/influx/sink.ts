import { appendFileSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { Histogram } from '../../../core/metrics.ts';
import type { InfluxConfig } from '../../../config/instance-schema.ts';
import { SpoolConfig } from '../../../config/instance-schema.ts';
import { Backoff } from '../../../core/backoff.ts';
import type { Logger } from '../../../core/log.ts';
import type { DataMessage } from '../../../bus/payload.ts';
import { messageKey } from '../../dedupe.ts';
import { Spool, type SpoolRecord } from '../../../bus/spool.ts';
import { createInfluxHttp, InfluxWriteError, type InfluxHttp } from './http.ts';
import { countLines, encodeLines } from './line-protocol.ts';
import { storedCheck, type StoredCheck } from './stored-check.ts';

export type InfluxState = 'ok' | 'retrying' | 'starting';

export interface InfluxSinkHealth {
  state: InfluxState;
  target: string;
  /** Lines (samples) waiting in the disk buffer. */
  buffered: number;
  buffered_bytes: number;
  /** Lines accepted: samples, plus the extra lines (alarm events) counted in `extra_lines`. */
  received: number;
  extra_lines: number;
  written: number;
  /** Samples dropped because the buffer bound was hit (oldest first). */
  dropped: number;
  dead_lettered: number;
  retries: number;
  /** Requests running now, and the most seen at once (never above `concurrency`). */
  in_flight: number;
  /** Age of the oldest running request, ms (0: none). */
  oldest_request_ms: number;
  max_in_flight: number;
  /** Lines already written before a restart that were trimmed without being sent again. */
  skipped_resend: number;
  last_error?: string;
}

/**
 * One batch of buffer records. `sending` = a request is running; `ok` = written (or
 * known written before a restart: `presumed`); `failed` = to be sent again after the
 * backoff. The list is in buffer order and trimmed from the head.
 */
interface Flight {
  records: SpoolRecord[];
  lines: number;
  state: 'sending' | 'ok' | 'failed';
  presumed?: boolean;
  /** Its request was running when the process was killed: check what the database already has before resending. */
  uncertain?: boolean;
  /** For an uncertain batch: when that request started (ms, from the journal), if known. */
  startedBefore?: number;
  /** Its start is in the journal. */
  started?: boolean;
  /** When its current request started (ms). */
  sentAt?: number;
  deadLettered?: boolean;
}

/** A journal entry: a batch written (not to be sent again), or (`s`) one whose request started. */
interface SentRange {
  first: number;
  last: number;
  /** Keys of its first and last records: the range is this buffer's only if the records there carry them. */
  firstKey: string;
  lastKey?: string;
  /** 1: a request for it started (no outcome recorded). */ s?: 1;
  /** When that request started (epoch ms). */
  at?: number;
  /** Its records found in the buffer at the restart with the keys it names. */
  checked?: boolean;
}

const SENT_JOURNAL = '.sent-journal';

/**
 * InfluxDB sink. Every accepted message is appended, as line protocol, to a disk buffer
 * (the same segment store as the gateway spool) before `accept` returns, so the MQTT
 * message can be acknowledged; the record's topic is the message's identity
 * (`gw`, `ep`, `seq`), from which the collector's dedupe state is rebuilt after a crash.
 *
 * A pump sends the buffer in batches of ~`batch_lines` (or whatever is there after
 * `flush_interval_ms`), never more than `concurrency` requests at a time, and trims it in
 * order once the oldest batches are written. A batch is sent again only if its own send
 * failed: a written batch is remembered in memory until trimmed, and in
 * `<buffer_dir>.sent-journal` (the last ~100 at least), so a restart does not send it
 * again either — neither when it was written after an older batch still pending nor when
 * the buffer's cursor on disk had not caught up with the trim yet. The journal also
 * records the start of every request: a batch whose request was running when the process
 * was killed is, at the next start, first checked against the database (stored-check.ts:
 * VictoriaMetrics would store it twice; InfluxDB overwrites) and only its missing lines
 * are sent again.
 *
 * Network errors, timeouts, 429 and 5xx are retried with capped exponential backoff
 * honouring Retry-After, one request at a time until the database answers again; the
 * first failure turns the state to `retrying` at once. Other 4xx are moved to a
 * dead-letter file with the reason.
 */
export class InfluxSink {
  readonly latency: Histogram;
  private readonly http: InfluxHttp;
  private readonly buffer: Spool;
  private readonly deadLetterFile: string;
  private readonly backoff: Backoff;
  private readonly flights: Flight[] = [];
  private readonly journalFile: string;
  private readonly stored: StoredCheck;
  /** Ranges written before this start whose records are still in the buffer: trimmed without sending. */
  private presumed: SentRange[] = [];
  private journalEntries = 0;
  /** Record keys found in the buffer at open (checkJournal), until bufferedKeys() takes them. */
  private keysAtStart: string[] = [];
  /** Since the last failure, no request succeeded: retry one batch at a time. */
  private probing = false;
  private skippedResend = 0;
  private maxInflight = 0;
  private state: InfluxState = 'starting';
  private received = 0;
  /** Lines accepted through acceptLines (alarm events…), included in received. */
  private extraLines = 0;
  private written = 0;
  private deadLettered = 0;
  private retries = 0;
  private lastError?: string;
  private linesPerRecord = 100;
  /** Set by the flush timer: a partial batch may go out. */
  private flushDue = false;
  private retryAt = 0;
  private closing = false;
  private abandoned = false;
  private wake?: () => void;
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;

  constructor(
    private readonly cfg: InfluxConfig,
    dataDir: string,
    token: string | undefined,
    private readonly log: Logger,
  ) {
    this.http = createInfluxHttp(cfg, token);
    this.stored = storedCheck(cfg, token);
    const under = (p: string) => (isAbsolute(p) ? p : join(dataDir, p));
    // A buffer folder that cannot be written refuses new data (the MQTT message stays
    // unacknowledged) and is reported in health as `influx-buffer` with path and errno.
    this.buffer = Spool.open(
      under(cfg.buffer_dir),
      SpoolConfig.parse({ max_bytes: cfg.buffer_max_bytes, fsync: 'interval' }),
      { log: log.child('buffer'), target: 'influx-buffer' },
    );
    this.deadLetterFile = under(cfg.dead_letter_file);
    // Beside the buffer folder, not in it: that folder holds only the buffer's own files.
    this.journalFile = `${under(cfg.buffer_dir).replace(/[\\/]+$/, '')}${SENT_JOURNAL}`;
    this.loadJournal();
    this.checkJournal();
    this.backoff = new Backoff(cfg.retry_min_ms, cfg.retry_max_ms);
    this.latency = new Histogram({
      name: 'octopus_influx_write_seconds',
      help: 'Duration of successful InfluxDB write requests',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [],
    });
  }

  /** Starts the pump; what a previous run left in the buffer is sent first. */
  start(): void {
    const left = this.buffer.depth();
    if (left.samples) this.log.info(`InfluxDB buffer holds ${left.samples} samples from before; sending them first`);
    this.timer = setInterval(() => {
      this.flushDue = true;
      this.kick();
    }, this.cfg.flush_interval_ms);
    this.timer.unref();
    this.running = this.run();
  }

  /** Appends a message's samples to the disk buffer; when it returns the message may be acknowledged. */
  accept(msg: DataMessage, samples: DataMessage['samples'] = msg.samples): void {
    if (samples.length === 0) return;
    const text = encodeLines(this.cfg.measurement, msg.chamber, samples);
    this.buffer.append(messageKey(msg), text, samples.length);
    this.received += samples.length;
    this.linesPerRecord = this.linesPerRecord * 0.9 + samples.length * 0.1;
    if (this.unsentLines() >= this.cfg.batch_lines) this.kick();
  }

  /**
   * Appends lines other than samples (e.g. the `alarm` measurement, src/alarms/influx.ts)
   * to the same disk buffer, so they are written, retried and kept while the database is
   * away exactly like samples. `text` is complete line protocol, one line per `\n`-ended
   * line, already escaped; `key` names the record (it is not a message identity: the
   * dedupe rebuild ignores it). Throws when the buffer folder cannot be written (the
   * caller keeps the lines).
   */
  acceptLines(key: string, text: string): void {
    const lines = countLines(text);
    if (lines === 0 || !text.endsWith('\n'))
      throw new RangeError(
        `InfluxDB sink: extra lines must be newline-terminated line protocol (got ${JSON.stringify(text.slice(0, 80))})`,
      );
    this.buffer.append(key, text, lines);
    this.received += lines;
    this.extraLines += lines;
    if (this.unsentLines() >= this.cfg.batch_lines) this.kick();
  }

  health(): InfluxSinkHealth {
    const d = this.buffer.depth();
    return {
      state: this.state,
      target: this.http.target,
      buffered: d.samples,
      buffered_bytes: d.bytes,
      received: this.received,
      extra_lines: this.extraLines,
      written: this.written,
      dropped: this.buffer.droppedSamples,
      dead_lettered: this.deadLettered,
      retries: this.retries,
      in_flight: this.sending(),
      oldest_request_ms: this.oldestRequestMs(),
      max_in_flight: this.maxInflight,
      skipped_resend: this.skippedResend,
      ...(this.lastError ? { last_error: this.lastError } : {}),
    };
  }

  /** Sends what it can within `timeoutMs`, then closes the buffer (the rest stays on disk for the next start). */
  async close(timeoutMs = 5000): Promise<void> {
    this.closing = true;
    clearInterval(this.timer);
    this.kick();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.running, new Promise((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
    // Batches still in flight are not trimmed: they are sent again at the next start.
    this.abandoned = true;
    this.kick();
    await this.running;
    this.buffer.close();
    const left = this.buffer.depth().samples;
    if (left)
      this.log.warn(`InfluxDB sink stopped with ${left} samples buffered on disk; they are sent at the next start`);
  }

  // ---- pump -----------------------------------------------------------------

  private kick(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  private unsentLines(): number {
    return this.buffer.depth().samples - this.flights.reduce((n, f) => n + f.lines, 0);
  }

  /** Age of the oldest running request (0 when none): a database that accepts connections but does not answer shows here long before timeout_ms. */
  private oldestRequestMs(): number {
    let oldest = Infinity;
    for (const f of this.flights)
      if (f.state === 'sending' && f.sentAt !== undefined) oldest = Math.min(oldest, f.sentAt);
    return oldest === Infinity ? 0 : Date.now() - oldest;
  }

  private sending(): number {
    let n = 0;
    for (const f of this.flights) if (f.state === 'sending') n++;
    return n;
  }

  private async run(): Promise<void> {
    for (;;) {
      if (this.abandoned) return;
      const now = Date.now();
      if (this.closing && this.flights.length === 0 && this.buffer.depth().samples === 0) return;
      while (this.flights[0]?.state === 'ok') this.finish(this.flights.shift()!);
      if (this.closing && this.flights.length === 0 && this.buffer.depth().samples === 0) return;
      if (now >= this.retryAt) {
        this.retryFailed();
        this.launch();
      }
      if ((this.flights[0]?.state as Flight['state'] | undefined) === 'ok') continue; // launch() may add batches written before a restart
      const wait = new Promise<void>((resolve) => (this.wake = resolve));
      const timers: NodeJS.Timeout[] = [];
      if (this.retryAt > now) timers.push(setTimeout(() => this.kick(), this.retryAt - now));
      await wait;
      timers.forEach(clearTimeout);
    }
  }

  /** Sends failed batches again: one at a time while probing, else as slots allow. */
  private retryFailed(): void {
    for (const f of this.flights) {
      if (f.state !== 'failed') continue;
      const running = this.sending();
      if (running >= this.cfg.concurrency || (this.probing && running > 0)) return;
      this.send(f);
    }
  }

  /** Starts new batches while there are free slots and enough lines (or the flush interval passed), and nothing is waiting for a retry. */
  private launch(): void {
    if (this.flights.some((f) => f.state === 'failed')) return;
    while (this.sending() < this.cfg.concurrency && !(this.probing && this.sending() > 0)) {
      const unsent = this.unsentLines();
      if (unsent <= 0) return;
      if (unsent < this.cfg.batch_lines && !this.closing && !this.flushDue) return;
      const records = this.buffer.read(
        Math.max(1, Math.round(this.cfg.batch_lines / Math.max(1, this.linesPerRecord))),
      );
      if (records.length === 0) return;
      this.flushDue = false;
      for (const part of this.splitPresumed(records)) {
        const flight: Flight = {
          records: part.records,
          lines: part.records.reduce((n, r) => n + r.samples, 0),
          state: 'ok',
          presumed: part.status === 'done',
          uncertain: part.status === 'uncertain',
          ...(part.at !== undefined ? { startedBefore: part.at } : {}),
        };
        this.flights.push(flight);
        if (flight.presumed) {
          this.skippedResend += flight.lines;
          this.log.info(
            `${flight.lines} samples (buffer records ${part.records[0]!.seq}-${part.records.at(-1)!.seq}) were written before the restart: trimmed without sending them again`,
          );
        } else this.send(flight);
      }
    }
  }

  private send(flight: Flight): void {
    flight.state = 'sending';
    flight.sentAt = Date.now();
    this.maxInflight = Math.max(this.maxInflight, this.sending());
    if (!flight.started) {
      flight.started = true;
      this.journal(flight, true);
    }
    const all = Buffer.concat(flight.records.map((r) => r.payload)).toString('utf8');
    const stop = this.latency.startTimer();
    const body = flight.uncertain ? this.unstored(flight, all) : Promise.resolve(all);
    body
      .then((text) => (text ? this.http.write(text) : undefined))
      .then(
        () => {
          stop();
          flight.state = 'ok';
          this.probing = false;
          // Recorded before it is trimmed: the buffer's cursor on disk lags the trim by up to 200 ms.
          this.journal(flight);
          this.kick();
        },
        (err: unknown) => {
          const e = err instanceof InfluxWriteError ? err : new InfluxWriteError(String(err), undefined, true);
          if (!e.retriable) {
            // Refused for good: dead-lettered, then trimmed in order like a written batch.
            this.deadLetter(flight, e);
            this.lastError = e.message;
            flight.state = 'ok';
            this.kick();
            return;
          }
          flight.state = 'failed';
          this.onFailure(e);
          this.kick();
        },
      );
  }

  /** The lines of a batch that was in flight at the previous stop which the database does not have yet (stored-check.ts). */
  private async unstored(flight: Flight, body: string): Promise<string> {
    try {
      const r = await this.stored.unstored(body, flight.startedBefore);
      flight.uncertain = false;
      if (r.skipped) this.skippedResend += r.skipped;
      this.log.info(
        `${flight.lines} samples were being written when the collector stopped: ${r.skipped} already stored, ${flight.lines - r.skipped} sent again`,
      );
      return r.body;
    } catch (err) {
      this.log.warn(
        `cannot tell which of ${flight.lines} samples in flight at the previous stop are stored (${(err as Error).message}); sending them all again`,
      );
      return body;
    }
  }

  /** Any retriable failure: degrade at once (not when the oldest batch times out), back off, probe. */
  private onFailure(err: InfluxWriteError): void {
    this.lastError = err.message;
    this.retries++;
    const delay = err.retryAfterMs ?? this.backoff.next();
    this.retryAt = Math.max(this.retryAt, Date.now() + delay);
    if (this.state !== 'retrying')
      this.log.warn(
        `InfluxDB write failed (${err.message}); ${this.buffer.depth().samples} samples kept on disk, retrying in ${delay} ms`,
      );
    this.state = 'retrying';
    this.probing = true;
  }

  /**
   * Called before written records leave the buffer: the collector saves its dedupe state
   * there, so a message the broker redelivers after a kill (written, trimmed, its PUBACK
   * not yet sent) is still known as seen — neither in the buffer nor in a stale dedupe file.
   */
  beforeTrim?: () => void;

  /** The oldest batch is written (or dead-lettered): trim it. */
  private finish(f: Flight): void {
    this.beforeTrim?.();
    this.buffer.ack(f.records.at(-1)!.seq);
    if (f.presumed) return;
    if (!f.deadLettered) {
      this.written += f.lines;
      if (this.state !== 'ok')
        this.log.info(`InfluxDB ${this.http.target} written to${this.retries ? ` after ${this.retries} retries` : ''}`);
      this.state = 'ok';
      this.lastError = undefined;
      this.backoff.reset();
    }
    if (this.journalEntries > 1000) this.compactJournal();
  }

  // ---- sent journal -----------------------------------------------------------

  private journal(f: Flight, started = false): void {
    const range: SentRange = {
      first: f.records[0]!.seq,
      last: f.records.at(-1)!.seq,
      firstKey: f.records[0]!.topic,
      lastKey: f.records.at(-1)!.topic,
      ...(started ? { s: 1 as const, at: Date.now() } : {}),
    };
    try {
      appendFileSync(this.journalFile, `${JSON.stringify(range)}\n`);
      this.journalEntries++;
    } catch (err) {
      this.log.warn(
        `cannot record a written batch in ${this.journalFile} (${(err as Error).message}); after a crash it may be sent again`,
      );
    }
  }

  /** Keeps the entries that may still matter: the buffer cursor on disk can lag the trim by a moment. */
  private compactJournal(): void {
    try {
      const keep = readFileSync(this.journalFile, 'utf8').split('\n').filter(Boolean).slice(-100);
      writeFileSync(`${this.journalFile}.tmp`, keep.map((l) => `${l}\n`).join(''));
      renameSync(`${this.journalFile}.tmp`, this.journalFile);
      this.journalEntries = keep.length;
    } catch (err) {
      this.log.warn(`cannot compact ${this.journalFile}: ${(err as Error).message}`);
    }
  }

  private loadJournal(): void {
    let text: string;
    try {
      text = readFileSync(this.journalFile, 'utf8');
    } catch {
      return;
    }
    for (const line of text.split('\n')) {
      if (!line) continue;
      try {
        const r = JSON.parse(line) as SentRange;
        if (Number.isSafeInteger(r.first) && Number.isSafeInteger(r.last) && typeof r.firstKey === 'string')
          this.presumed.push(r);
      } catch {
        // A torn last line (killed while appending): that batch is sent again.
      }
    }
    this.journalEntries = this.presumed.length;
    this.presumed.sort((a, b) => a.first - b.first);
  }

  /**
   * One pass over the buffer left by the previous run: which journal ranges are this
   * buffer's (a range counts when the records at its first or last number carry the keys
   * it names, and none carries another: the buffer may have been reset since), and the
   * message keys for the dedupe rebuild. The first record of a range may be gone while
   * the rest is still there (its segment deleted after the trim, the cursor on disk not
   * yet moved past it): then its last record vouches for it.
   */
  private checkJournal(): void {
    const anchors = new Map<number, Array<{ p: SentRange; key: string }>>();
    const anchor = (seq: number, p: SentRange, key: string | undefined) => {
      if (key !== undefined) anchors.set(seq, [...(anchors.get(seq) ?? []), { p, key }]);
    };
    for (const p of this.presumed) {
      anchor(p.first, p, p.firstKey);
      anchor(p.last, p, p.lastKey);
    }
    for (;;) {
      const recs = this.buffer.read(1000);
      if (recs.length === 0) break;
      for (const r of recs) {
        this.keysAtStart.push(r.topic);
        for (const { p, key } of anchors.get(r.seq) ?? []) p.checked = p.checked !== false && r.topic === key;
      }
    }
    this.buffer.rewind();
  }

  /**
   * Splits records read from the buffer into runs written before the restart (`done`),
   * runs whose request was running at the stop (`uncertain`) and runs never sent.
   */
  private splitPresumed(
    records: SpoolRecord[],
  ): Array<{ records: SpoolRecord[]; status: 'done' | 'uncertain' | 'new'; at?: number }> {
    const out: Array<{ records: SpoolRecord[]; status: 'done' | 'uncertain' | 'new'; at?: number }> = [];
    for (const r of records) {
      let status: 'done' | 'uncertain' | 'new' = 'new';
      let at: number | undefined;
      if (this.presumed.length) {
        this.presumed = this.presumed.filter((p) => p.last >= r.seq);
        for (const p of this.presumed) {
          if (p.checked && r.seq >= p.first && r.seq <= p.last) {
            if (!p.s) status = 'done';
            else if (status === 'new') status = 'uncertain';
            if (p.s && p.at !== undefined) at = Math.max(at ?? 0, p.at);
          }
        }
      }
      const last = out.at(-1);
      if (last && last.status === status) {
        last.records.push(r);
        if (at !== undefined) last.at = Math.max(last.at ?? 0, at);
      } else out.push({ records: [r], status, ...(at !== undefined ? { at } : {}) });
    }
    return out;
  }

  /**
   * Every message identity the buffer held when it was opened (not yet written), oldest
   * first: to rebuild the dedupe state after a crash. Handed out once.
   */
  bufferedKeys(): string[] {
    return this.keysAtStart.splice(0);
  }

  private deadLetter(f: Flight, err: InfluxWriteError): void {
    f.deadLettered = true;
    mkdirSync(dirname(this.deadLetterFile), { recursive: true });
    const body = Buffer.concat(f.records.map((r) => r.payload)).toString('utf8');
    appendFileSync(
      this.deadLetterFile,
      `${JSON.stringify({ ts: new Date().toISOString(), status: err.status, reason: err.message, lines: f.lines, body })}\n`,
    );
    this.deadLettered += f.lines;
    this.log.error(`InfluxDB refused ${f.lines} samples (${err.message}); moved to ${this.deadLetterFile}`);
  }
}
