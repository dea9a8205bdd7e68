import { defineConfig } from 'vitest/config';

// Tests touch the real kernel (namespaces, links, iptables) and start real
// servers, so every file runs in its own process: a namespace switch or a
// crash in one file cannot leak into another.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['test/bench/**', 'node_modules/**'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    globalSetup: ['test/setup/global.ts'],
  },
});
