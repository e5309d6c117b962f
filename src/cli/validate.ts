import { ConfigError, EXIT_CONFIG, formatIssue, type ConfigIssue } from '../core/errors.ts';
import { loadConfig } from '../config/loader.ts';
import { displayPath, loadProfileFile } from '../config/profiles.ts';
import { readYamlFile } from '../config/yaml-file.ts';

/** Validates configuration and profile files; prints every problem; exit 2 if any. */
export function validateFiles(files: string[], out: (line: string) => void, err: (line: string) => void): number {
  if (files.length === 0) {
    err('usage: octopus validate <file.yaml>…');
    return EXIT_CONFIG;
  }
  const issues: ConfigIssue[] = [];
  for (const file of files) {
    const found = validateOne(file);
    if (found.issues.length) issues.push(...found.issues);
    else out(`ok  ${displayPath(file)}: ${found.summary}`);
  }
  for (const issue of issues) err(formatIssue(issue));
  if (issues.length) err(`${issues.length} problem${issues.length > 1 ? 's' : ''} found`);
  return issues.length ? EXIT_CONFIG : 0;
}

function validateOne(file: string): { issues: ConfigIssue[]; summary?: string } {
  const read = readYamlFile(file, displayPath(file));
  if (!read.ok) return { issues: read.issues };
  const isProfile = typeof read.data === 'object' && read.data !== null && 'kind' in read.data;
  if (isProfile) {
    const r = loadProfileFile(file);
    return { issues: r.issues, summary: `${r.profile?.profile.kind} profile ${r.profile?.id}, ${r.profile?.profile.tags.length} tags` };
  }
  try {
    const c = loadConfig(file, process.env);
    return { issues: [], summary: `${c.chambers.length} chamber${c.chambers.length === 1 ? '' : 's'} (${c.chambers.map((x) => x.chamber.id).join(', ')})` };
  } catch (e) {
    if (e instanceof ConfigError) return { issues: e.issues };
    throw e;
  }
}
