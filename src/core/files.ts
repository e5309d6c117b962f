import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Every regular file under `dir` (recursive, sorted, absolute paths); none when `dir` does not exist.
 * `enter(name, depth)` says whether a sub-folder is walked (depth 1: directly under `dir`); default all.
 */
export function filesUnder(dir: string, enter: (name: string, depth: number) => boolean = () => true): string[] {
  const out: string[] = [];
  const walk = (d: string, depth: number) => {
    let entries: string[];
    try {
      entries = readdirSync(d).sort();
    } catch {
      return;
    }
    for (const name of entries) {
      const p = join(d, name);
      const st = statSync(p);
      if (st.isDirectory()) {
        if (enter(name, depth + 1)) walk(p, depth + 1);
      } else if (st.isFile()) out.push(p);
    }
  };
  walk(dir, 0);
  return out;
}
