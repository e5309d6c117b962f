/**
 * A problem found in a configuration or profile file, located by file and path:
 * `config/lab.yaml:14: chambers[2] (c3).profile: unknown profile "foo-x" (known: a, b)`.
 */
export interface ConfigIssue {
  file: string;
  /** 1-based line in `file`, when known. */
  line?: number;
  path: string;
  message: string;
  got?: unknown;
}

export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out ? `.${String(part)}` : String(part);
  }
  return out || '(root)';
}

export function formatGot(got: unknown): string {
  if (got === undefined) return '';
  let text: string;
  try {
    text = typeof got === 'string' ? JSON.stringify(got) : (JSON.stringify(got) ?? String(got));
  } catch {
    text = String(got);
  }
  if (text.length > 80) text = `${text.slice(0, 77)}...`;
  return ` (got ${text})`;
}

export function formatIssue(issue: ConfigIssue): string {
  const where =
    issue.line !== undefined && !issue.path.startsWith('line ') ? `${issue.file}:${issue.line}` : issue.file;
  return `${where}: ${issue.path}: ${issue.message}${formatGot(issue.got)}`;
}

/** Thrown when configuration is invalid; carries every problem found, not only the first. */
export class ConfigError extends Error {
  readonly issues: ConfigIssue[];
  constructor(issues: ConfigIssue[]) {
    super(issues.map(formatIssue).join('\n'));
    this.name = 'ConfigError';
    this.issues = issues;
  }
}

/** Exit code for invalid configuration (documented in the README). */
export const EXIT_CONFIG = 2;
