import { isAbsolute, resolve } from 'node:path';

/** One file-system access seen by strace: the path (absolute) and whether the call succeeded. */
export interface FileAccess {
  pid: number;
  call: string;
  path: string;
  ok: boolean;
}

/** The syscalls that name a path; traced with `strace -f -e trace=<these>`. */
export const PATH_SYSCALLS = [
  'open',
  'openat',
  'stat',
  'lstat',
  'newfstatat',
  'statx',
  'access',
  'faccessat',
  'faccessat2',
  'readlink',
  'readlinkat',
  'execve',
];

const CALL = /^(\d+)\s+(\w+)\((.*)$/;
const RESUMED = /^(\d+)\s+<\.\.\. (\w+) resumed>(.*)$/;
/** The first string argument of a call: the path for every syscall in PATH_SYSCALLS. */
const FIRST_STRING = /"((?:[^"\\]|\\.)*)"/;
const RESULT = /\)\s+=\s+(-?\d+|\?)/;

/**
 * The path accesses in an `strace -f -o` log. Calls interrupted by another process's line
 * (`<unfinished ...>` … `<... openat resumed>`) are joined. Relative paths are resolved
 * against `cwd` (the traced processes never chdir; `chdir` is not expected in the log).
 * Calls on a file descriptor with an empty path (fstat of an open file) are skipped.
 */
export function parseStrace(log: string, cwd: string): FileAccess[] {
  const out: FileAccess[] = [];
  const pending = new Map<number, { call: string; path: string | undefined }>();
  for (const line of log.split('\n')) {
    const resumed = RESUMED.exec(line);
    if (resumed) {
      const pid = Number(resumed[1]);
      const p = pending.get(pid);
      pending.delete(pid);
      if (p?.path) out.push({ pid, call: p.call, path: p.path, ok: succeeded(resumed[3]!) });
      continue;
    }
    const m = CALL.exec(line);
    if (!m) continue; // exits, signals
    const pid = Number(m[1]);
    const [call, rest] = [m[2]!, m[3]!];
    if (call === 'chdir') throw new Error(`a traced process changed directory: ${line}`);
    const str = FIRST_STRING.exec(rest)?.[1];
    const path = str ? resolvePath(unescape(str), cwd) : undefined;
    if (rest.includes('<unfinished ...>')) {
      pending.set(pid, { call, path });
      continue;
    }
    if (path) out.push({ pid, call, path, ok: succeeded(rest) });
  }
  return out;
}

function succeeded(tail: string): boolean {
  const r = RESULT.exec(tail)?.[1];
  return r !== undefined && r !== '?' && Number(r) >= 0;
}

function resolvePath(p: string, cwd: string): string {
  return isAbsolute(p) ? resolve(p) : resolve(cwd, p);
}

/** strace escapes non-printable bytes and quotes in strings (`\"`, `\\`, `\x..`, octal). */
function unescape(s: string): string {
  return s.replace(/\\(x[0-9a-fA-F]{2}|[0-7]{1,3}|.)/g, (_m, e: string) => {
    if (e[0] === 'x') return String.fromCharCode(parseInt(e.slice(1), 16));
    if (/^[0-7]+$/.test(e)) return String.fromCharCode(parseInt(e, 8));
    return ({ n: '\n', t: '\t', r: '\r' } as Record<string, string>)[e] ?? e;
  });
}
