import { type Attributes, SpanStatusCode, trace } from '@opentelemetry/api';

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
