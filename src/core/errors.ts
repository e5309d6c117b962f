/**
 * A problem found in a configuration or profile file, located by file and path:
 * `config/lab.yaml: chambers[2].profile: unknown profile "foo-x" (known: a, b)`.
 */
export interface ConfigIssue {
  file: string;
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
    text = typeof got === 'string' ? JSON.stringify(got) : JSON.stringify(got) ?? String(got);
  } catch {
    text = String(got);
  }
  if (text.length > 80) text = `${text.slice(0, 77)}...`;
  return ` (got ${text})`;
}

export function formatIssue(issue: ConfigIssue): string {
  return `${issue.file}: ${issue.path}: ${issue.message}${formatGot(issue.got)}`;
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
