import { defineConfig } from 'vitest/config';

// Real Postgres, child processes and deliberate lock waits: generous timeouts. Each file works in its
// own databases, so files may run in parallel.
export default defineConfig({ test: { include: ['test/**/*.test.ts'], testTimeout: 60_000, hookTimeout: 60_000 } });
