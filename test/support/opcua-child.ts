/** Starts test/support/opcua-server-process.ts as a child process and waits for its READY line. */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../src/config/profiles.ts';

export interface OpcuaChild {
  proc: ChildProcess;
  endpoint: string;
  /** kill -9, resolving once the process is gone. */
  kill(): Promise<void>;
}

export function startOpcuaChild(args: string[], timeoutMs = 30_000): Promise<OpcuaChild> {
  const proc = spawn(
    process.execPath,
    [join(PROJECT_ROOT, 'bin/run-ts.js'), join(PROJECT_ROOT, 'test/support/opcua-server-process.ts'), ...args],
    {
      cwd: PROJECT_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stderr = '';
  proc.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`OPC UA server process (${args.join(' ')}) not ready after ${timeoutMs} ms; stderr: ${stderr}`));
    }, timeoutMs);
    let out = '';
    proc.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /READY (\S+)/.exec(out);
      if (!m) return;
      clearTimeout(timer);
      proc.stdout?.removeAllListeners('data');
      proc.stdout?.resume();
      resolve({
        proc,
        endpoint: m[1]!,
        kill: async () => {
          if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
          await exited;
        },
      });
    });
    proc.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`OPC UA server process exited (${code ?? signal}) before READY; stderr: ${stderr}`));
    });
  });
}
