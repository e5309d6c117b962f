import type { AuditLog } from '../auth/audit.ts';
import type { Logger } from '../core/log.ts';
import type { Driver } from '../drivers/types.ts';

/** A setpoint request from MQTT or HTTP, with its authenticated sender. */
export interface SetpointCall {
  chamber: string;
  tag: string;
  value: number | boolean | string;
  /** The request's correlation id, if any. */
  id?: string | null;
  /** The authenticated principal as written to the audit log: `mqtt:<user>` or `api:<user>`. */
  who: string;
}

/** A call, or a request that could not be read (`malformed` says why): refused and audited alike. */
export type SetpointAttempt = SetpointCall | (Omit<SetpointCall, 'value'> & { malformed: string });

export type SetpointOutcome =
  { status: 'accepted'; value: number | boolean | string } | { status: 'refused'; reason: string };

/**
 * Setpoint writes, whoever asks: the chamber must be one of this gateway's, the driver
 * validates tag, writability, type and range and writes to the PLC. Every request is
 * audited with the authenticated sender, including refused and malformed ones.
 */
export class Setpoints {
  constructor(
    private readonly drivers: readonly Driver[],
    private readonly audit: Pick<AuditLog, 'write' | 'ensureWritable'>,
    private readonly log: Logger,
  ) {}

  async apply(attempt: SetpointAttempt): Promise<SetpointOutcome> {
    if ('malformed' in attempt) return this.refuse(attempt, attempt.malformed);
    const call = attempt;
    const what = `setpoint ${call.chamber}/${call.tag} = ${JSON.stringify(call.value)} by ${call.who}${call.id ? ` (request ${call.id})` : ''}`;
    const driver = this.drivers.find((d) => d.chamber === call.chamber);
    if (!driver)
      return this.refuse(
        call,
        `no chamber "${call.chamber}" on this gateway (chambers: ${this.drivers.map((d) => d.chamber).join(', ')})`,
      );
    // A setpoint that cannot be audited (audit log unwritable or full) is refused, never written.
    try {
      this.audit.ensureWritable(what);
    } catch (err) {
      return this.refuse(call, (err as Error).message);
    }
    try {
      await driver.write(call.tag, call.value);
    } catch (err) {
      return this.refuse(call, (err as Error).message);
    }
    this.log.info(`${what} written`);
    this.record(call, call.value, 'written');
    return { status: 'accepted', value: call.value };
  }

  /** Records and answers a request refused before it reached a driver (malformed, retained…). */
  refuse(call: Omit<SetpointCall, 'value'> & { value?: unknown }, reason: string): SetpointOutcome {
    this.log.warn(
      `setpoint ${call.chamber}/${call.tag} by ${call.who}${call.id ? ` (request ${call.id})` : ''} refused: ${reason}`,
    );
    this.record(call, call.value, `refused: ${reason}`);
    return { status: 'refused', reason };
  }

  private record(call: Omit<SetpointCall, 'value'>, value: unknown, result: string): void {
    try {
      this.audit.write({
        who: call.who,
        action: 'setpoint',
        what: `${call.chamber}/${call.tag}`,
        detail: { value: value === undefined ? null : value, result, ...(call.id ? { id: call.id } : {}) },
      });
    } catch (err) {
      this.log.error(
        `audit log: cannot record setpoint ${call.chamber}/${call.tag} by ${call.who} (${result}): ${(err as Error).message}`,
      );
    }
  }
}
