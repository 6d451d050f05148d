// The Jazzer.js fuzz target: Jazzer's CLI, started by jazzer-run.ts, imports this module and calls `fuzz` with
// libFuzzer's bytes, which become the target's files (bytes.ts), written to the scratch directory before the reader
// sees them (so that a crash leaves them behind), read by the same reader and judged by the same rules as the
// fast-check runs (execute.ts). Only a finding throws, which ends Jazzer's run: its outcome is written first to
// finding.json beside the input, for the parent to save. Progress goes to the parent over IPC, as worker.ts's does.
// The settings come in SWAV_JAZZER (JSON, a JazzerStart).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { unpack } from './bytes.js';
import { executor, isFinding } from './execute.js';
import type { Target } from './targets.js';
import type { WorkerMessage } from './worker.js';

export interface JazzerStart {
  target: string;
  /** The module whose `targets` has it. */
  module: string;
  /** The target's file names (bytes.ts). */
  names: string[];
  /** The input is written to scratch/input, a finding's outcome to scratch/finding.json. */
  scratch: string;
  /** Signatures of findings already reported (by an earlier process of the same run): not findings again. */
  known: string[];
}

const start: JazzerStart =
  JSON.parse(process.env.SWAV_JAZZER ?? 'null') ??
  (() => {
    throw new Error('SWAV_JAZZER is not set: start Jazzer.js runs with npm run fuzz -- --engine jazzer (test/fuzz/README.md)');
  })();
const targets: Target[] = (await import(start.module)).targets;
const target =
  targets.find((t) => t.name === start.target) ??
  (() => {
    throw new Error(`no target ${start.target} in ${start.module}`);
  })();
const input = join(start.scratch, 'input');
const known = new Set(start.known);
const send = (m: WorkerMessage) => process.send?.(m);
const exec = executor(target, input, send);
send({ t: 'ready', seeds: 0, ms: target.limits?.ms });

export async function fuzz(data: Buffer): Promise<void> {
  const o = await exec.run(unpack(data, start.names));
  if (isFinding(o) && !known.has(o.signature)) {
    writeFileSync(join(start.scratch, 'finding.json'), JSON.stringify({ outcome: o, execs: exec.execs }));
    throw new Error(`${o.kind}: ${o.message}`);
  }
}
