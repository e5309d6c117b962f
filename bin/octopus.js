#!/usr/bin/env node
// The `octopus` command: loads the TypeScript sources through tsx, so no build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
