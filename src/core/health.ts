import { z } from 'zod';

/** Body of GET /api/health (200 when ok, 503 with the same body when degraded). */
export const DriverHealthSchema = z.object({
  chamber: z.string(),
  driver: z.enum(['opcua', 'modbus']),
  endpoint: z.string(),
  state: z.enum(['online', 'offline', 'error']),
  reason: z.string().optional(),
  /** Source time of the newest sample emitted, ms. */
  lastSampleTs: z.number().optional(),
  samples: z.number(),
  badSamples: z.number(),
  reconnects: z.number(),
  /** Modbus: requests issued in the last poll cycle. */
  requestsPerCycle: z.number().optional(),
  /** OPC UA: monitored items. */
  monitoredItems: z.number().optional(),
  /** OPC UA: tags not found on the server (yet); looked up again every resolve_interval_ms. */
  missingTags: z.array(z.string()).optional(),
});

export const WriteFaultSchema = z.object({
  target: z.string(),
  path: z.string(),
  errno: z.string(),
  message: z.string(),
  effect: z.string(),
  since: z.string(),
  last: z.string(),
  failures: z.number(),
});

export const HealthReport = z.object({
  status: z.enum(['ok', 'degraded']),
  gateway: z.string(),
  version: z.string(),
  uptime_s: z.number(),
  drivers: z.array(DriverHealthSchema),
  broker: z.object({
    url: z.string(),
    embedded: z.boolean(),
    connected: z.boolean(),
    reconnects: z.number(),
  }),
  spool: z.object({
    messages: z.number(),
    bytes: z.number(),
    samples: z.number(),
    dropped_samples: z.number(),
    /** Messages held in memory because the spool folder cannot be written (see write_faults). */
    in_memory: z.number().optional(),
    /** Damaged records skipped when the spool was opened (included in dropped_samples). */
    corrupt_records: z.number().optional(),
    /** Entries of the spool folder that are not spool files: ignored, named here. */
    foreign: z.array(z.string()).optional(),
  }),
  published: z.object({ messages: z.number(), samples: z.number() }),
  /** Other sinks (InfluxDB, NetCDF archiver) report here when configured. */
  sinks: z.record(z.string(), z.object({ state: z.string(), buffered: z.number().optional() }).passthrough()),
  /** Write targets that are failing now (audit log, spool, working folder, NAS…): path and errno; see src/core/write-faults.ts. */
  write_faults: z.array(WriteFaultSchema).optional(),
  /** Unhandled rejections and uncaught exceptions since start (logged; health degraded for 10 min after the last). */
  unexpected_errors: z
    .object({
      count: z.number(),
      last: z
        .object({
          ts: z.string(),
          kind: z.enum(['unhandledRejection', 'uncaughtException']),
          message: z.string(),
          errno: z.string().optional(),
        })
        .optional(),
    })
    .optional(),
  /** Human-readable reasons when status is degraded. */
  problems: z.array(z.string()),
});
export type HealthReport = z.infer<typeof HealthReport>;
