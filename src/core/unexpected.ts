import type { Logger } from './log.ts';
import { errnoOf } from './write-faults.ts';

/**
 * Errors nobody handled (an unhandled promise rejection, an exception thrown from a
 * callback): counted and kept for the health report instead of killing the process
 * mid-write. Health is degraded for `DEGRADED_FOR_MS` after the last one.
 */
export interface UnexpectedError {
  ts: string;
  kind: 'unhandledRejection' | 'uncaughtException';
  message: string;
  errno?: string;
}

export const DEGRADED_FOR_MS = 10 * 60_000;

export class UnexpectedErrors {
  count = 0;
  last?: UnexpectedError;

  record(kind: UnexpectedError['kind'], err: unknown): UnexpectedError {
    const message = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    const code = errnoOf(err);
    this.count++;
    this.last = {
      ts: new Date().toISOString(),
      kind,
      message: message.split('\n')[0]!.slice(0, 300),
      ...(code !== 'EUNKNOWN' ? { errno: code } : {}),
    };
    return this.last;
  }

  /** True while the last one is recent enough to keep health degraded. */
  recent(now = Date.now()): boolean {
    return this.last !== undefined && now - Date.parse(this.last.ts) < DEGRADED_FOR_MS;
  }
}

export const unexpectedErrors = new UnexpectedErrors();

/** A system call that failed (EROFS, ENOSPC, EIO…): the operation did not happen, the program's state is intact. */
export function isSystemError(err: unknown): boolean {
  const e = err as { code?: unknown; syscall?: unknown } | undefined;
  return typeof e?.code === 'string' && /^E[A-Z]+$/.test(e.code) && typeof e.syscall === 'string';
}

/**
 * Process-wide handlers for the long-running commands. An unhandled rejection is logged
 * and counted, and the process goes on (the code that dropped the promise has moved on;
 * nothing was left half-done by the rejection itself). An uncaught exception from a
 * failed system call (a write to a full or read-only disk) is logged and counted too.
 * Any other uncaught exception means a bug left some state unknown: it is logged, and
 * `onFatal` stops the process in order (spool flushed, files closed) rather than dying
 * in the middle of a write; so does a storm of more than `maxPerMinute` errors.
 */
export function installProcessHandlers(log: Logger, onFatal: (reason: string) => void, maxPerMinute = 100): () => void {
  const times: number[] = [];
  const storm = () => {
    const now = Date.now();
    times.push(now);
    while (times.length && now - times[0]! > 60_000) times.shift();
    return times.length > maxPerMinute;
  };
  const onRejection = (reason: unknown) => {
    const e = unexpectedErrors.record('unhandledRejection', reason);
    log.error(
      `unhandled promise rejection (${unexpectedErrors.count} so far): ${e.message}; carrying on`,
      reason instanceof Error && reason.stack
        ? {
            stack: reason.stack
              .split('\n')
              .slice(1, 6)
              .map((l) => l.trim()),
          }
        : undefined,
    );
    if (storm()) onFatal(`more than ${maxPerMinute} unexpected errors in a minute (last: ${e.message})`);
  };
  const onException = (err: Error) => {
    const e = unexpectedErrors.record('uncaughtException', err);
    const stack = err?.stack
      ? {
          stack: err.stack
            .split('\n')
            .slice(1, 6)
            .map((l) => l.trim()),
        }
      : undefined;
    if (isSystemError(err) && !storm()) {
      log.error(
        `uncaught ${e.errno} from ${(err as { syscall?: string }).syscall} (${unexpectedErrors.count} unexpected errors so far): ${e.message}; carrying on`,
        stack,
      );
      return;
    }
    log.error(`uncaught exception: ${e.message}; stopping in order`, stack);
    onFatal(`uncaught exception: ${e.message}`);
  };
  process.on('unhandledRejection', onRejection);
  process.on('uncaughtException', onException);
  return () => {
    process.off('unhandledRejection', onRejection);
    process.off('uncaughtException', onException);
  };
}
