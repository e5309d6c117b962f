/** The MQTT topic contract (docs/mqtt.md); `prefix` defaults to `octopus`. */
export interface Topics {
  data(chamber: string): string;
  status(chamber: string): string;
  gatewayStatus(gatewayId: string): string;
  set(chamber: string, tag: string): string;
  experimentCommand(id: string): string;
  allExperimentCommands: string;
  /** The experiment id of a command topic, else undefined. */
  parseExperimentCommand(topic: string): string | undefined;
  experimentEvent(experiment: string): string;
  /** Subscription filters for the collector and the gateway. */
  allData: string;
  allStatus: string;
  allSet: string;
  /** `{chamber, tag}` when `topic` is a set request topic, else undefined. */
  parseSet(topic: string): { chamber: string; tag: string } | undefined;
  /** The chamber of a data topic, else undefined. */
  parseData(topic: string): string | undefined;
}

export function topics(prefix = 'octopus'): Topics {
  const p = prefix;
  const depth = p.split('/').length;
  return {
    data: (c) => `${p}/${c}/data`,
    status: (c) => `${p}/${c}/status`,
    gatewayStatus: (id) => `${p}/gateway/${id}/status`,
    set: (c, t) => `${p}/${c}/set/${t}`,
    experimentEvent: (id) => `${p}/experiments/${id}/event`,
    experimentCommand: (id) => `${p}/experiments/${id}/command`,
    allExperimentCommands: `${p}/experiments/+/command`,
    parseExperimentCommand(topic) {
      const parts = topic.split('/');
      if (parts.length !== depth + 3 || parts.slice(0, depth).join('/') !== p || parts[depth] !== 'experiments' || parts[depth + 2] !== 'command') return undefined;
      return parts[depth + 1];
    },
    allData: `${p}/+/data`,
    allStatus: `${p}/+/status`,
    allSet: `${p}/+/set/+`,
    parseSet(topic) {
      const parts = topic.split('/');
      if (parts.length !== depth + 3 || parts.slice(0, depth).join('/') !== p || parts[depth + 1] !== 'set') return undefined;
      return { chamber: parts[depth]!, tag: parts[depth + 2]! };
    },
    parseData(topic) {
      const parts = topic.split('/');
      if (parts.length !== depth + 2 || parts.slice(0, depth).join('/') !== p || parts[depth + 1] !== 'data') return undefined;
      return parts[depth];
    },
  };
}
