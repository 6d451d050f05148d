// Runs a scenario of test/dist/worker.ts in `world` child processes over loopback, one per rank, and collects what
// each prints (one JSON object a line). Every child is killed when the run ends, however it ends.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { root } from '../helpers.js';

export interface RankResult {
  rank: number;
  code: number | null;
  signal: string | null;
  lines: any[];
  stderr: string;
}

/** A TCP port free at the moment of asking. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export interface RunOptions {
  /** Kills every child and rejects after this long. */
  timeoutMs: number;
  /** Extra arguments for the scenario. */
  args?: string[];
  /** Called with each line a rank prints, and the children (to kill one mid-collective). */
  onLine?: (rank: number, line: any, children: ChildProcess[]) => void;
}

export async function runRanks(scenario: string, world: number, o: RunOptions): Promise<RankResult[]> {
  const port = await freePort();
  const script = join(root, 'dist', 'test', 'dist', 'worker.js');
  const children: ChildProcess[] = [];
  const results: RankResult[] = [];
  let timer: NodeJS.Timeout | undefined;
  try {
    const exits = Array.from(
      { length: world },
      (_, rank) =>
        new Promise<void>((resolve) => {
          const child = spawn(process.execPath, [script, scenario, String(rank), String(world), String(port), ...(o.args ?? [])], {
            cwd: root,
            env: { ...process.env, OMP_NUM_THREADS: '1' },
            stdio: ['ignore', 'pipe', 'pipe'],
          });
          children.push(child);
          const r: RankResult = { rank, code: null, signal: null, lines: [], stderr: '' };
          results[rank] = r;
          let buf = '';
          child.stdout!.on('data', (d) => {
            buf += d;
            for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
              const line = JSON.parse(buf.slice(0, nl));
              buf = buf.slice(nl + 1);
              r.lines.push(line);
              o.onLine?.(rank, line, children);
            }
          });
          child.stderr!.on('data', (d) => {
            r.stderr += d;
          });
          child.on('exit', (code, signal) => {
            r.code = code;
            r.signal = signal;
            resolve();
          });
        }),
    );
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new Error(
              `${scenario} on ${world} ranks: no end within ${o.timeoutMs} ms; so far ${JSON.stringify(
                results.map((r) => ({ rank: r.rank, lines: r.lines, stderr: r.stderr.slice(-2000) })),
              )}`,
            ),
          ),
        o.timeoutMs,
      );
    });
    await Promise.race([Promise.all(exits), timeout]);
    return results;
  } finally {
    clearTimeout(timer);
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  }
}

/** The last line of each rank, which the worker prints as its result; throws with the rank's stderr if it failed. */
export function outcomes(results: RankResult[]): any[] {
  return results.map((r) => {
    const last = r.lines.at(-1);
    if (r.code !== 0 || last?.ok !== true) {
      throw new Error(`rank ${r.rank} (exit ${r.code ?? r.signal}): ${JSON.stringify(last)}\n${r.stderr.slice(-3000)}`);
    }
    return last;
  });
}
