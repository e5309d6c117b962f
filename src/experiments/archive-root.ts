import {
  accessSync,
  constants,
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { filesUnder } from '../core/files.ts';

/**
 * Where experiment folders live: the NAS root when it is mounted and writable, else a
 * local fallback with the same layout. `migrate()` moves what was written locally to the
 * NAS once it is back (file by file, verified by size, local copy removed after), so
 * nothing is lost while the NAS is away.
 */
export class ArchiveRoot {
  constructor(
    readonly nas: string,
    readonly local: string,
  ) {}

  /** The NAS is usable: the folder exists and a probe file can be written. */
  available(): boolean {
    try {
      accessSync(this.nas, constants.W_OK);
      const probe = join(this.nas, `.octopus-probe-${process.pid}`);
      writeFileSync(probe, '');
      unlinkSync(probe);
      return true;
    } catch {
      return false;
    }
  }

  /** Folder of an experiment: where it already is, else where new data should go. */
  dirOf(id: string): string {
    const onNas = join(this.nas, id);
    if (existsSync(join(onNas, 'metadata.yaml'))) return onNas;
    const local = join(this.local, id);
    if (existsSync(join(local, 'metadata.yaml'))) return local;
    return this.available() ? onNas : local;
  }

  /** Experiment ids in either place. */
  ids(): string[] {
    const list = (d: string) => {
      try {
        return readdirSync(d).filter((n) => !n.startsWith('.') && existsSync(join(d, n, 'metadata.yaml')));
      } catch {
        return [];
      }
    };
    return [...new Set([...list(this.nas), ...list(this.local)])].sort();
  }

  /** Experiments with files in the local fallback. */
  localIds(): string[] {
    return safeList(this.local).filter((n) => !n.startsWith('.'));
  }

  /** Files waiting locally for the NAS. */
  pendingLocal(): number {
    return filesUnder(this.local).length;
  }

  /** Moves local files to the NAS (copy, check the size, rename, remove the local one); returns how many moved. */
  migrate(): number {
    if (!this.available()) return 0;
    let moved = 0;
    for (const src of filesUnder(this.local)) {
      const dst = join(this.nas, relative(this.local, src));
      mkdirSync(dirname(dst), { recursive: true });
      const tmp = `${dst}.part`;
      copyFileSync(src, tmp);
      if (statSync(tmp).size !== statSync(src).size) throw new Error(`copy of ${src} to ${dst} is incomplete`);
      renameSync(tmp, dst);
      rmSync(src);
      moved++;
    }
    pruneEmpty(this.local);
    return moved;
  }
}

function safeList(d: string): string[] {
  try {
    return readdirSync(d);
  } catch {
    return [];
  }
}

function pruneEmpty(d: string): void {
  for (const e of safeList(d)) {
    const p = join(d, e);
    if (statSync(p).isDirectory()) {
      pruneEmpty(p);
      if (safeList(p).length === 0) rmSync(p, { recursive: true });
    }
  }
}
