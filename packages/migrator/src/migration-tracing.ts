import { type Attributes, SpanStatusCode, trace } from '@opentelemetry/api';
import type { Migration } from '@sluice/core';

/**
 * Runs `work` in a span of the migrator (`sluice.connect`, `sluice.journal`, `sluice.lock`,
 * `sluice.migration`), so the pg spans of its queries hang under the step they belong to. A
 * non-recording span when tracing is off. Errors mark the span and go on unchanged; the span's
 * status message is the error's code when it has one (`sql_error`, `locked`, ...).
 */
export function inSpan<T>(name: string, attributes: Attributes, work: () => Promise<T>): Promise<T> {
  return trace.getTracer('sluice-migrator').startActiveSpan(name, { attributes }, async (span) => {
    try {
      return await work();
    } catch (error) {
      const code = (error as { code?: unknown } | null)?.code;
      span.recordException(error instanceof Error ? error : String(error));
      span.setStatus({
        code: SpanStatusCode.ERROR,
        message: typeof code === 'string' ? code : (error as Error)?.message,
      });
      throw error;
    } finally {
      span.end();
    }
  });
}

/** A file's span attributes: its version, name and whether it runs in a transaction. */
export function migrationAttributes(m: Migration) {
  return {
    'sluice.version': m.version,
    'sluice.migration.name': m.name,
    'sluice.migration.transactional': m.transactional,
  };
}

/** A batch's span: the versions it carries (the first as `sluice.version`, like a single file's). */
export function batchAttributes(files: readonly Migration[]) {
  return {
    'sluice.version': files[0]!.version,
    'sluice.versions': files.map((m) => m.version),
    'sluice.migration.name': files.map((m) => m.name).join(', '),
    'sluice.migration.transactional': true,
  };
}
