import { z } from 'zod';
import { profileId, type Profile } from '../config/profile-schema.ts';
import { parsePath } from '../config/yaml-file.ts';
import { zodToIssues } from '../config/zod-issues.ts';
import type { TestcaseCheck, TestcaseReport } from './testcase-report.ts';

/**
 * The envelope every driver kind's testcase file shares: the profile it belongs to and
 * named cases whose body (`shape`) the kind defines.
 */
export function testcaseDocument<S extends z.ZodRawShape>(shape: S) {
  return z
    .object({
      /** `<vendor>-<model>` of the profile these cases belong to. */
      profile: z.string(),
      cases: z.array(z.object({ name: z.string().min(1), ...shape }).strict()).min(1),
    })
    .strict();
}

/** Expected vs decoded: numbers within a relative 1e-9, anything else identical. */
export function sameValue(expected: unknown, got: unknown): boolean {
  if (typeof expected === 'number' && typeof got === 'number')
    return Math.abs(expected - got) <= 1e-9 * Math.max(1, Math.abs(expected));
  return expected === got;
}

/** Records one expectation of the current case: where in the file, its label, the verdict and what was compared. */
export type CheckFn = (path: Array<string | number>, label: string, ok: boolean, detail: string) => void;

/**
 * Parses a testcase document against its kind's schema and runs each case through
 * `runCase`, which checks expectations and marks the tags it covers. Reports a wrong
 * profile id and every tag of the profile that no case covers (`coverage` names what each
 * tag needs: "expected value", "value case").
 */
export function runTestcaseDocument<Doc extends { profile: string; cases: Array<{ name: string }> }>(
  schema: z.ZodType<Doc>,
  profile: Pick<Profile, 'vendor' | 'model'> & { tags: ReadonlyArray<{ name: string }> },
  doc: unknown,
  coverage: string,
  runCase: (c: Doc['cases'][number], check: CheckFn, covered: Set<string>) => void,
): TestcaseReport {
  const parsed = schema.safeParse(doc);
  if (!parsed.success)
    return {
      problems: zodToIssues('', parsed.error, doc, [], schema).map((i) => ({
        path: parsePath(i.path),
        message: i.message,
      })),
      cases: [],
    };
  const report: TestcaseReport = { problems: [], cases: [] };
  const id = profileId(profile);
  if (parsed.data.profile !== id)
    report.problems.push({ path: ['profile'], message: `testcases are for "${parsed.data.profile}", not "${id}"` });
  const covered = new Set<string>();
  parsed.data.cases.forEach((c, ci) => {
    const checks: TestcaseCheck[] = [];
    runCase(c, (path, label, ok, detail) => checks.push({ path: ['cases', ci, ...path], label, ok, detail }), covered);
    report.cases.push({ index: ci, name: c.name, checks });
  });
  const untested = profile.tags.filter((t) => !covered.has(t.name)).map((t) => t.name);
  if (untested.length)
    report.problems.push({
      path: ['cases'],
      message: `no ${coverage} for tag${untested.length > 1 ? 's' : ''} ${untested.join(', ')} (every tag needs at least one)`,
    });
  return report;
}
