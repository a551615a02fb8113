import { type Bus, decodeJson, DeliverPolicy } from '@sluice/bus';
import {
  REJECTED_SUBJECT,
  RejectedEventSchema,
  RunCompletedEventSchema,
  runEventsFilter,
  RunProgressEventSchema,
  STREAMS,
} from '@sluice/contracts';

import { EXIT } from './cli-error.js';
import { formatCompleted, formatProgress, type Output } from './output.js';

export interface WatchOptions {
  output: Output;
  json: boolean;
  timeoutMs?: number;
}

/**
 * Follows a run's events (replayed from the stream, then live) and a rejection of its request,
 * printing progress; `result` resolves with the exit code once the run completes.
 */
export async function watchRun(bus: Bus, runId: string, options: WatchOptions): Promise<{ result: Promise<number> }> {
  const { output, json } = options;
  const events = await (await bus.js.consumers.get(STREAMS.runs.name, { filter_subjects: runEventsFilter(runId), deliver_policy: DeliverPolicy.All })).consume();
  const rejections = await (await bus.js.consumers.get(STREAMS.runs.name, { filter_subjects: REJECTED_SUBJECT, deliver_policy: DeliverPolicy.New })).consume();
  let drawn = false;

  const result = new Promise<number>((resolve) => {
    const finish = (code: number): void => {
      if (drawn) output.out('');
      void events.close();
      void rejections.close();
      clearTimeout(timer);
      resolve(code);
    };
    const timer = setTimeout(() => {
      output.err(`run ${runId} did not complete within the timeout; it goes on (sluice status ${runId})`);
      finish(EXIT.timeout);
    }, options.timeoutMs ?? 2 ** 31 - 1);

    void (async () => {
      for await (const msg of events) {
        const data = decodeJson(msg.data);
        if (msg.subject.endsWith('.progress')) {
          const p = RunProgressEventSchema.safeParse(data);
          if (!p.success) continue;
          if (json) output.out(JSON.stringify({ event: 'progress', ...p.data }));
          else if (output.isTTY) {
            process.stdout.write(`\r${formatProgress(p.data, true)}`);
            drawn = true;
          } else output.out(formatProgress(p.data, false));
        } else if (msg.subject.endsWith('.completed')) {
          const c = RunCompletedEventSchema.safeParse(data);
          if (!c.success) continue;
          if (drawn) {
            process.stdout.write('\n');
            drawn = false;
          }
          if (json) output.out(JSON.stringify({ event: 'completed', ...c.data }));
          else for (const line of formatCompleted(c.data)) output.out(line);
          finish(c.data.status === 'succeeded' ? EXIT.ok : EXIT.runNotSucceeded);
          return;
        }
      }
    })();
    void (async () => {
      for await (const msg of rejections) {
        const r = RejectedEventSchema.safeParse(decodeJson(msg.data));
        if (!r.success || r.data.runId !== runId) continue;
        if (json) output.out(JSON.stringify({ event: 'rejected', ...r.data }));
        else output.err(`request ${runId} rejected:\n${r.data.reasons.map((x) => `  - ${x}`).join('\n')}`);
        finish(EXIT.rejected);
        return;
      }
    })();
  });
  return { result };
}
