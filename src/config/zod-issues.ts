import type { z } from 'zod';
import { formatPath, type ConfigIssue } from '../core/errors.ts';
import { suggest } from '../core/suggest.ts';

/** The value found at `path` in `input`, for "(got …)" in messages. */
export function valueAt(input: unknown, path: ReadonlyArray<PropertyKey>): unknown {
  let cur: unknown = input;
  for (const key of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[key];
  }
  return cur;
}

/** zod v4's definition record (internal but stable across v4: `_zod.def`). */
interface Def {
  type: string;
  shape?: Record<string, z.ZodType>;
  innerType?: z.ZodType;
  in?: z.ZodType;
  element?: z.ZodType;
  valueType?: z.ZodType;
  options?: z.ZodType[];
  left?: z.ZodType;
  right?: z.ZodType;
}
const defOf = (s: z.ZodType): Def => (s as unknown as { _zod: { def: Def } })._zod.def;

/** The object schemas that may describe the value at `path` (unions give several), to list the fields they know. */
function objectsAt(
  schema: z.ZodType,
  path: ReadonlyArray<PropertyKey>,
  input: unknown,
): Array<Record<string, z.ZodType>> {
  const def = defOf(schema);
  switch (def.type) {
    case 'optional':
    case 'nullable':
    case 'default':
    case 'prefault':
    case 'readonly':
    case 'catch':
      return objectsAt(def.innerType!, path, input);
    case 'pipe':
      return objectsAt(def.in!, path, input);
    case 'intersection':
      return [...objectsAt(def.left!, path, input), ...objectsAt(def.right!, path, input)];
    case 'union': {
      const all = def.options!.flatMap((o) => objectsAt(o, path, input));
      // A discriminated union: keep the options whose literal matches the input's discriminator.
      const disc = (def as { discriminator?: string }).discriminator;
      const value =
        disc !== undefined && input && typeof input === 'object' ? (input as Record<string, unknown>)[disc] : undefined;
      if (!path.length && disc !== undefined && value !== undefined) {
        const match = def.options!.filter((o) => {
          const lit = objectsAt(o, [], input)[0]?.[disc];
          const litDef = lit ? (defOf(lit) as { values?: unknown[] }) : undefined;
          return litDef?.values?.includes(value);
        });
        if (match.length) return match.flatMap((o) => objectsAt(o, path, input));
      }
      return all;
    }
    case 'object': {
      if (!path.length) return [def.shape!];
      const [key, ...rest] = path;
      const field = def.shape![String(key)];
      return field ? objectsAt(field, rest, valueAt(input, [key!])) : [];
    }
    case 'array':
      return path.length ? objectsAt(def.element!, path.slice(1), valueAt(input, [path[0]!])) : [];
    case 'record':
      return path.length ? objectsAt(def.valueType!, path.slice(1), valueAt(input, [path[0]!])) : [];
    default:
      return [];
  }
}

/** Fields the schema knows at `path` (empty when it cannot tell). */
export function knownFieldsAt(schema: z.ZodType, path: ReadonlyArray<PropertyKey>, input: unknown): string[] {
  return [...new Set(objectsAt(schema, path, valueAt(input, path)).flatMap((shape) => Object.keys(shape)))];
}

/**
 * Every zod issue as a located ConfigIssue carrying the offending value. Unknown fields
 * are reported one by one at their own path with the closest known field:
 * `tags[3].wrtable: unknown field (did you mean "writable"?)`.
 */
export function zodToIssues(
  file: string,
  error: z.ZodError,
  input: unknown,
  prefix: ReadonlyArray<PropertyKey> = [],
  schema?: z.ZodType,
): ConfigIssue[] {
  return error.issues.flatMap((issue): ConfigIssue[] => {
    const path = [...prefix, ...issue.path];
    if (issue.code === 'unrecognized_keys') {
      const known = schema ? knownFieldsAt(schema, issue.path, input) : [];
      return issue.keys.map((key) => {
        const close = suggest(key, known, 1);
        const hint = close.length
          ? ` (did you mean "${close[0]}"?)`
          : known.length
            ? ` (known: ${known.join(', ')})`
            : '';
        return { file, path: formatPath([...path, key]), message: `unknown field${hint}` };
      });
    }
    const got = valueAt(input, issue.path);
    const message =
      (issue.code === 'invalid_type' || issue.code === 'invalid_value') && got === undefined
        ? 'required field is missing'
        : issue.message;
    return [{ file, path: formatPath(path), message, got }];
  });
}
