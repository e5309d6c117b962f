/**
 * What running a profile's testcases found: every expectation of every case, passed or
 * failed, with expected and actual values; shape problems of the file; tags no case covers.
 */
export interface TestcaseCheck {
  /** Path in the testcase file: ['cases', 0, 'expect', 'air_temperature']. */
  path: Array<string | number>;
  /** `expect.air_temperature`, `values[3] (co2)`, `writes[0] (co2_setpoint)`. */
  label: string;
  ok: boolean;
  /** What was compared: `holding [0x00d7] decodes to 21.5, expected 21.5`. */
  detail: string;
}

export interface TestcaseCase {
  index: number;
  name: string;
  checks: TestcaseCheck[];
}

export interface TestcaseReport {
  /** Problems with the file itself (shape, wrong profile id, untested tags), as path + message. */
  problems: Array<{ path: Array<string | number>; message: string }>;
  cases: TestcaseCase[];
}

/** Failures as one line each: `cases[0] "wrong" expect.air_temperature: …` (the corpus test's format). */
export function reportFailures(report: TestcaseReport): string[] {
  const out: string[] = [];
  for (const p of report.problems.filter((x) => x.path[0] !== 'cases' || x.path.length > 1))
    out.push(`${formatSegments(p.path)}: ${p.message}`);
  for (const c of report.cases) {
    for (const k of c.checks.filter((x) => !x.ok)) out.push(`cases[${c.index}] "${c.name}" ${k.label}: ${k.detail}`);
  }
  for (const p of report.problems.filter((x) => x.path[0] === 'cases' && x.path.length === 1))
    out.push(`cases: ${p.message}`);
  return out;
}

export function formatSegments(path: ReadonlyArray<string | number>): string {
  let out = '';
  for (const part of path) out += typeof part === 'number' ? `[${part}]` : out ? `.${part}` : part;
  return out || '(root)';
}
