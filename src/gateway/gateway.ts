import { resolve } from 'node:path';
import type { LoadedConfig } from '../config/loader.ts';
import type { Logger } from '../core/log.ts';
import { Publisher, type SetpointRequest } from '../bus/publisher.ts';
import { Spool } from '../bus/spool.ts';
import { createDrivers } from '../drivers/registry.ts';
import type { Driver } from '../drivers/types.ts';
import type { HealthReport } from '../api/health-schema.ts';
import { composeHealth } from './health.ts';
import { VERSION } from '../core/version.ts';
import { AuditLog } from '../auth/audit.ts';


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

  constructor(private readonly loaded: LoadedConfig, private readonly broker: { url: string; embedded: boolean }, private readonly log: Logger) {
    const cfg = loaded.config;
    this.auditLog = AuditLog.forDataDir(loaded.dataDir);
    // An unwritable spool folder does not stop the gateway: samples are held in memory and
    // published while the broker acknowledges them, and health names the folder (src/bus/spool.ts).
    const spool = Spool.open(resolve(loaded.dataDir, cfg.spool.dir), cfg.spool, { log: log.child('spool'), onWriteFailure: 'memory' });
    this.publisher = new Publisher({
      url: broker.url,
      mqtt: cfg.mqtt,
      gatewayId: cfg.gateway.id,
      spool,
      log: log.child('mqtt'),
      onSetpoint: (req) => void this.applySetpoint(req).catch((err: Error) => log.error(`setpoint ${req.chamber}/${req.tag}: ${err.message}`)),
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
  }

  async start(): Promise<void> {
    await Promise.all(this.drivers.map((d) => d.start()));
  }

  /**
   * Writes a setpoint requested over MQTT; refusals are logged with the reason. A setpoint
   * that cannot be audited (audit log unwritable or full) is refused, never written.
   */
  async applySetpoint(req: SetpointRequest): Promise<void> {
    const driver = this.drivers.find((d) => d.chamber === req.chamber);
    const what = `setpoint ${req.chamber}/${req.tag} = ${JSON.stringify(req.value)}${req.id ? ` (request ${req.id})` : ''}`;
    const audit = (result: string) =>
      this.auditLog.record({ who: `mqtt${req.id ? `:${req.id}` : ''}`, action: 'setpoint', what: `${req.chamber}/${req.tag}`, detail: { value: req.value, result } });
    try {
      this.auditLog.ensureWritable(what);
    } catch (err) {
      this.log.warn(`${what} refused: ${(err as Error).message}`);
      return;
    }
    if (!driver) {
      this.log.warn(`${what} refused: no chamber "${req.chamber}" on this gateway`);
      audit('refused: unknown chamber');
      return;
    }
    try {
      await driver.write(req.tag, req.value);
      this.log.info(`${what} written`);
      audit('written');
    } catch (err) {
      this.log.warn(`${what} refused: ${(err as Error).message}`);
      audit(`refused: ${(err as Error).message}`);
    }
  }

  health(): HealthReport {
    const p = this.publisher.stats();
    const spool = this.publisher.spoolDepth();
    return composeHealth({
      gateway: this.loaded.config.gateway.id,
      version: VERSION,
      startedAt: this.startedAt,
      drivers: this.drivers.map((d) => d.health()),
      broker: { url: this.broker.url, embedded: this.broker.embedded, connected: p.connected, reconnects: p.reconnects },
      spool: { ...spool, publishedMessages: p.publishedMessages, publishedSamples: p.publishedSamples },
    });
  }

  /** Stops polling, publishes what is spooled (bounded wait), disconnects, closes the spool. */
  async stop(): Promise<void> {
    await Promise.all(this.drivers.map((d) => d.stop().catch((err) => this.log.warn(`stopping ${d.chamber}: ${String(err)}`))));
    await this.closeDrivers();
    await this.publisher.close();
  }
}
