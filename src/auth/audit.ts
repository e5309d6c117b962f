import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** One line of `<data_dir>/state/audit.jsonl`. */
export interface AuditEntry {
  ts: string;
  /** Who: `api:<user>`, `cli:<os user>`, `mqtt`, `plc:<chamber>/<tag>`… */
  who: string;
  /** download | run_start | run_stop | setpoint | user_add | token_create | token_revoke … */
  action: string;
  /** What: experiment/run/file, or chamber/tag for a setpoint. */
  what: string;
  /** Byte range, variables and time subset of a download; value of a setpoint… */
  detail?: Record<string, unknown>;
  bytes?: number;
}

export const auditFile = (dataDir: string): string => join(dataDir, 'state', 'audit.jsonl');

/**
 * Appends one entry to an audit log (synchronously: an entry is on disk before the
 * caller goes on; lines are short, so concurrent appends from several processes stay
 * whole with O_APPEND).
 */
export function appendAudit(file: string, entry: Omit<AuditEntry, 'ts'> & { ts?: string }): AuditEntry {
  const full: AuditEntry = { ts: entry.ts ?? new Date().toISOString(), ...entry };
  mkdirSync(dirname(file), { recursive: true });
  appendFileSync(file, `${JSON.stringify(full)}\n`, { mode: 0o600 });
  return full;
}

/** The audit log of a data directory: downloads, run start/stop, setpoints, account changes. */
export class AuditLog {
  constructor(readonly file: string) {}

  static forDataDir(dataDir: string): AuditLog {
    return new AuditLog(auditFile(dataDir));
  }

  write(entry: Omit<AuditEntry, 'ts'> & { ts?: string }): AuditEntry {
    return appendAudit(this.file, entry);
  }

  /** The newest `limit` entries, oldest first, optionally only one action or one who. */
  read(o: { limit?: number; action?: string; who?: string } = {}): AuditEntry[] {
    if (!existsSync(this.file)) return [];
    const all = readFileSync(this.file, 'utf8').split('\n').filter(Boolean).flatMap((l) => {
      try {
        return [JSON.parse(l) as AuditEntry];
      } catch {
        return [];
      }
    });
    const hits = all.filter((e) => (!o.action || e.action === o.action) && (!o.who || e.who === o.who));
    return hits.slice(-(o.limit ?? 1000));
  }
}
