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
