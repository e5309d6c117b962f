import type { z } from 'zod';
import type { DriverHealthSchema } from '../core/health.ts';
import type { Sample } from '../core/sample.ts';
import type { Logger } from '../core/log.ts';

export type ChamberState = 'online' | 'offline' | 'error';

/** What a driver reports about itself for /api/health and /metrics (the health contract's driver entry). */
export type DriverHealth = z.infer<typeof DriverHealthSchema>;

/** Callbacks a driver uses to hand data to the gateway. */
export interface DriverSink {
  samples(samples: Sample[]): void;
  /** Called on every state change (online/offline/error) with a human reason. */
  status(state: ChamberState, reason?: string): void;
}

/**
 * A running connection to one chamber's PLC. `start()` resolves once the first
 * connection attempt is made (successful or not): drivers reconnect by themselves with
 * capped exponential backoff and never throw for an unreachable device.
 */
export interface Driver {
  readonly chamber: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Write a (validated, writable) tag in engineering units. Throws with a clear reason. */
  write(tag: string, value: number | boolean | string): Promise<void>;
  health(): DriverHealth;
}

export interface DriverDeps {
  sink: DriverSink;
  log: Logger;
  /** Clock, injectable for tests. */
  now?: () => number;
  /** Data directory (OPC UA client PKI under pki/opcua-client); OCTOPUS_DATA_DIR or ./data when absent. */
  dataDir?: string;
}
