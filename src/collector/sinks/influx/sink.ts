import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { Histogram } from 'prom-client';
import type { InfluxConfig } from '../../../config/instance-schema.ts';
import { SpoolConfig } from '../../../config/instance-schema.ts';
import { Backoff } from '../../../core/backoff.ts';
import type { Logger } from '../../../core/log.ts';
import type { DataMessage } from '../../../bus/payload.ts';
import { Spool, type SpoolRecord } from '../../../bus/spool.ts';
import { createInfluxHttp, InfluxWriteError, type InfluxHttp } from './http.ts';
import { encodeLines } from './line-protocol.ts';

export type InfluxState = 'ok' | 'retrying' | 'starting';

export interface InfluxSinkHealth {
  state: InfluxState;
  target: string;
  /** Lines (samples) waiting in the disk buffer. */
  buffered: number;
  buffered_bytes: number;
  received: number;
  written: number;
  /** Samples dropped because the buffer bound was hit (oldest first). */
  dropped: number;
  dead_lettered: number;
  retries: number;
  last_error?: string;
}

interface Flight { records: SpoolRecord[]; lines: number; done: boolean; error?: InfluxWriteError }

/**
 * InfluxDB sink. Every accepted message is appended, as line protocol, to a disk buffer
 * (the same segment store as the gateway spool) before `accept` returns, so the MQTT
 * message can be acknowledged. A pump sends the buffer in batches of ~`batch_lines` (or
 * whatever is there after `flush_interval_ms`), `concurrency` at a time, and trims it in
 * order after each 2xx. Network errors, timeouts, 429 and 5xx are retried with capped
 * exponential backoff honouring Retry-After; other 4xx are moved to a dead-letter file
 * with the reason. Writes are idempotent in InfluxDB (same series and time overwrite),
 * so a batch resent after a partial failure does not duplicate anything.
 */
export class InfluxSink {
  readonly latency: Histogram;
  private readonly http: InfluxHttp;
  private readonly buffer: Spool;
  private readonly deadLetterFile: string;
  private readonly backoff: Backoff;
  private readonly flights: Flight[] = [];
  private state: InfluxState = 'starting';
  private received = 0;
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

  constructor(private readonly cfg: InfluxConfig, dataDir: string, token: string | undefined, private readonly log: Logger) {
    this.http = createInfluxHttp(cfg, token);
    const under = (p: string) => (isAbsolute(p) ? p : join(dataDir, p));
    // A buffer folder that cannot be written refuses new data (the MQTT message stays
    // unacknowledged) and is reported in health as `influx-buffer` with path and errno.
    this.buffer = Spool.open(under(cfg.buffer_dir), SpoolConfig.parse({ max_bytes: cfg.buffer_max_bytes, fsync: 'interval' }), { log: log.child('buffer'), target: 'influx-buffer' });
    this.deadLetterFile = under(cfg.dead_letter_file);
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
  accept(msg: DataMessage): void {
    if (msg.samples.length === 0) return;
    const text = encodeLines(this.cfg.measurement, msg.chamber, msg.samples);
    this.buffer.append(msg.chamber, text, msg.samples.length);
    this.received += msg.samples.length;
    this.linesPerRecord = this.linesPerRecord * 0.9 + msg.samples.length * 0.1;
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
      written: this.written,
      dropped: this.buffer.droppedSamples,
      dead_lettered: this.deadLettered,
      retries: this.retries,
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
    if (left) this.log.warn(`InfluxDB sink stopped with ${left} samples buffered on disk; they are sent at the next start`);
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

  private async run(): Promise<void> {
    for (;;) {
      if (this.abandoned) return;
      const now = Date.now();
      if (this.closing && this.flights.length === 0 && this.buffer.depth().samples === 0) return;
      if (now >= this.retryAt) this.launch();
      const head = this.flights[0];
      if (head?.done) {
        this.finish(this.flights.shift()!);
        continue;
      }
      const wait = new Promise<void>((resolve) => (this.wake = resolve));
      const timers: NodeJS.Timeout[] = [];
      if (this.retryAt > now) timers.push(setTimeout(() => this.kick(), this.retryAt - now));
      await wait;
      timers.forEach(clearTimeout);
    }
  }

  /** Starts batches while there are free slots and enough lines (or the flush interval passed). */
  private launch(): void {
    while (this.flights.length < this.cfg.concurrency) {
      const unsent = this.unsentLines();
      if (unsent <= 0) return;
      if (unsent < this.cfg.batch_lines && !this.closing && !this.flushDue) return;
      const records = this.buffer.read(Math.max(1, Math.round(this.cfg.batch_lines / Math.max(1, this.linesPerRecord))));
      if (records.length === 0) return;
      this.flushDue = false;
      const flight: Flight = { records, lines: records.reduce((n, r) => n + r.samples, 0), done: false };
      this.flights.push(flight);
      const body = Buffer.concat(records.map((r) => r.payload)).toString('utf8');
      const stop = this.latency.startTimer();
      this.http.write(body).then(
        () => {
          stop();
          flight.done = true;
          this.kick();
        },
        (err: unknown) => {
          flight.error = err instanceof InfluxWriteError ? err : new InfluxWriteError(String(err), undefined, true);
          flight.done = true;
          this.kick();
        },
      );
    }
  }

  /** The oldest batch finished: trim, dead-letter, or schedule a retry from it. */
  private finish(f: Flight): void {
    const lastSeq = f.records.at(-1)!.seq;
    if (!f.error) {
      this.buffer.ack(lastSeq);
      this.written += f.lines;
      if (this.state !== 'ok') this.log.info(`InfluxDB ${this.http.target} written to${this.retries ? ` after ${this.retries} retries` : ''}`);
      this.state = 'ok';
      this.lastError = undefined;
      this.backoff.reset();
      return;
    }
    const err = f.error;
    this.lastError = err.message;
    if (!err.retriable) {
      this.deadLetter(f, err);
      this.buffer.ack(lastSeq);
      return;
    }
    // Everything after the failed batch is resent too (idempotent writes).
    this.flights.length = 0;
    this.buffer.rewind();
    this.retries++;
    const delay = err.retryAfterMs ?? this.backoff.next();
    this.retryAt = Date.now() + delay;
    if (this.state !== 'retrying') this.log.warn(`InfluxDB write failed (${err.message}); ${this.buffer.depth().samples} samples kept on disk, retrying in ${delay} ms`);
    this.state = 'retrying';
  }

  private deadLetter(f: Flight, err: InfluxWriteError): void {
    mkdirSync(dirname(this.deadLetterFile), { recursive: true });
    const body = Buffer.concat(f.records.map((r) => r.payload)).toString('utf8');
    appendFileSync(this.deadLetterFile, `${JSON.stringify({ ts: new Date().toISOString(), status: err.status, reason: err.message, lines: f.lines, body })}\n`);
    this.deadLettered += f.lines;
    this.log.error(`InfluxDB refused ${f.lines} samples (${err.message}); moved to ${this.deadLetterFile}`);
  }
}
