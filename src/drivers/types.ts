import type { Sample } from '../core/sample.ts';
import type { Logger } from '../core/log.ts';

export type ChamberState = 'online' | 'offline' | 'error';

/** What a driver reports about itself for /api/health and /metrics. */
export interface DriverHealth {
  chamber: string;
  driver: 'opcua' | 'modbus';
  endpoint: string;
  state: ChamberState;
  reason?: string;
  /** Source time of the newest sample emitted, ms. */
  lastSampleTs?: number;
  samples: number;
  badSamples: number;
  reconnects: number;
  /** Modbus: requests issued in the last poll cycle; OPC UA: monitored items. */
  requestsPerCycle?: number;
  monitoredItems?: number;
  /** OPC UA: tags not (yet) found on the server, looked up again periodically. */
  missingTags?: string[];
}

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
