/** The `octopus` command's own errors: usage, unknown commands, failures that are not config problems. */
import { describe, expect, it } from 'vitest';
import { freePort } from '../support/ports.ts';
import { runCli } from '../support/cli.ts';

describe('the octopus command', () => {
  it('prints usage with exit 0 for help and exit 2 for an unknown command', () => {
    const help = runCli(['help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/octopus start \[--config file\]/);
    const bad = runCli(['frobnicate']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('unknown command "frobnicate"');
  });

  it('explains every command with `octopus <command> --help` (exit 0, nothing on stderr)', () => {
    const usage = runCli(['help']).stdout;
    const commands = [...new Set([...usage.matchAll(/^\s+octopus ([a-z][a-z-]*)/gm)].map((m) => m[1]!))];
    expect(commands).toEqual(
      expect.arrayContaining([
        'start',
        'collect',
        'simulate',
        'validate',
        'test-profile',
        'schema',
        'browse',
        'run',
        'user',
        'token',
      ]),
    );
    for (const command of commands) {
      for (const flag of ['--help', '-h']) {
        const r = runCli([command, flag]);
        expect({ command, flag, code: r.code, stderr: r.stderr }).toEqual({ command, flag, code: 0, stderr: '' });
        expect(r.stdout, `${command} ${flag}`).toMatch(new RegExp(`^usage:[\\s\\S]*octopus ${command}\\b`));
      }
      const viaHelp = runCli(['help', command]);
      expect(viaHelp.code).toBe(0);
      expect(viaHelp.stdout).toBe(runCli([command, '--help']).stdout);
    }
    // Sub-commands too: `octopus user add --help` explains user rather than failing on a missing name.
    const sub = runCli(['user', 'add', '--help']);
    expect(sub.code).toBe(0);
    expect(sub.stdout).toContain('octopus user add <name> --role');
  }, 300_000);

  it('says what failed, without a stack trace, and exits 1 when browse cannot reach the server', async () => {
    const port = await freePort();
    const r = runCli(['browse', `opc.tcp://127.0.0.1:${port}`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`octopus browse: OPC UA connect to opc.tcp://127.0.0.1:${port} failed`);
    expect(r.stderr).not.toMatch(/^\s+at /m);
  });

  it('refuses a browse target that is not an opc.tcp:// URL with exit 2', () => {
    const r = runCli(['browse', 'http://plc']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('expected an opc.tcp:// endpoint (got "http://plc")');
  });
});
