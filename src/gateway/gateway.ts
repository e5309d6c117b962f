import { resolve } from 'node:path';
import type { ConfigSlice } from '../config/loader.ts';
import type { Logger } from '../core/log.ts';
import { Publisher, type SetTopic } from '../bus/publisher.ts';
import { SetRequest, type RequestResult } from '../bus/payload.ts';
import { parseRequest } from '../bus/requests.ts';
import { Spool } from '../bus/spool.ts';
import { createDrivers } from '../drivers/registry.ts';
import type { Driver } from '../drivers/types.ts';
import type { HealthReport } from '../core/health.ts';
import { composeHealth } from './health.ts';
import { VERSION } from '../core/version.ts';
import { AuditLog } from '../auth/audit.ts';
import { Setpoints, type SetpointAttempt, type SetpointOutcome } from './setpoints.ts';

/**
 * The gateway: one driver per chamber, their samples spooled and published over MQTT,
 * chamber status retained, setpoint requests from MQTT written to the PLCs.
 */
export class Gateway {
  readonly publisher: Publisher;
  private readonly drivers: Driver[];
  private readonly closeDrivers: () => Promise<void>;
  private readonly startedAt = Date.now();
  private readonly auditLog: AuditLog;
  private readonly setpoints: Setpoints;

  /** `env`: where the MQTT credentials are read (mqtt.username_env / password_env). */
  constructor(
    private readonly loaded: ConfigSlice<'spool' | 'mqtt' | 'gateway'>,
    private readonly broker: { url: string; embedded: boolean },
    private readonly log: Logger,
    env: NodeJS.ProcessEnv = process.env,
  ) {
    const cfg = loaded.config;
    this.auditLog = AuditLog.forDataDir(loaded.dataDir);
    // An unwritable spool folder does not stop the gateway: samples are held in memory and
    // published while the broker acknowledges them, and health names the folder (src/bus/spool.ts).
    const spool = Spool.open(resolve(loaded.dataDir, cfg.spool.dir), cfg.spool, {
      log: log.child('spool'),
      onWriteFailure: 'memory',
    });
    this.publisher = new Publisher({
      url: broker.url,
      mqtt: cfg.mqtt,
      gatewayId: cfg.gateway.id,
      spool,
      log: log.child('mqtt'),
      env,
      chambers: loaded.chambers.map((c) => c.chamber.id),
      onSetRequest: (where, payload, retained) => void this.onSetRequest(where, payload, retained),
    });
    const lastStatus = new Map<string, string>();
    const made = createDrivers(loaded.chambers, (chamber) => ({
      log: log.child(chamber),
      dataDir: loaded.dataDir,
      sink: {
        samples: (samples) => this.publisher.publishSamples(chamber, samples),
        // The retained status topic changes only when the state or its reason does.
        status: (state, reason) => {
          const key = `${state}\n${reason ?? ''}`;
          if (lastStatus.get(chamber) === key) return;
          lastStatus.set(chamber, key);
          this.publisher.setChamberStatus(chamber, state, reason);
          log.info(`chamber ${chamber} ${state}${reason ? `: ${reason}` : ''}`);
        },
      },
    }));
    this.drivers = made.drivers;
    this.closeDrivers = made.close;
    this.setpoints = new Setpoints(this.drivers, this.auditLog, log.child('setpoints'));
  }

  async start(): Promise<void> {
    await Promise.all(this.drivers.map((d) => d.start()));
  }

  /** Writes a setpoint (HTTP or MQTT): validated, written to the PLC, audited with `call.who`. */
  setpoint(call: SetpointAttempt): Promise<SetpointOutcome> {
    return this.setpoints.apply(call);
  }

  /** A message on `<prefix>/<chamber>/set/<tag>/<principal>`: the sender is the ACL-pinned topic level. */
  private async onSetRequest(where: SetTopic, payload: Buffer, retained: boolean): Promise<void> {
    const who = `mqtt:${where.principal}`;
    // An empty payload is the deletion of a retained request (ours, below): nothing to do.
    if (payload.length === 0) return;
    const parsed = parseRequest(SetRequest, payload, retained);
    // A request published with retain=true must never be replayed (to this gateway after a
    // reconnect, or to the next one): delete it. MQTT 3.1.1 hides the retain flag from live
    // subscribers, so this is done for every request (Mosquitto; the embedded broker refuses
    // retained requests outright). Delivered as retained (stored earlier): refused.
    this.publisher.clearRetained(this.publisher.topics.set(where.chamber, where.tag, where.principal));
    const outcome = parsed.ok
      ? await this.setpoints.apply({
          chamber: where.chamber,
          tag: where.tag,
          value: parsed.data.value,
          id: parsed.data.id,
          who,
        })
      : this.setpoints.refuse({ chamber: where.chamber, tag: where.tag, id: parsed.id, who }, parsed.reason);
    const result: RequestResult = {
      v: 1,
      id: parsed.ok ? (parsed.data.id ?? null) : parsed.id,
      request: 'setpoint',
      topic: this.publisher.topics.set(where.chamber, where.tag, where.principal),
      status: outcome.status,
      ...(outcome.status === 'refused' ? { reason: outcome.reason } : { value: outcome.value }),
      by: where.principal,
      ts: Date.now(),
    };
    this.publisher.publishResult(where.principal, result);
  }

  health(): HealthReport {
    const p = this.publisher.stats();
    const spool = this.publisher.spoolDepth();
    return composeHealth({
      gateway: this.loaded.config.gateway.id,
      version: VERSION,
      startedAt: this.startedAt,
      drivers: this.drivers.map((d) => d.health()),
      broker: {
        url: this.broker.url,
        embedded: this.broker.embedded,
        connected: p.connected,
        reconnects: p.reconnects,
      },
      spool: { ...spool, publishedMessages: p.publishedMessages, publishedSamples: p.publishedSamples },
    });
  }

  /** Stops polling, publishes what is spooled (bounded wait), disconnects, closes the spool. */
  async stop(): Promise<void> {
    await Promise.all(
      this.drivers.map((d) => d.stop().catch((err) => this.log.warn(`stopping ${d.chamber}: ${String(err)}`))),
    );
    await this.closeDrivers();
    await this.publisher.close();
  }
}
