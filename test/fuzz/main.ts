// npm run fuzz -- [--minutes N | --seconds N] [--target NAME]... [--seed S] [--engine fast-check|jazzer]: fuzzes the
// readers of untrusted bytes.
// npm run fuzz -- --target NAME --replay DIR: runs a saved finding's input once, in this process.
import { parseArgs } from 'node:util';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { cpus } from 'node:os';
import { execute, isFinding } from './execute.js';
import { jazzerTarget } from './jazzer-run.js';
import { fuzzTarget, table, type TargetReport } from './runner.js';
import { targetNamed, targets } from './targets.js';
import { root } from '../helpers.js';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string' },
    seconds: { type: 'string' },
    target: { type: 'string', multiple: true },
    seed: { type: 'string' },
    replay: { type: 'string' },
    list: { type: 'boolean' },
    outcomes: { type: 'string' },
    'no-coverage': { type: 'boolean' },
    engine: { type: 'string' },
    corpus: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});

const usage = `usage: npm run fuzz -- [--minutes N | --seconds N] [--target NAME]... [--seed S] [--outcomes FILE] [--no-coverage]
       npm run fuzz -- --engine jazzer [--minutes N | --seconds N] [--target NAME]... [--seed S] [--corpus DIR]
       npm run fuzz -- [--target NAME] --replay test/fuzz/findings/DIR
The time (default 1 minute) is shared among the targets chosen (default: all); --outcomes writes the distinct
outcomes seen (normalized messages) to FILE. The engine: fast-check (default), mutations of the seeds; each target's
line coverage of its reader's modules is measured with V8's block counts (--no-coverage: faster executions, no
coverage). Or jazzer: Jazzer.js, coverage-guided by the edges of the reader's modules, its corpus kept in
test/fuzz/corpus/TARGET (--corpus DIR: DIR/TARGET); the same line coverage, of its corpus replayed once at the end.
test/fuzz/README.md says more. Targets:
${targets.map((t) => `  ${t.name.padEnd(12)} ${t.about}`).join('\n')}`;

async function replay(dir: string): Promise<number> {
  const info = join(dir, 'finding.json');
  const name = values.target?.[0] ?? (existsSync(info) ? JSON.parse(readFileSync(info, 'utf8')).target : undefined);
  if (!name) throw new Error(`${dir}: no finding.json: say which target reads it (--target NAME)`);
  const o = await execute(targetNamed(name), resolve(dir));
  console.log(`${name}: ${o.kind}: ${o.message}`);
  return isFinding(o) ? 1 : 0;
}

async function main(): Promise<number> {
  if (values.help) {
    console.log(usage);
    return 0;
  }
  if (values.list) {
    console.log(targets.map((t) => t.name).join('\n'));
    return 0;
  }
  if (values.replay) return replay(values.replay);
  const chosen = (values.target ?? targets.map((t) => t.name)).map((n) => targetNamed(n).name);
  const ms = values.seconds ? Number(values.seconds) * 1000 : Number(values.minutes ?? 1) * 60_000;
  if (!(ms > 0)) throw new Error(`--minutes / --seconds: a positive number, got ${values.seconds ?? values.minutes}`);
  const seed = values.seed ? Number(values.seed) : Date.now() % 1_000_000_007;
  const engine = values.engine ?? 'fast-check';
  if (engine !== 'fast-check' && engine !== 'jazzer') throw new Error(`--engine: fast-check or jazzer, got ${engine}`);
  const each = ms / chosen.length;
  console.log(
    `fuzzing ${chosen.join(', ')} with ${engine}: ${(each / 1000).toFixed(0)} s each, seed ${seed}, on ${cpus()[0]?.model ?? 'an unknown CPU'}`,
  );
  const reports: TargetReport[] = [];
  for (const target of chosen) {
    const log = (l: string) => console.log(l);
    const coverage = values['no-coverage'] ? [] : targetNamed(target).sources;
    const corpus = join(values.corpus ? resolve(values.corpus) : join(root, 'test', 'fuzz', 'corpus'), target);
    const r =
      engine === 'jazzer'
        ? await jazzerTarget(target, { ms: each, seed, log, corpus, coverage })
        : await fuzzTarget(target, { ms: each, seed, log, coverage });
    console.log(
      `${target}: ${r.execs} executions in ${r.seconds.toFixed(1)} s (${(r.execs / r.seconds).toFixed(0)}/s), ` +
        `${r.outcomes.length} distinct outcomes, ${r.findings.length} findings` +
        (r.coverage ? `, ${r.coverage.covered} of ${r.coverage.lines} lines of ${r.coverage.modules.join(', ')}` : '') +
        (r.jazzer
          ? `, ${r.jazzer.edges} of ${r.jazzer.instrumented} edges and ${r.jazzer.features} features covered (libFuzzer's cov, ft), ${r.jazzer.corpus} inputs in ${corpus}`
          : ''),
    );
    reports.push(r);
  }
  console.log(`\n${table(reports)}`);
  if (values.outcomes) writeFileSync(values.outcomes, reports.map((r) => r.outcomes.map((s) => `${r.target}\t${s}\n`).join('')).join(''));
  return reports.some((r) => r.findings.length) ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exitCode = 2;
  },
);
