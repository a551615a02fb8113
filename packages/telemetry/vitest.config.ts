import { defineConfig } from 'vitest/config';

// The tracing tests export to a local OTLP receiver and query the machine's Postgres. Each file
// runs in its own process: the SDK registers global state (tracer provider, context manager).
export default defineConfig({ test: { pool: 'forks', testTimeout: 30_000, hookTimeout: 30_000 } });
