import type { HealthReport } from '../core/health.ts';
import { withFaults } from '../api/health-faults.ts';
import type { DriverHealth } from '../drivers/types.ts';

export interface BrokerState {
  url: string;
  embedded: boolean;
  connected: boolean;
  reconnects: number;
}

export interface SpoolState {
  messages: number;
  bytes: number;
  samples: number;
  droppedSamples: number;
  publishedMessages: number;
  publishedSamples: number;
  /** Messages held in memory because the spool folder cannot be written. */
  inMemory?: number;
  /** Damaged records skipped at start (also in droppedSamples). */
  corruptRecords?: number;
  /** Entries of the spool folder that are not spool files. */
  foreign?: string[];
}

/**
 * The gateway's health: ok when the broker is connected and every driver is online;
 * degraded otherwise, with one human-readable line per problem (failing write targets and
 * unexpected errors included, src/api/health-faults.ts). Samples dropped at the
 * spool bound are a running total (in the body and /metrics), not a present state.
 */
export function composeHealth(input: {
  gateway: string;
  version: string;
  startedAt: number;
  drivers: DriverHealth[];
  broker: BrokerState;
  spool: SpoolState;
  now?: number;
}): HealthReport {
  const now = input.now ?? Date.now();
  const problems: string[] = [];
  if (!input.broker.connected)
    problems.push(`MQTT broker ${input.broker.url} not connected; ${input.spool.messages} messages spooled on disk`);
  if (input.spool.foreign?.length)
    problems.push(`spool folder holds entries that are not spool files (ignored): ${input.spool.foreign.join(', ')}`);
  for (const d of input.drivers) {
    if (d.state !== 'online')
      problems.push(`chamber ${d.chamber} (${d.driver} ${d.endpoint}) ${d.state}${d.reason ? `: ${d.reason}` : ''}`);
    else if (d.missingTags?.length)
      problems.push(
        `chamber ${d.chamber} (${d.driver} ${d.endpoint}): ${d.missingTags.length} tags missing on the server: ${d.missingTags.join(', ')}`,
      );
  }
  return withFaults({
    status: problems.length ? 'degraded' : 'ok',
    gateway: input.gateway,
    version: input.version,
    uptime_s: Math.round((now - input.startedAt) / 1000),
    drivers: input.drivers,
    broker: input.broker,
    spool: {
      messages: input.spool.messages,
      bytes: input.spool.bytes,
      samples: input.spool.samples,
      dropped_samples: input.spool.droppedSamples,
      ...(input.spool.inMemory ? { in_memory: input.spool.inMemory } : {}),
      ...(input.spool.corruptRecords ? { corrupt_records: input.spool.corruptRecords } : {}),
      ...(input.spool.foreign?.length ? { foreign: input.spool.foreign } : {}),
    },
    published: { messages: input.spool.publishedMessages, samples: input.spool.publishedSamples },
    sinks: {},
    problems,
  });
}
