/**
 * Alarm notifications over webhooks (docs/alarms.md, "Webhooks"). For each configured
 * webhook, the alarm events of its classes and lifecycle events are POSTed as JSON (the
 * event plus `webhook` and `delivery_id`), signed with HMAC-SHA256 when a secret is named,
 * one at a time and in order per webhook (a later event waits for the earlier one, so a
 * receiver never sees `cleared` before `raised`); webhooks do not wait for each other.
 *
 * - Retried on network errors, timeouts, 408, 429 and 5xx after `backoff_ms`, doubled at
 *   each failure up to 5 min, or after Retry-After when the receiver sends one (at most 1 h).
 * - Other answers (3xx, 4xx) and `max_attempts` failures move the delivery to the
 *   dead-letter log (dead-letter.ts).
 * - Pending deliveries are on disk (webhook-queue.ts): after a restart they are sent
 *   again, with the same delivery id (at-least-once: a receiver dedupes on it).
 * - `onEvent` only queues (an append to the journal): a slow or dead receiver never holds
 *   up the alarm engine. At most `MAX_PENDING` deliveries wait per webhook; beyond, the
 *   new event is dead-lettered at once ("queue full").
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { createLogger, type Logger } from '../core/log.ts';
import { writeFaults as globalWriteFaults, type WriteFaults } from '../core/write-faults.ts';
import { DeadLetterLog } from './dead-letter.ts';
import type { AlarmEvent } from './model.ts';
import type { AlarmEventSource } from './source.ts';
import type { Webhook } from './webhook-config.ts';
import { DeliveryQueue, type Delivery } from './webhook-queue.ts';
import { attempt, parseTarget, type Target, type WebhookBody } from './webhook-request.ts';

export const MAX_BACKOFF_MS = 300_000;
export const MAX_RETRY_AFTER_MS = 3_600_000;
export const MAX_PENDING = 10_000;

/** Timers the notifier waits with (tests may drive them). */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface WebhookHealth {
  name: string;
  /** Scheme, host and port only: the path of a chat webhook is its secret. */
  target: string;
  state: 'ok' | 'retrying';
  pending: number;
  in_flight: boolean;
  delivered: number;
  retried: number;
  dead_lettered: number;
  last_error?: string;
  last_status?: number;
  /** ISO time of the last delivery. */
  last_delivered?: string;
}

export interface NotifierHealth {
  state: 'ok' | 'retrying';
  /** Pending deliveries over all webhooks (the `buffered` of a sink in /api/health). */
  buffered: number;
  pending: number;
  delivered: number;
  retried: number;
  dead_lettered: number;
  last_error?: string;
  webhooks: WebhookHealth[];
}

export interface NotifierOptions {
  /** `alarms.webhooks` of the instance configuration (parsed). */
  webhooks: readonly Webhook[];
  /** Resolved data_dir: queues in `<dataDir>/alarms/webhooks/`, the dead-letter log `<dataDir>/alarms/dead-letter.jsonl`. */
  dataDir: string;
  /** Where secrets are read (`secret_env`); default process.env. */
  env?: NodeJS.ProcessEnv;
  log?: Logger;
  clock?: Clock;
  writeFaults?: WriteFaults;
}

/** The delay before retry `n` (n ≥ 1 failed attempts): backoff_ms·2^(n−1), at most 5 min. */
export function backoffDelay(backoffMs: number, failures: number): number {
  return Math.min(MAX_BACKOFF_MS, backoffMs * 2 ** Math.min(Math.max(0, failures - 1), 30));
}

class WebhookWorker {
  readonly queue: DeliveryQueue;
  private readonly target: Target;
  private readonly secret?: string;
  private inFlight = false;
  private timer?: unknown;
  private retryAt = 0;
  private readonly abort = new AbortController();
  private running?: Promise<void>;
  private closed = false;
  delivered = 0;
  retried = 0;
  deadLettered = 0;
  lastError?: string;
  lastStatus?: number;
  lastDelivered?: number;

  constructor(
    readonly cfg: Webhook,
    secret: string | undefined,
    dataDir: string,
    private readonly deadLetters: DeadLetterLog,
    private readonly clock: Clock,
    private readonly log: Logger,
    faults: WriteFaults,
  ) {
    this.target = parseTarget(cfg.url);
    this.secret = secret;
    this.queue = new DeliveryQueue(
      join(dataDir, 'alarms', 'webhooks', `${cfg.name}.jsonl`),
      `alarms:webhook:${cfg.name}`,
      faults,
    );
    if (this.queue.skipped) log.warn(`${this.queue.skipped} unreadable record(s) skipped in ${this.queue.file}`);
    if (this.queue.size) log.info(`${this.queue.size} alarm notification(s) pending from before; sending them first`);
  }

  wants(e: AlarmEvent): boolean {
    return this.cfg.classes.includes(e.alarm.class) && this.cfg.events.includes(e.event);
  }

  enqueue(e: AlarmEvent): void {
    const d: Delivery = { id: randomUUID(), event: e, queued: this.clock.now(), attempts: 0 };
    if (this.queue.size >= MAX_PENDING) {
      this.giveUp(d, { error: `queue full (${MAX_PENDING} pending for webhook ${this.cfg.name})` }, false);
      return;
    }
    this.queue.add(d);
    this.pump();
  }

  /** Starts the next delivery when none is running and no retry is waiting. */
  pump(): void {
    if (this.closed || this.inFlight || this.timer !== undefined) return;
    const d = this.queue.head();
    if (!d) return;
    this.inFlight = true;
    this.running = this.send(d)
      .catch((err: unknown) => {
        this.log.error(`webhook ${this.cfg.name}: delivery ${d.id} failed unexpectedly: ${(err as Error).message}`);
      })
      .finally(() => {
        this.inFlight = false;
        this.running = undefined;
        this.pump();
      });
  }

  private async send(d: Delivery): Promise<void> {
    const payload: WebhookBody = { webhook: this.cfg.name, delivery_id: d.id, ...d.event };
    d.attempts++;
    const outcome = await attempt({
      target: this.target,
      body: JSON.stringify(payload),
      deliveryId: d.id,
      event: d.event.event,
      attempt: d.attempts,
      secret: this.secret,
      timeoutMs: this.cfg.timeout_ms,
      signal: this.abort.signal,
      now: this.clock.now(),
    });
    if (this.closed) {
      // Not recorded: the attempt is made again at the next start.
      d.attempts--;
      return;
    }
    if (outcome.kind === 'delivered') {
      this.queue.done(d.id);
      this.delivered++;
      this.lastDelivered = this.clock.now();
      this.lastStatus = outcome.status;
      if (this.retryAt) this.log.info(`webhook ${this.cfg.name}: delivering again (${this.target.shown})`);
      this.retryAt = 0;
      return;
    }
    this.lastError = outcome.error;
    this.lastStatus = outcome.status;
    d.last_error = outcome.error;
    if (outcome.status !== undefined) d.last_status = outcome.status;
    if (outcome.kind === 'refused' || d.attempts >= this.cfg.max_attempts) {
      this.giveUp(d, outcome, true);
      return;
    }
    this.queue.failed(d);
    this.retried++;
    const wait =
      outcome.retryAfterMs !== undefined
        ? Math.min(outcome.retryAfterMs, MAX_RETRY_AFTER_MS)
        : backoffDelay(this.cfg.backoff_ms, d.attempts);
    this.retryAt = this.clock.now() + wait;
    this.log.warn(
      `webhook ${this.cfg.name}: attempt ${d.attempts}/${this.cfg.max_attempts} of delivery ${d.id} failed (${outcome.error}); retrying in ${wait} ms`,
    );
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      this.pump();
    }, wait);
  }

  private giveUp(d: Delivery, outcome: { status?: number; error: string }, queued: boolean): void {
    this.deadLetters.append({
      ts: new Date(this.clock.now()).toISOString(),
      webhook: this.cfg.name,
      delivery_id: d.id,
      attempts: d.attempts,
      ...(outcome.status !== undefined ? { status: outcome.status } : {}),
      error: outcome.error,
      event: d.event,
    });
    if (queued) this.queue.done(d.id);
    this.deadLettered++;
    this.lastError = outcome.error;
    this.log.error(
      `webhook ${this.cfg.name}: ${d.event.event} of alarm ${d.event.alarm.id} dead-lettered after ${d.attempts} attempt(s): ${outcome.error}; see ${this.deadLetters.file}`,
    );
  }

  health(): WebhookHealth {
    return {
      name: this.cfg.name,
      target: this.target.shown,
      state: this.timer !== undefined ? 'retrying' : 'ok',
      pending: this.queue.size,
      in_flight: this.inFlight,
      delivered: this.delivered,
      retried: this.retried,
      dead_lettered: this.deadLettered,
      ...(this.lastError !== undefined ? { last_error: this.lastError } : {}),
      ...(this.lastStatus !== undefined ? { last_status: this.lastStatus } : {}),
      ...(this.lastDelivered !== undefined ? { last_delivered: new Date(this.lastDelivered).toISOString() } : {}),
    };
  }

  /** Waits up to `graceMs` for the running attempt, then aborts it (it stays pending on disk). */
  async close(graceMs: number): Promise<void> {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    const running = this.running;
    if (running) {
      let t: NodeJS.Timeout | undefined;
      await Promise.race([running, new Promise((r) => (t = setTimeout(r, graceMs)))]);
      clearTimeout(t);
    }
    this.closed = true;
    this.abort.abort();
    await this.running;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.queue.close();
  }
}

export class WebhookNotifier {
  private readonly workers: WebhookWorker[];
  private readonly deadLetters: DeadLetterLog;
  private readonly unsubscribes: Array<() => void> = [];
  private readonly log: Logger;

  /** Throws (naming the webhook and the variable) when a `secret_env` is not set. */
  constructor(o: NotifierOptions) {
    const env = o.env ?? process.env;
    const log = (this.log = o.log ?? createLogger('alarms:webhooks'));
    const clock = o.clock ?? systemClock;
    const faults = o.writeFaults ?? globalWriteFaults;
    const names = new Set<string>();
    o.webhooks.forEach((w, i) => {
      if (names.has(w.name))
        throw new Error(
          `alarms.webhooks[${i}].name: "${w.name}" is used twice (names must be unique: they name the queue file and the metrics)`,
        );
      names.add(w.name);
      try {
        parseTarget(w.url);
      } catch {
        throw new Error(`alarms.webhooks[${i}] ("${w.name}").url: not a valid URL`);
      }
      if (w.secret_env && !env[w.secret_env])
        throw new Error(
          `alarms.webhooks[${i}] ("${w.name}"): secret_env ${w.secret_env} is not set in the environment (it holds the HMAC secret)`,
        );
    });
    this.deadLetters = new DeadLetterLog(join(o.dataDir, 'alarms', 'dead-letter.jsonl'), faults, log);
    this.workers = o.webhooks.map(
      (w) =>
        new WebhookWorker(
          w,
          w.secret_env ? env[w.secret_env] : undefined,
          o.dataDir,
          this.deadLetters,
          clock,
          log,
          faults,
        ),
    );
  }

  /** Sends what earlier runs left pending and every event of `source` from now on. */
  attach(source: AlarmEventSource): this {
    for (const w of this.workers) w.pump();
    this.unsubscribes.push(
      source.onEvent((e) => {
        // Nothing thrown back into the alarm engine.
        try {
          this.notify(e);
        } catch (err) {
          this.log.error(
            `alarm event ${e.alarm.id} (${e.event}) not queued for the webhooks: ${(err as Error).message}`,
          );
        }
      }),
    );
    return this;
  }

  /** Queues an event for every webhook that wants it; returns at once. */
  notify(e: AlarmEvent): void {
    for (const w of this.workers) if (w.wants(e)) w.enqueue(e);
  }

  get deadLetterFile(): string {
    return this.deadLetters.file;
  }

  health(): NotifierHealth {
    const webhooks = this.workers.map((w) => w.health());
    const sum = (k: 'pending' | 'delivered' | 'retried' | 'dead_lettered') => webhooks.reduce((n, w) => n + w[k], 0);
    const lastError =
      webhooks.find((w) => w.state === 'retrying')?.last_error ?? webhooks.find((w) => w.last_error)?.last_error;
    return {
      state: webhooks.some((w) => w.state === 'retrying') ? 'retrying' : 'ok',
      buffered: sum('pending'),
      pending: sum('pending'),
      delivered: sum('delivered'),
      retried: sum('retried'),
      dead_lettered: sum('dead_lettered'),
      ...(lastError ? { last_error: lastError } : {}),
      webhooks,
    };
  }

  /** Problem lines for the health report: webhooks retrying now. */
  problems(): string[] {
    return this.workers
      .map((w) => w.health())
      .filter((w) => w.state === 'retrying')
      .map(
        (w) =>
          `alarm webhook ${w.name} (${w.target}): ${w.pending} notification(s) pending, retrying after: ${w.last_error ?? 'error'}`,
      );
  }

  /** Stops listening; running attempts get `graceMs` to finish, the rest stays on disk for the next start. */
  async close(graceMs = 2000): Promise<void> {
    for (const u of this.unsubscribes.splice(0)) u();
    await Promise.all(this.workers.map((w) => w.close(graceMs)));
    this.deadLetters.flush();
  }
}

/** One line at wiring time: a notifier for `webhooks`, attached to the engine's events. */
export function startWebhookNotifier(source: AlarmEventSource, o: NotifierOptions): WebhookNotifier {
  return new WebhookNotifier(o).attach(source);
}
