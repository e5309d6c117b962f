import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument } from 'yaml';
import type { ConfigIssue } from '../core/errors.ts';

export type YamlResult = { ok: true; data: unknown } | { ok: false; issues: ConfigIssue[] };

/** Reads and parses one YAML file; syntax errors become issues with line:column. */
export function readYamlFile(file: string, label = file): YamlResult {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { ok: false, issues: [{ file: label, path: '(file)', message: code === 'ENOENT' ? 'file not found' : `cannot read file: ${String(err)}` }] };
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
        return { file: label, path: `line ${at.line}:${at.col}`, message: `YAML syntax: ${e.message.split('\n')[0]}` };
      }),
    };
  }
  return { ok: true, data: doc.toJS({ maxAliasCount: 100 }) ?? {} };
}
