import { defineConfig } from 'vitest/config';

// Integration tests start real servers (Mosquitto, pymodbus, node-opcua) on free
// loopback ports; on a 2-core machine they are run one file at a time so that
// timing-sensitive fault tests are not starved by their neighbours.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    fileParallelism: false,
    reporters: ['default'],
  },
});
