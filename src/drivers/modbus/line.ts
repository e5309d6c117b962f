import type { ModbusOptions } from '../../config/instance-schema.ts';
import { Backoff } from '../../core/backoff.ts';
import type { Logger } from '../../core/log.ts';
import { connectModbus, ModbusError, type ModbusClient } from './client.ts';

/** Consecutive timeouts after which a unit is treated as down and only probed now and then. */
const DOWN_AFTER = 2;

interface UnitState {
  timeouts: number;
  downUntil: number;
  backoff: Backoff;
}

/**
 * One TCP connection or serial line, shared by every chamber (unit id) on it. Requests
 * are serialised in one queue; each has its own timeout and retries. A unit that stops
 * answering is marked down and probed once per backoff period, so its neighbours keep
 * their cadence. A dropped connection is re-opened with capped exponential backoff.
 */
export class ModbusLine {
  private client?: ModbusClient;
  private connecting?: Promise<void>;
  private nextConnectAt = 0;
  private lastConnectError: Error | undefined;
  private readonly backoff = new Backoff(500, 10_000);
  private tail: Promise<unknown> = Promise.resolve();
  private readonly units = new Map<number, UnitState>();
  private closed = false;
  reconnects = 0;
  private everConnected = false;

  constructor(
    readonly endpoint: string,
    private readonly opts: ModbusOptions,
    private readonly log: Logger,
  ) {}

  /** Runs `op` on the line's connection, after the requests queued before it. */
  request<T>(unit: number, op: (c: ModbusClient, timeoutMs: number) => Promise<T>): Promise<T> {
    const run = this.tail.then(() => this.execute(unit, op));
    this.tail = run.catch(() => {});
    return run;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.tail;
    await this.client?.close();
    this.client = undefined;
  }

  private unit(id: number): UnitState {
    let u = this.units.get(id);
    if (!u) this.units.set(id, (u = { timeouts: 0, downUntil: 0, backoff: new Backoff(1000, 30_000) }));
    return u;
  }

  private async execute<T>(unitId: number, op: (c: ModbusClient, timeoutMs: number) => Promise<T>): Promise<T> {
    if (this.closed)
      throw new ModbusError({ kind: 'connection', message: 'line closed' }, `line ${this.endpoint} closed`);
    const client = await this.connected();
    const u = this.unit(unitId);
    const now = Date.now();
    if (u.downUntil > now) {
      // No counters or countdowns in the message: it becomes the chamber's status reason,
      // which is republished (retained MQTT) whenever it changes.
      throw new ModbusError({ kind: 'timeout' }, `unit ${unitId} not answering (probing with backoff up to 30 s)`);
    }
    // A unit already down gets a single probe, no retries, so it costs one timeout per period.
    const attempts = u.timeouts >= DOWN_AFTER ? 1 : 1 + this.opts.retries;
    let last: unknown;
    for (let i = 0; i < attempts; i++) {
      try {
        const result = await op(client, this.opts.timeout_ms);
        if (u.timeouts >= DOWN_AFTER) this.log.info(`unit ${unitId} on ${this.endpoint} answers again`);
        u.timeouts = 0;
        u.downUntil = 0;
        u.backoff.reset();
        return result;
      } catch (err) {
        last = err;
        const kind = err instanceof ModbusError ? err.failure.kind : 'connection';
        if (kind === 'exception') {
          // An exception reply is an answer: the unit is alive.
          u.timeouts = 0;
          u.downUntil = 0;
          u.backoff.reset();
          throw err;
        }
        if (kind === 'connection' || !client.open) {
          this.drop(String((err as Error).message));
          throw err;
        }
      }
    }
    u.timeouts++;
    if (u.timeouts >= DOWN_AFTER) {
      const wait = u.backoff.next();
      u.downUntil = Date.now() + wait;
      if (u.timeouts === DOWN_AFTER)
        this.log.warn(
          `unit ${unitId} on ${this.endpoint} stopped answering; probing every ≤${Math.round(wait / 1000)} s`,
        );
      // Down: every failed probe gives the same reason as the skipped polls in between.
      throw new ModbusError({ kind: 'timeout' }, `unit ${unitId} not answering (probing with backoff up to 30 s)`);
    }
    throw last;
  }

  private drop(reason: string): void {
    if (!this.client) return;
    this.log.warn(`connection to ${this.endpoint} lost: ${reason}`);
    void this.client.close().catch(() => {});
    this.client = undefined;
  }

  private async connected(): Promise<ModbusClient> {
    if (this.client?.open) return this.client;
    if (this.client) this.drop('port closed');
    const now = Date.now();
    if (now < this.nextConnectAt) {
      // The same reason as the failed attempt (no countdown): the status changes only when the reason does.
      throw (
        this.lastConnectError ??
        new ModbusError(
          { kind: 'connection', message: 'not connected' },
          `not connected to ${this.endpoint} (reconnecting with backoff)`,
        )
      );
    }
    this.connecting ??= (async () => {
      try {
        this.client = await connectModbus(this.endpoint, this.opts);
        if (this.everConnected) this.reconnects++;
        this.everConnected = true;
        this.backoff.reset();
        this.lastConnectError = undefined;
        this.log.info(`connected to ${this.endpoint}`);
      } catch (err) {
        this.nextConnectAt = Date.now() + this.backoff.next();
        this.lastConnectError = err as Error;
        throw err;
      } finally {
        this.connecting = undefined;
      }
    })();
    await this.connecting;
    return this.client!;
  }
}

/** Lines keyed by endpoint: chambers on one endpoint share its connection and queue. */
export class ModbusLinePool {
  private readonly lines = new Map<string, ModbusLine>();

  get(endpoint: string, opts: ModbusOptions, log: Logger): ModbusLine {
    let line = this.lines.get(endpoint);
    if (!line) this.lines.set(endpoint, (line = new ModbusLine(endpoint, opts, log)));
    return line;
  }

  async close(): Promise<void> {
    await Promise.all([...this.lines.values()].map((l) => l.close()));
    this.lines.clear();
  }
}
