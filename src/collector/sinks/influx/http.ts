import { HttpError, InfluxDB, RequestTimedOutError } from '@influxdata/influxdb-client';
import type { InfluxConfig } from '../../../config/instance-schema.ts';

/**
 * The only file that imports @influxdata/influxdb-client: its transport posts our own
 * line protocol (built by line-protocol.ts, ~6× faster than the Point class) to the v2
 * write endpoint, which InfluxDB 2.x, 3.x, 1.8+ (db/rp as bucket) and VictoriaMetrics
 * accept. Retries are ours (the sink's disk buffer), not the library's in-memory ones.
 */
export class InfluxWriteError extends Error {
  constructor(
    message: string,
    /** HTTP status, undefined for network errors and timeouts. */
    readonly status: number | undefined,
    /** Whether trying again later can succeed (network, timeout, 429, 5xx). */
    readonly retriable: boolean,
    /** The server's Retry-After, in ms, when it sent one. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

export interface InfluxHttp {
  readonly target: string;
  write(lines: string): Promise<void>;
}

export function createInfluxHttp(cfg: InfluxConfig, token: string | undefined): InfluxHttp {
  if (!cfg.url) throw new Error('influx.url is not set');
  const bucket = cfg.bucket ?? `${cfg.database}${cfg.retention_policy ? `/${cfg.retention_policy}` : ''}`;
  let path: string;
  let target: string;
  if (cfg.api === 'v1') {
    // InfluxDB 1.x before 1.8: /write with db/rp, credentials `user:password` as u/p.
    const q = new URLSearchParams({
      db: cfg.database!,
      precision: 'ms',
      ...(cfg.retention_policy ? { rp: cfg.retention_policy } : {}),
    });
    const [u, ...p] = (token ?? '').split(':');
    if (token && p.length) {
      q.set('u', u!);
      q.set('p', p.join(':'));
    }
    path = `/write?${q}`;
    target = `${cfg.url.replace(/\/$/, '')} database "${cfg.database}"`;
    token = undefined;
  } else {
    path = `/api/v2/write?${new URLSearchParams({ org: cfg.org, bucket, precision: 'ms' })}`;
    target = `${cfg.url.replace(/\/$/, '')} bucket "${bucket}"`;
  }
  const transport = new InfluxDB({ url: cfg.url, token, timeout: cfg.timeout_ms }).transport;
  return {
    target,
    async write(lines) {
      try {
        await transport.request(path, lines, {
          method: 'POST',
          headers: { 'content-type': 'text/plain; charset=utf-8' },
          gzipThreshold: cfg.gzip ? 1000 : undefined,
        });
      } catch (err) {
        throw classify(err, target);
      }
    },
  };
}

function classify(err: unknown, target: string): InfluxWriteError {
  if (err instanceof HttpError) {
    const status = err.statusCode;
    const retriable = status === 429 || status >= 500 || status === 408;
    const header = err.headers?.['retry-after'];
    const seconds = Number(Array.isArray(header) ? header[0] : header);
    const body = (err.body ?? err.message ?? '').toString().slice(0, 300).trim();
    return new InfluxWriteError(
      `HTTP ${status} from ${target}: ${body || err.statusMessage || 'no body'}`,
      status,
      retriable,
      Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : undefined,
    );
  }
  if (err instanceof RequestTimedOutError) return new InfluxWriteError(`timeout writing to ${target}`, undefined, true);
  const e = err as { code?: string; message?: string };
  return new InfluxWriteError(`cannot reach ${target}: ${e.code ?? e.message ?? String(err)}`, undefined, true);
}
