import type { z } from 'zod';
import { formatPath, type ConfigIssue } from '../core/errors.ts';

/** The value found at `path` in `input`, for "(got …)" in messages. */
export function valueAt(input: unknown, path: ReadonlyArray<PropertyKey>): unknown {
  let cur: unknown = input;
  for (const key of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[key];
  }
  return cur;
}

/** Every zod issue as a located ConfigIssue carrying the offending value. */
export function zodToIssues(file: string, error: z.ZodError, input: unknown, prefix: ReadonlyArray<PropertyKey> = []): ConfigIssue[] {
  return error.issues.map((issue) => {
    const path = [...prefix, ...issue.path];
    if (issue.code === 'unrecognized_keys') {
      const known = 'keys' in issue ? issue.keys : [];
      return { file, path: formatPath(path), message: `unknown field${known.length > 1 ? 's' : ''} ${known.map((k) => `"${k}"`).join(', ')}` };
    }
    const got = valueAt(input, issue.path);
    const message = issue.code === 'invalid_type' && got === undefined ? 'required field is missing' : issue.message;
    return { file, path: formatPath(path), message, got };
  });
}
