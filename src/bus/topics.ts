/** The MQTT topic contract (docs/mqtt.md); `prefix` defaults to `octopus`. */
export interface Topics {
  data(chamber: string): string;
  status(chamber: string): string;
  gatewayStatus(gatewayId: string): string;
  /** A setpoint request of `principal` (the sender; the broker ACL only lets it write its own name). */
  set(chamber: string, tag: string, principal: string): string;
  /** The set requests of one chamber (what its gateway subscribes to). */
  setFilter(chamber: string): string;
  /** A start/stop command for an experiment, sent by `principal`. */
  experimentCommand(id: string, principal: string): string;
  allExperimentCommands: string;
  /** `{experiment, principal}` of a command topic, else undefined. */
  parseExperimentCommand(topic: string): { experiment: string; principal: string } | undefined;
  experimentEvent(experiment: string): string;
  /** Answers to the requests of `principal` (accepted / refused, correlated by the request id). */
  result(principal: string): string;
  /** Retained alarm state of a chamber (docs/alarms.md). */
  alarm(chamber: string): string;
  allAlarms: string;
  /** Alarm lifecycle events (raised, acknowledged, cleared). */
  alarmEvent: string;
  /** An acknowledgement sent by `principal` over MQTT. */
  alarmAck(principal: string): string;
  /** Subscription filters for the collector and the gateway. */
  allData: string;
  allStatus: string;
  /** `{chamber, tag, principal}` when `topic` is a set request topic, else undefined. */
  parseSet(topic: string): { chamber: string; tag: string; principal: string } | undefined;
  /** The chamber of a data topic, else undefined. */
  parseData(topic: string): string | undefined;
  /** The chamber of a chamber status topic, else undefined. */
  parseStatus(topic: string): string | undefined;
}

export function topics(prefix = 'octopus'): Topics {
  const p = prefix;
  const depth = p.split('/').length;
  const under = (topic: string): string[] | undefined => {
    const parts = topic.split('/');
    return parts.slice(0, depth).join('/') === p ? parts.slice(depth) : undefined;
  };
  return {
    data: (c) => `${p}/${c}/data`,
    status: (c) => `${p}/${c}/status`,
    gatewayStatus: (id) => `${p}/gateway/${id}/status`,
    set: (c, t, who) => `${p}/${c}/set/${t}/${who}`,
    setFilter: (c) => `${p}/${c}/set/+/+`,
    experimentEvent: (id) => `${p}/experiments/${id}/event`,
    experimentCommand: (id, who) => `${p}/experiments/${id}/command/${who}`,
    allExperimentCommands: `${p}/experiments/+/command/+`,
    result: (who) => `${p}/results/${who}`,
    alarm: (c) => `${p}/${c}/alarm`,
    allAlarms: `${p}/+/alarm`,
    alarmEvent: `${p}/alarms/event`,
    alarmAck: (who) => `${p}/alarms/ack/${who}`,
    parseExperimentCommand(topic) {
      const l = under(topic);
      if (!l || l.length !== 4 || l[0] !== 'experiments' || l[2] !== 'command' || !l[1] || !l[3]) return undefined;
      return { experiment: l[1], principal: l[3] };
    },
    allData: `${p}/+/data`,
    allStatus: `${p}/+/status`,
    parseSet(topic) {
      const l = under(topic);
      if (!l || l.length !== 4 || l[1] !== 'set' || !l[0] || !l[2] || !l[3]) return undefined;
      return { chamber: l[0], tag: l[2], principal: l[3] };
    },
    parseData(topic) {
      const l = under(topic);
      return l && l.length === 2 && l[1] === 'data' ? l[0] : undefined;
    },
    parseStatus(topic) {
      const l = under(topic);
      return l && l.length === 2 && l[1] === 'status' ? l[0] : undefined;
    },
  };
}
