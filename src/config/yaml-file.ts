import { readFileSync } from 'node:fs';
import { isMap, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import type { ConfigIssue } from '../core/errors.ts';

/** Line (1-based) of the value at a path in the file, or of its nearest ancestor that exists. */
export type Locate = (path: ReadonlyArray<PropertyKey>) => number | undefined;

export type YamlResult = { ok: true; data: unknown; locate: Locate } | { ok: false; issues: ConfigIssue[] };

/** Reads and parses one YAML file; syntax errors become issues with line:column. */
export function readYamlFile(file: string, label = file): YamlResult {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return {
      ok: false,
      issues: [
        {
          file: label,
          path: '(file)',
          message: code === 'ENOENT' ? 'file not found' : `cannot read file: ${String(err)}`,
        },
      ],
    };
  }
  return parseYamlText(text, label);
}

export function parseYamlText(text: string, label: string): YamlResult {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true });
  if (doc.errors.length) {
    return {
      ok: false,
      issues: doc.errors.map((e) => {
        const at = lineCounter.linePos(e.pos[0]);
        return {
          file: label,
          path: `line ${at.line}:${at.col}`,
          message: `YAML syntax: ${e.message.split('\n')[0]}`,
          line: at.line,
        };
      }),
    };
  }
  return { ok: true, data: doc.toJS({ maxAliasCount: 100 }) ?? {}, locate: locator(doc, lineCounter) };
}

function locator(doc: Document, lines: LineCounter): Locate {
  return (path) => {
    let node: unknown = doc.contents;
    let offset = (doc.contents as Node | null)?.range?.[0];
    for (const key of path) {
      if (isMap(node)) {
        const pair = node.items.find(
          (p) =>
            (p.key as { value?: unknown } | null)?.value === key ||
            String((p.key as { value?: unknown } | null)?.value) === String(key),
        );
        if (!pair) break;
        offset = (pair.key as Node | null)?.range?.[0] ?? offset;
        node = pair.value;
      } else if (isSeq(node) && typeof key === 'number') {
        const item = node.items[key] as Node | undefined;
        if (!item) break;
        offset = item.range?.[0] ?? offset;
        node = item;
      } else break;
    }
    return offset === undefined ? undefined : lines.linePos(offset).line;
  };
}

/** `tags[2].unit` → ['tags', 2, 'unit'] (the inverse of formatPath). */
export function parsePath(path: string): Array<string | number> {
  if (path === '(root)' || path === '(file)' || path.startsWith('line ')) return [];
  const out: Array<string | number> = [];
  for (const m of path.matchAll(/\[(\d+)\]|\.?([^.[\]]+)/g)) out.push(m[1] !== undefined ? Number(m[1]) : m[2]!);
  return out;
}

/**
 * Adds the line number to each issue of `file`, and names list entries in its path by
 * their `name`, `id` or `tag`: `tags[2].unit` → `tags[2] (co2).unit`, so a message says which
 * tag without counting.
 */
export function annotateIssues(issues: ConfigIssue[], file: string, data: unknown, locate: Locate): ConfigIssue[] {
  return issues.map((issue) => {
    if (issue.file !== file || issue.line !== undefined) return issue;
    const segments = parsePath(issue.path);
    if (!segments.length) return issue;
    let cur: unknown = data;
    let label = '';
    for (const seg of segments) {
      if (typeof seg === 'number') {
        label += `[${seg}]`;
        cur = Array.isArray(cur) ? cur[seg] : undefined;
        const entry = cur as { name?: unknown; id?: unknown; tag?: unknown } | undefined;
        const name =
          entry && typeof entry === 'object'
            ? [entry.name, entry.id, entry.tag].find((x): x is string => typeof x === 'string')
            : undefined;
        if (name !== undefined) label += ` (${name})`;
      } else {
        label += label ? `.${seg}` : seg;
        cur = cur && typeof cur === 'object' ? (cur as Record<string, unknown>)[seg] : undefined;
      }
    }
    return { ...issue, path: label, line: locate(segments) };
  });
}
