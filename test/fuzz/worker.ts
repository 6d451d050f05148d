// The fuzzing process (forked by runner.ts): mutates a target's seeds with fast-check, writes each input to the
// scratch directory before the reader sees it (so that a crash leaves it behind for the parent), and reports
// progress, new outcomes and shrunk findings over IPC.
import fc from 'fast-check';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { applyPlan, planArbitrary, type Plan, type Seed } from './mutate.js';
import { executor, isFinding, type Outcome } from './execute.js';
import { targetNamed } from './targets.js';

export interface Start {
  target: string;
  /** The module whose `targets` has it (the fuzz test's own, to check that crashes and hangs are caught). */
  module: string;
  seed: number;
  /** Milliseconds of fuzzing, counted once the seeds are ready. */
  ms: number;
  scratch: string;
  /** Signatures of findings already reported (by an earlier process of the same run). */
  known: string[];
  /** The target's seeds, made by the parent: our writers (torch.save, saveSafetensors) that make some never run here,
   * so that the line coverage counted here is the reads' (and the mutations'). */
  seeds: Seed[];
}

export type WorkerMessage =
  | { t: 'ready'; seeds: number /** the target's declared time for one read */; ms?: number }
  | { t: 'beat'; execs: number; outcomes: string[] }
  | { t: 'finding'; outcome: Outcome; files: Record<string, Uint8Array>; how: string }
  | { t: 'done'; execs: number };

const send = (m: WorkerMessage) => process.send!(m);

async function run(s: Start): Promise<void> {
  const target = targetNamed(s.target, (await import(s.module)).targets);
  const seeds = s.seeds;
  const input = join(s.scratch, 'input');
  const work = join(s.scratch, 'work');
  mkdirSync(work, { recursive: true });
  const known = new Set(s.known);
  const exec = executor(target, input, send);
  const once = (files: Record<string, Uint8Array>) => exec.run(files);
  const report = (o: Outcome, files: Record<string, Uint8Array>, how: string) => {
    known.add(o.signature);
    send({ t: 'finding', outcome: o, files, how });
  };
  send({ t: 'ready', seeds: seeds.length, ms: target.limits?.ms });
  const until = Date.now() + s.ms;
  for (const seed of seeds) {
    const o = await once(seed.files);
    if (isFinding(o) && !known.has(o.signature)) report(o, seed.files, `the seed ${seed.name}, unmutated`);
  }
  const plans = planArbitrary(target);
  // One fast-check run per finding: it stops at the first, shrinks it (failing only on that same signature), and
  // the next run goes on with the next seed, the finding now known.
  for (let k = 0; Date.now() < until; k++) {
    let hunting: Outcome | undefined;
    const property = fc.asyncProperty(plans, async (plan: Plan) => {
      const o = await once(applyPlan(target, seeds, plan, work));
      if (!isFinding(o) || known.has(o.signature) || (hunting && o.signature !== hunting.signature)) return true;
      hunting = o; // the last failure is the smallest input yet
      return false;
    });
    const seed = s.seed + k;
    const r = await fc.check(property, {
      seed,
      numRuns: Number.MAX_SAFE_INTEGER,
      plugins: [fc.interruptAfterTimeLimit(Math.max(1, until - Date.now()))],
    });
    if (!r.failed || !r.counterexample) break;
    if (hunting === undefined) throw r.errorInstance ?? new Error('the fuzz property failed without a finding');
    const [plan] = r.counterexample as [Plan];
    const files = applyPlan(target, seeds, plan, work);
    const how =
      `fast-check seed ${seed}, path ${r.counterexamplePath}: seed file ${seeds[plan.seed % seeds.length].name}, ` +
      `operations ${JSON.stringify(plan.ops, (_, v) => (typeof v === 'bigint' ? `${v}n` : v instanceof Uint8Array ? [...v] : v))}`;
    report(hunting, files, how);
  }
  exec.flush();
  send({ t: 'done', execs: exec.execs });
}

process.once('message', (s: Start) => {
  run(s).then(
    () => process.disconnect(),
    (e) => {
      console.error(e instanceof Error ? e.stack : e);
      process.exit(2);
    },
  );
});
