import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Suites that start servers or use PostgreSQL isolate themselves (own port, own schema).
    fileParallelism: true,
  },
});
