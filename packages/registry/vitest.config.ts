import { defineConfig } from 'vitest/config';

// The contract suite starts real stores (dynalite, a Mongo wire server) and reads thousands of rows.
export default defineConfig({ test: { testTimeout: 60_000, hookTimeout: 60_000 } });
