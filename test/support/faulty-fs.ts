import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';

/**
 * Real failing writes for tests (chmod does not stop root): a small tmpfs mounted on a
 * folder (fill it for ENOSPC, remount it read-only for EROFS) and the immutable
 * attribute (`chattr +i`, EPERM) on an ext4/xfs path. Needs root, as the test machine
 * runs; every helper throws with the command's error rather than skipping.
 */
function run(cmd: string, args: string[]): void {
  execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

export interface Mount {
  dir: string;
  readOnly(): void;
  writable(): void;
  /** Unmounts (idempotent; lazily if busy), so afterAll never leaves a mount behind. */
  unmount(): void;
}

export function mountTmpfs(dir: string, sizeKiB = 64): Mount {
  mkdirSync(dir, { recursive: true });
  run('mount', ['-t', 'tmpfs', '-o', `size=${sizeKiB}k,mode=0755`, 'tmpfs', dir]);
  let mounted = true;
  return {
    dir,
    readOnly: () => run('mount', ['-o', 'remount,ro', dir]),
    writable: () => run('mount', ['-o', 'remount,rw', dir]),
    unmount: () => {
      if (!mounted) return;
      try {
        run('umount', [dir]);
      } catch {
        run('umount', ['-l', dir]);
      }
      mounted = false;
    },
  };
}

/** Sets or clears the immutable attribute (writes, renames, deletions and new entries fail with EPERM). */
export function immutable(path: string, on: boolean): void {
  run('chattr', [on ? '+i' : '-i', path]);
}
