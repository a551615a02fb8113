import { defineConfig } from 'vitest/config';

// Some tests start a real nats-server.
export default defineConfig({ test: { testTimeout: 30_000, hookTimeout: 30_000 } });
