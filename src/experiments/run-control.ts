import type { MqttConfig } from '../config/instance-schema.ts';
import type { Logger } from '../core/log.ts';
import { connectMqtt, mqttCredentials, type MqttConnection } from '../bus/mqtt-client.ts';
import type { AuditEntry } from '../auth/audit.ts';
import { ExperimentCommand, type DataMessage, type ExperimentEvent, type RequestResult } from '../bus/payload.ts';
import { parseRequest } from '../bus/requests.ts';
import { topics, type Topics } from '../bus/topics.ts';
import { ExperimentError, type ExperimentStore, type RunEvent } from './store.ts';

/**
 * Runs started and stopped from MQTT and from the PLCs, and announced on MQTT:
 * - `<prefix>/experiments/<id>/command/<principal>` `{"action":"start"|"stop","run"?,"note"?,"id"?}`:
 *   the sender is the topic's last level (pinned by the broker ACL to the authenticated
 *   user); every command is audited and answered on `<prefix>/results/<principal>`;
 * - the chamber's run-trigger tag (profile `run_trigger: true`): a rising edge starts a
 *   run of the newest experiment of that chamber with none running, a falling edge stops
 *   the running run that includes the chamber;
 * - every start and stop, whoever made it (API, CLI, MQTT, PLC), is published on
 *   `<prefix>/experiments/<id>/event` (QoS 1).
 */
export class RunControl {
  private readonly conn: MqttConnection;
  private readonly t: Topics;
  private readonly last = new Map<string, boolean>();
  private readonly onRun = (e: RunEvent) => this.announce(e);

  constructor(
    private readonly store: ExperimentStore,
    private readonly o: {
      url: string;
      mqtt: MqttConfig;
      log: Logger;
      triggerTag: (chamber: string) => string | undefined;
      env?: NodeJS.ProcessEnv;
      clientId?: string;
      audit?: (e: Omit<AuditEntry, 'ts'>) => void;
      /** With several collectors, only the one holding the archive role acts on commands and triggers. */
      active?: () => boolean;
    },
  ) {
    this.t = topics(o.mqtt.prefix);
    const env = o.env ?? process.env;
    this.conn = connectMqtt({
      url: o.url,
      clientId: o.clientId ?? `octopus-runs-${process.pid}-${Math.random().toString(16).slice(2, 8)}`,
      ...mqttCredentials(o.mqtt, env),
    });
    this.conn.on('message', (topic, payload, retained) => this.command(topic, payload, retained));
    let first = true;
    this.conn.on('connect', () => {
      if (!first) return;
      first = false;
      this.conn
        .subscribe(this.t.allExperimentCommands, 1)
        .catch((err: Error) => o.log.error(`cannot subscribe to ${this.t.allExperimentCommands}: ${err.message}`));
    });
    store.on('run', this.onRun);
  }

  get connected(): boolean {
    return this.conn.connected;
  }

  /** Watches the run-trigger tags in the data stream. */
  observe(msg: DataMessage): void {
    const tag = this.o.triggerTag(msg.chamber);
    if (!tag) return;
    for (const s of msg.samples) {
      if (s.tag !== tag || s.q === 'bad' || typeof s.value !== 'boolean') continue;
      const before = this.last.get(msg.chamber);
      this.last.set(msg.chamber, s.value);
      // The first value seen only sets the state: a restart must not start or stop anything.
      if (before === undefined || before === s.value) continue;
      this.trigger(msg.chamber, tag, s.value);
    }
  }

  async close(): Promise<void> {
    this.store.off('run', this.onRun);
    await this.conn.end();
  }

  private trigger(chamber: string, tag: string, running: boolean): void {
    if (this.o.active && !this.o.active()) return;
    const by = `plc:${chamber}/${tag}`;
    try {
      if (running) {
        const candidates = this.store.list({ chamber }).filter((e) => !e.runs.some((r) => r.status === 'running'));
        const newest = candidates.sort((a, b) => (b.metadata.created ?? '').localeCompare(a.metadata.created ?? ''))[0];
        if (!newest)
          return void this.o.log.info(`${by} rose, but chamber ${chamber} has no experiment without a running run`);
        this.store.startRun(newest.metadata.id, by);
      } else {
        const run = this.store.openRuns().find((r) => r.chambers.includes(chamber));
        if (run) this.store.stopRun(run.experiment, run.id, by);
      }
    } catch (err) {
      this.o.log.warn(`${by} ${running ? 'start' : 'stop'} refused: ${(err as Error).message}`);
    }
  }

  private command(topic: string, payload: Buffer, retained: boolean): void {
    if (this.o.active && !this.o.active()) return;
    const where = this.t.parseExperimentCommand(topic);
    if (!where) return;
    const { experiment: id, principal } = where;
    const by = `mqtt:${principal}`;
    // An empty payload is the deletion of a retained command (ours, below): nothing to do.
    if (payload.length === 0) return;
    const parsed = parseRequest(ExperimentCommand, payload, retained);
    // Never replayed: delete a retained copy of every command (see Gateway.onSetRequest).
    this.conn
      .publish(topic, Buffer.alloc(0), { qos: 1, retain: true })
      .catch((err: Error) => this.o.log.warn(`cannot clear the retained command on ${topic}: ${err.message}`));
    let outcome: { status: 'accepted'; run: string } | { status: 'refused'; reason: string };
    let action = 'command';
    if (!parsed.ok) outcome = { status: 'refused', reason: parsed.reason };
    else {
      const c = parsed.data;
      action = c.action;
      try {
        if (c.action === 'start') outcome = { status: 'accepted', run: this.store.startRun(id, by, c.note).id };
        else {
          const run = c.run ?? this.store.get(id).runs.find((r) => r.status === 'running')?.id;
          if (!run) throw new ExperimentError(409, `experiment "${id}" has no running run`);
          outcome = { status: 'accepted', run: this.store.stopRun(id, run, by).id };
        }
      } catch (err) {
        outcome = { status: 'refused', reason: (err as Error).message };
      }
    }
    const reqId = parsed.ok ? (parsed.data.id ?? null) : parsed.id;
    if (outcome.status === 'refused') this.o.log.warn(`command ${action} on ${topic} refused: ${outcome.reason}`);
    try {
      this.o.audit?.({
        who: by,
        action: action === 'start' ? 'run_start' : action === 'stop' ? 'run_stop' : 'run_command',
        what: id,
        detail: {
          result: outcome.status === 'accepted' ? 'accepted' : `refused: ${outcome.reason}`,
          ...(outcome.status === 'accepted' ? { run: outcome.run } : {}),
          ...(reqId ? { id: reqId } : {}),
        },
      });
    } catch (err) {
      this.o.log.error(`audit log: cannot record ${action} of ${id} by ${by}: ${(err as Error).message}`);
    }
    const result: RequestResult = {
      v: 1,
      id: reqId,
      request: 'command',
      topic,
      status: outcome.status,
      ...(outcome.status === 'refused' ? { reason: outcome.reason } : { run: outcome.run }),
      by: principal,
      ts: Date.now(),
    };
    this.conn
      .publish(this.t.result(principal), JSON.stringify(result), { qos: 1 })
      .catch((err: Error) => this.o.log.warn(`cannot publish the result for ${principal}: ${err.message}`));
  }

  private announce(e: RunEvent): void {
    const event: ExperimentEvent = {
      event: e.event,
      experiment: e.run.experiment,
      run: e.run.id,
      ts: Date.parse(e.event === 'run_started' ? e.run.start : e.run.stop!),
      chambers: e.run.chambers,
    };
    this.conn
      .publish(this.t.experimentEvent(e.run.experiment), JSON.stringify(event), { qos: 1 })
      .catch((err: Error) => this.o.log.warn(`cannot publish ${e.event}: ${err.message}`));
  }
}
