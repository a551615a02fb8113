import type { RunProgressEvent } from '@sluice/contracts';

import type { RunBook } from '../src/run-book.js';

/** The progress event due, noted as decided (as the reporter does before publishing it). */
export function takeProgress(book: RunBook, runId: string): RunProgressEvent | undefined {
  const event = book.progressDue(runId);
  if (event) book.onProgress(event);
  return event;
}
