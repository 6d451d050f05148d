// Server-sent events for one run: everything in metrics.jsonl at once, then each batch of lines appended to it.
import type { Context } from 'hono';
import { streamSSE } from 'hono/streaming';
import { join } from 'node:path';
import { JsonlTail } from './tail.js';
import { METRICS, type Run } from './runs.js';

/** How often the file is looked at: often enough to feel live, rarely enough to cost nothing. */
export const POLL_MS = 500;

export function metricsStream(c: Context, run: Run): Response {
  return streamSSE(c, async (stream) => {
    const tail = new JsonlTail(join(run.dir, METRICS));
    let open = true;
    stream.onAbort(() => {
      open = false;
    });
    while (open) {
      const { records, reset } = tail.read();
      if (reset) await stream.writeSSE({ event: 'reset', data: '{}' });
      if (records.length) await stream.writeSSE({ event: 'metrics', data: JSON.stringify(records) });
      await stream.sleep(POLL_MS);
    }
  });
}
