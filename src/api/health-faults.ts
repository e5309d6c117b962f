import { describeWriteFault, writeFaults, type WriteFaults } from '../core/write-faults.ts';
import { unexpectedErrors, type UnexpectedErrors } from '../core/unexpected.ts';
import type { HealthReport } from '../core/health.ts';

/**
 * Adds the failing write targets (src/core/write-faults.ts) and unexpected errors
 * (src/core/unexpected.ts) to a health report: each is listed and named in `problems`,
 * and makes the status `degraded`.
 */
export function withFaults(
  report: HealthReport,
  faults: WriteFaults = writeFaults,
  errors: UnexpectedErrors = unexpectedErrors,
): HealthReport {
  const list = faults.list();
  const problems = [...report.problems, ...list.map(describeWriteFault)];
  if (errors.recent())
    problems.push(
      `${errors.count} unexpected error${errors.count === 1 ? '' : 's'} since start, the last at ${errors.last!.ts}: ${errors.last!.message} (see the log)`,
    );
  return {
    ...report,
    status: problems.length ? 'degraded' : report.status,
    write_faults: list,
    unexpected_errors: { count: errors.count, ...(errors.last ? { last: errors.last } : {}) },
    problems,
  };
}
