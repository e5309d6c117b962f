import { resolve } from 'node:path';
import type { ConfigSlice } from '../config/loader.ts';
import type { Logger } from '../core/log.ts';
import type { DataMessage, StatusMessage } from '../bus/payload.ts';
import { appendAudit, auditFile } from '../auth/audit.ts';
import { experimentPaths, tagsOfChamber, triggerTagOf } from '../experiments/factory.ts';
import { RunControl } from '../experiments/run-control.ts';
import { toleranceSourceOf } from '../fidelity/plan.ts';
import type { ExperimentStore } from '../experiments/store.ts';
import { InfluxSink, type InfluxSinkHealth } from './sinks/influx/sink.ts';
import { Archiver, type ArchiverHealth } from './sinks/netcdf/archiver.ts';
import { Dedupe, parseMessageKey } from './dedupe.ts';
import { DataSubscriber, defaultCollectorClientId, type SubscriberStats } from './subscriber.ts';
import { AlarmEngine, type AlarmHealth } from '../alarms/engine.ts';
import { alarmLogFile } from '../alarms/event-log.ts';
import { AlarmBus } from '../alarms/mqtt.ts';
import { startAlarmNotifications, type AlarmNotifications } from '../alarms/notifications.ts';
import { plansOf } from '../alarms/plan.ts';
import { TreatmentTolerances } from '../alarms/treatments.ts';

/** Where the collector keeps its dedupe state (relative to data_dir), saved every second and at stop. */
const DEDUPE_FILE = 'collector-dedupe.json';
const DEDUPE_SAVE_MS = 1000;

export interface CollectorHealth {
  subscriber: SubscriberStats & {
    /** Samples refused for the InfluxDB path because stamped more than `max_future_ms` ahead, per chamber. */
    future_refused: Record<string, number>;
  };
  influx?: InfluxSinkHealth;
  netcdf?: ArchiverHealth;
  alarms?: AlarmHealth;
}

/**
 * The collector: MQTT data → sinks (InfluxDB when `influx.url` is set; the NetCDF
 * archiver of open experiment runs, and the PLC run triggers, when it is given the
 * experiment store). It talks to the
 * gateway only over MQTT, so it runs in the same process (`octopus start`) or on its
 * own (`octopus collect`), once or several times with a shared-subscription group.
 */
export class Collector {
  readonly influx?: InfluxSink;
  readonly archiver?: Archiver;
  private readonly runControl?: RunControl;
  /** The live alarm engine (alarms.enabled): evaluated on the archive path, published while this collector holds the archive lease. */
  readonly alarms?: AlarmEngine;
  private readonly alarmBus?: AlarmBus;
  /** Alarm webhooks and the InfluxDB alarm measurement, fed by the engine's events. */
  readonly notifications?: AlarmNotifications;
  private readonly treatments?: TreatmentTolerances;
  private readonly subscriber: DataSubscriber;
  /** With a shared-subscription group, the archive still needs every sample: its own subscription. */
  private readonly archiveSubscriber?: DataSubscriber;
  private readonly dedupe = new Dedupe();
  private readonly dedupeFile: string;
  private dedupeTimer?: NodeJS.Timeout;
  private readonly futureRefused = new Map<string, number>();
  private readonly futureLogged = new Map<string, number>();
  private readonly log: Logger;

  constructor(
    loaded: ConfigSlice<'collector' | 'mqtt' | 'gateway' | 'influx' | 'experiments' | 'alarms' | 'facility'>,
    brokerUrl: string,
    log: Logger,
    env: NodeJS.ProcessEnv = process.env,
    experiments?: ExperimentStore,
  ) {
    const cfg = loaded.config;
    if (cfg.influx.url)
      this.influx = new InfluxSink(
        cfg.influx,
        resolve(loaded.dataDir),
        env[cfg.influx.token_env] || undefined,
        log.child('influx'),
      );
    if (experiments && cfg.collector.archive) {
      // OPC UA subscriptions report a tag when it changes: the archive holds its value in between.
      const onChange = new Set(
        loaded.chambers
          .filter((c) => c.chamber.driver === 'opcua' && c.chamber.opcua.mode === 'subscription')
          .map((c) => c.chamber.id),
      );
      this.archiver = new Archiver(
        experiments,
        { ...cfg.experiments, working_dir: experimentPaths(loaded).working },
        tagsOfChamber(loaded),
        log.child('archiver'),
        {
          onChange: (chamber) => onChange.has(chamber),
          tolerances: toleranceSourceOf(loaded),
          facility: cfg.facility,
        },
      );
      const archiver = this.archiver;
      this.runControl = new RunControl(experiments, {
        url: brokerUrl,
        mqtt: cfg.mqtt,
        log: log.child('runs'),
        triggerTag: triggerTagOf(loaded),
        env,
        audit: (e) => appendAudit(auditFile(loaded.dataDir), e),
        active: () => archiver.writer,
      });
    }
    if (cfg.alarms.enabled) {
      const archiver = this.archiver;
      this.alarmBus = new AlarmBus({ url: brokerUrl, mqtt: cfg.mqtt, log: log.child('alarms'), env });
      this.treatments = experiments ? new TreatmentTolerances(experiments) : undefined;
      const treatments = this.treatments;
      this.alarms = new AlarmEngine({
        config: cfg.alarms,
        plans: plansOf(loaded),
        log: log.child('alarms'),
        logFile: alarmLogFile(loaded.dataDir),
        audit: (e) => appendAudit(auditFile(loaded.dataDir), e),
        // With several collectors, only the archive writer publishes; the others evaluate silently.
        active: () => (archiver ? archiver.writer : true),
        ...(treatments ? { treatment: (c: string) => treatments.of(c) } : {}),
        publisher: this.alarmBus,
      });
      this.alarmBus.serve(this.alarms);
      const engine = this.alarms;
      this.alarmBus.onConnect = () => engine.republish(); // Webhooks and the InfluxDB `alarm` measurement (Grafana annotations): the engine
      // only emits events while it is the writer, so one collector notifies.
      this.notifications = startAlarmNotifications(engine, {
        webhooks: cfg.alarms.webhooks,
        dataDir: resolve(loaded.dataDir),
        ...(this.influx ? { influx: this.influx } : {}),
        log: log.child('alarms'),
        env,
      });
    }
    this.log = log;
    this.dedupeFile = resolve(loaded.dataDir, DEDUPE_FILE);
    this.restoreDedupe();
    if (this.influx) this.influx.beforeTrim = () => this.saveDedupe();
    const shared = cfg.collector.group !== undefined;
    const alarms = this.alarms;
    const archive = (msg: DataMessage) => {
      this.archiver?.accept(msg);
      this.runControl?.observe(msg);
      alarms?.accept(msg);
    };
    const status = (chamber: string, s: StatusMessage) => {
      this.archiver?.status(chamber, s);
      alarms?.status(chamber, s);
    };
    const influx = this.influx;
    const maxFuture = cfg.collector.max_future_ms;
    const clientId = cfg.collector.client_id ?? defaultCollectorClientId(cfg.gateway.id, loaded.dataDir);
    this.subscriber = new DataSubscriber({
      url: brokerUrl,
      mqtt: cfg.mqtt,
      collector: cfg.collector,
      clientId,
      dedupe: this.dedupe,
      log: log.child('subscriber'),
      env,
      deliver: (msg: DataMessage) => {
        if (influx) influx.accept(msg, this.notInFuture(msg, maxFuture));
        if (!shared) archive(msg);
      },
      ...(shared ? {} : { onStatus: status }),
    });
    if (shared && (this.archiver || this.alarms)) {
      const { group: _group, ...rest } = cfg.collector;
      this.archiveSubscriber = new DataSubscriber({
        url: brokerUrl,
        mqtt: cfg.mqtt,
        collector: rest,
        clientId: `${clientId}-archive`,
        log: log.child('archive-subscriber'),
        env,
        deliver: archive,
        onStatus: status,
      });
    }
  }

  /**
   * The samples of a message not stamped beyond `maxFuture` ms ahead of this clock; the
   * others are refused for the InfluxDB path (a far-future point would sit on every
   * "last value" query), counted per chamber and logged once a minute per chamber.
   */
  private notInFuture(msg: DataMessage, maxFuture: number): DataMessage['samples'] {
    const limit = Date.now() + maxFuture;
    let bad = 0;
    for (const s of msg.samples) if (s.ts > limit) bad++;
    if (bad === 0) return msg.samples;
    this.futureRefused.set(msg.chamber, (this.futureRefused.get(msg.chamber) ?? 0) + bad);
    const now = Date.now();
    if (now - (this.futureLogged.get(msg.chamber) ?? 0) >= 60_000) {
      this.futureLogged.set(msg.chamber, now);
      const first = msg.samples.find((s) => s.ts > limit)!;
      this.log.warn(
        `chamber "${msg.chamber}": refused ${bad} sample(s) stamped more than ${maxFuture} ms ahead (e.g. ${first.tag} at ${new Date(first.ts).toISOString()}, gateway "${msg.gw}"); ${this.futureRefused.get(msg.chamber)} so far`,
      );
    }
    return msg.samples.filter((s) => s.ts <= limit);
  }

  /** Dedupe state of the last run, plus every message still in the InfluxDB buffer (delivered, maybe not acknowledged to the broker). */
  private restoreDedupe(): void {
    const problem = this.dedupe.load(this.dedupeFile);
    if (problem)
      this.log.warn(`dedupe state not restored (${problem}); messages redelivered by the broker may be stored twice`);
    let n = 0;
    for (const key of this.influx?.bufferedKeys() ?? []) {
      const k = parseMessageKey(key);
      if (!k) continue;
      this.dedupe.seen(k.gw, k.ep, k.seq);
      n++;
    }
    if (n) this.log.info(`dedupe state rebuilt with ${n} buffered messages`);
  }

  private saveDedupe(): void {
    try {
      this.dedupe.save(this.dedupeFile);
    } catch (err) {
      this.log.warn(`cannot save the dedupe state to ${this.dedupeFile}: ${(err as Error).message}`);
    }
  }

  start(): void {
    this.dedupeTimer = setInterval(() => this.saveDedupe(), DEDUPE_SAVE_MS);
    this.dedupeTimer.unref();
    this.influx?.start();
    this.archiver?.start();
    this.alarms?.start();
  }

  /** Resolves once the broker granted the data subscription. */
  get subscribed(): Promise<void> {
    return Promise.all([this.subscriber.subscribed, this.archiveSubscriber?.subscribed]).then(() => undefined);
  }

  get connected(): boolean {
    return this.subscriber.connected;
  }

  health(): CollectorHealth {
    return {
      subscriber: { ...this.subscriber.stats(), future_refused: Object.fromEntries(this.futureRefused) },
      ...(this.influx ? { influx: this.influx.health() } : {}),
      ...(this.archiver ? { netcdf: this.archiver.health() } : {}),
      ...(this.alarms ? { alarms: this.alarms.health() } : {}),
    };
  }

  /** Stops receiving first (nothing unacknowledged is lost: the broker keeps it), then flushes the sinks. */
  async stop(): Promise<void> {
    await this.subscriber.close();
    await this.archiveSubscriber?.close();
    clearInterval(this.dedupeTimer);
    this.saveDedupe();
    await this.runControl?.close();
    this.alarms?.stop();
    await this.notifications?.close();
    this.treatments?.close();
    await this.alarmBus?.close();
    this.archiver?.stop();
    await this.influx?.close();
  }
}
