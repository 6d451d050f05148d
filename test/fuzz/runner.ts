// Runs fuzz targets, each in a child process (worker.ts), so that a native crash is seen as the child's signal;
// a watchdog kills a child that stops making progress (a hang) or grows past a memory limit. Findings are saved
// with their input under test/fuzz/findings/, with the command that replays them.
import { fork, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { root } from '../helpers.js';
import type { FindingKind, Outcome } from './execute.js';
import type { Target } from './targets.js';
import type { Start, WorkerMessage } from './worker.js';

export const findingsDir = join(root, 'test', 'fuzz', 'findings');

export interface FuzzOptions {
  /** Milliseconds of fuzzing for each target (process start-up not counted). */
  ms: number;
  seed: number;
  /** Where findings are saved. */
  findings?: string;
  /** No progress for this long is a hang. */
  hangMs?: number;
  /** A child holding more resident memory than this is killed (a finding). */
  memoryBytes?: number;
  log?: (line: string) => void;
  /** The module whose `targets` has the target (default: targets.ts). */
  module?: string;
  /** Modules (paths under src/, without extension) whose line coverage to measure with V8's block counts; it
   * slows each execution, so long runs only. */
  coverage?: string[];
}

export interface Finding {
  target: string;
  kind: FindingKind;
  signature: string;
  message: string;
  /** The saved input, and the command that replays it. */
  dir: string;
  reproduce: string;
}

export interface TargetReport {
  target: string;
  execs: number;
  seconds: number;
  /** Distinct outcomes (normalized error messages, ok): a rough measure of the paths reached. */
  outcomes: string[];
  findings: Finding[];
  /** With `coverage`: the lines of the reader's modules that ran, over those that hold code. */
  coverage?: LineCoverage;
  /** Jazzer.js runs (jazzer-run.ts): libFuzzer's last counts of edges covered ('cov') of those instrumented (the
   * reader's modules'), features ('ft': edges with their hit counts), corpus inputs. */
  jazzer?: { edges: number; instrumented: number; features: number; corpus: number };
}

/** Children crashed (or killed) this many times end the target's run: the crashes are the news. */
export const MAX_RESTARTS = 3;
export const scratchRoot = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
const workerPath = fileURLToPath(new URL('./worker.js', import.meta.url));

export function save(
  findings: string,
  target: string,
  o: Outcome & { kind: FindingKind },
  files: Record<string, Uint8Array>,
  how: string,
): Finding {
  const hash = createHash('sha256').update(o.signature);
  for (const [name, b] of Object.entries(files).sort()) hash.update(name).update(b);
  const dir = join(findings, `${target}-${o.kind}-${hash.digest('hex').slice(0, 10)}`);
  mkdirSync(dir, { recursive: true });
  for (const [name, b] of Object.entries(files)) writeFileSync(join(dir, name), b);
  const reproduce = `npm run fuzz -- --target ${target} --replay ${relative(process.cwd(), dir) || dir}`;
  writeFileSync(join(dir, 'finding.json'), `${JSON.stringify({ target, ...o, how, reproduce }, null, 2)}\n`);
  return { target, kind: o.kind, signature: o.signature, message: o.message, dir, reproduce };
}

export const readDir = (dir: string) =>
  existsSync(dir) ? Object.fromEntries(readdirSync(dir).map((f) => [f, readFileSync(join(dir, f))])) : {};

export function residentBytes(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

interface Life {
  execs: number;
  fuzzedMs: number;
  ended: 'done' | FindingKind;
  detail: string;
}

/** One child process: fuzzes until its time is up, or until it crashes, hangs or is killed for its memory. */
function live(
  start: Start,
  o: Required<FuzzOptions>,
  outcomes: Set<string>,
  coverageDir: string | undefined,
  onFinding: (m: Extract<WorkerMessage, { t: 'finding' }>) => void,
): Promise<Life> {
  return new Promise((resolve) => {
    // NODE_V8_COVERAGE: V8 counts blocks from the child's first line and writes them when it exits normally
    const env = coverageDir ? { ...process.env, NODE_V8_COVERAGE: coverageDir } : process.env;
    const child: ChildProcess = fork(workerPath, [], {
      serialization: 'advanced',
      execArgv: ['--expose-gc'],
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      env,
    });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    let execs = 0;
    let last = Date.now();
    let readyAt = 0;
    let hangMs = o.hangMs;
    let ended: Life['ended'] | undefined;
    let detail = '';
    const kill = (why: FindingKind, text: string) => {
      if (ended) return;
      ended = why;
      detail = text;
      child.kill('SIGKILL');
    };
    child.on('message', (m: WorkerMessage) => {
      last = Date.now();
      if (m.t === 'ready') {
        readyAt = last;
        hangMs = Math.max(o.hangMs, 2 * (m.ms ?? 0)); // a read the target allows that long is slow, not hung
      } else if (m.t === 'beat') {
        execs = m.execs;
        for (const s of m.outcomes) outcomes.add(s);
      } else if (m.t === 'finding') onFinding(m);
      else if (m.t === 'done') {
        execs = m.execs;
        ended = 'done';
      }
    });
    const watchdog = setInterval(() => {
      const rss = residentBytes(child.pid!);
      // start-up (libtorch, the seeds) gets longer than an execution
      const quiet = Date.now() - last;
      if (quiet > (readyAt ? hangMs : Math.max(hangMs, 120_000))) kill('hang', `no progress for ${Math.round(quiet / 1000)} s`);
      else if (rss > o.memoryBytes) kill('memory', `${Math.round(rss / 2 ** 20)} MiB resident`);
    }, 200);
    child.send(start);
    child.on('exit', (code, signal) => {
      clearInterval(watchdog);
      const fuzzedMs = readyAt ? Date.now() - readyAt : 0;
      if (!ended) {
        ended = 'crash';
        detail = `exit ${signal ?? code}: ${stderr.trim().split('\n').slice(-3).join(' | ') || 'no message'}`;
      } else if (ended !== 'done') {
        detail += stderr.trim() ? ` | ${stderr.trim().split('\n').slice(-2).join(' | ')}` : '';
      }
      resolve({ execs, fuzzedMs, ended, detail });
    });
  });
}

/** The options either engine takes unless told otherwise. */
export const fuzzDefaults = (): Omit<Required<FuzzOptions>, 'ms' | 'seed'> => ({
  findings: findingsDir,
  hangMs: 10_000,
  memoryBytes: 3 * 2 ** 30,
  log: () => {},
  module: new URL('./targets.js', import.meta.url).href,
  coverage: [],
});

/** Fuzzes one target for `o.ms` of fuzzing time, over as many child processes as crashes make it take. */
export async function fuzzTarget(target: string, opts: FuzzOptions): Promise<TargetReport> {
  const o: Required<FuzzOptions> = { ...fuzzDefaults(), ...opts };
  const found: Target | undefined = ((await import(o.module)).targets as Target[]).find((t) => t.name === target);
  if (!found) throw new Error(`no fuzz target '${target}' in ${o.module}`);
  const seeds = await found.seeds();
  const scratch = mkdtempSync(join(scratchRoot, `swav-fuzz-${target}-`));
  const coverageDir = o.coverage.length ? join(scratch, 'coverage') : undefined;
  const outcomes = new Set<string>();
  const findings: Finding[] = [];
  const known: string[] = [];
  let execs = 0;
  let fuzzed = 0;
  try {
    for (let life = 0; life <= MAX_RESTARTS && fuzzed < o.ms; life++) {
      const start: Start = {
        target,
        module: o.module,
        seed: o.seed + 1_000_003 * life,
        ms: o.ms - fuzzed,
        scratch,
        known: [...known],
        seeds,
      };
      const r = await live(start, o, outcomes, coverageDir, (m) => {
        const f = save(o.findings, target, m.outcome as Outcome & { kind: FindingKind }, m.files, m.how);
        known.push(m.outcome.signature);
        findings.push(f);
        o.log(`  ${target}: ${f.kind}: ${f.message.slice(0, 300)}\n    saved in ${f.dir}\n    replay: ${f.reproduce}`);
      });
      execs += r.execs;
      fuzzed += Math.max(r.fuzzedMs, 1);
      if (r.ended === 'done') break;
      // the input the child was reading when it died is the one its scratch directory still holds
      const outcome = { kind: r.ended, signature: `${r.ended}: ${r.detail}`, message: r.detail };
      const f = save(o.findings, target, outcome, readDir(join(scratch, 'input')), `process ${life} of the run with seed ${o.seed}`);
      findings.push(f);
      o.log(`  ${target}: ${f.kind}: ${f.message.slice(0, 300)}\n    saved in ${f.dir}\n    replay: ${f.reproduce}`);
    }
    const coverage = coverageDir ? lineCoverage(coverageDir, o.coverage) : undefined;
    return { target, execs, seconds: fuzzed / 1000, outcomes: [...outcomes].sort(), findings, coverage };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

export interface LineCoverage {
  modules: string[];
  lines: number;
  covered: number;
}

interface V8Range {
  startOffset: number;
  endOffset: number;
  count: number;
}
interface V8Script {
  url: string;
  functions: { ranges: V8Range[] }[];
}

/**
 * The lines of the compiled modules named by `sources` (paths under dist/src/, without .js) that ran in any of the
 * children whose V8 coverage files are in `dir`. A line counts when it holds code (not blank, not only a comment)
 * and ran when its first character did; as c8 does, from V8's block ranges (nested ranges come after the ones
 * holding them, and the innermost count wins).
 */
export function lineCoverage(dir: string, sources: string[]): LineCoverage {
  const ran = new Map<string, Uint8Array>();
  for (const f of existsSync(dir) ? readdirSync(dir) : []) {
    const scripts: V8Script[] = JSON.parse(readFileSync(join(dir, f), 'utf8')).result;
    for (const s of scripts) {
      if (!sources.some((m) => s.url.endsWith(`/dist/src/${m}.js`))) continue;
      const ranges = s.functions.flatMap((fn) => fn.ranges).sort((a, b) => a.startOffset - b.startOffset || b.endOffset - a.endOffset);
      const mine = new Uint8Array(Math.max(...ranges.map((r) => r.endOffset)));
      for (const r of ranges) mine.fill(r.count > 0 ? 1 : 0, r.startOffset, r.endOffset);
      const all = ran.get(s.url) ?? new Uint8Array(mine.length);
      ran.set(
        s.url,
        all.map((v, i) => v | mine[i]),
      );
    }
  }
  let lines = 0;
  let covered = 0;
  for (const [url, bytes] of ran) {
    let at = 0;
    for (const line of readFileSync(fileURLToPath(url), 'utf8').split('\n')) {
      const first = line.search(/\S/);
      if (first >= 0 && !/^\s*(\/\/|\/?\*)/.test(line)) {
        lines++;
        covered += bytes[at + first] ?? 0;
      }
      at += line.length + 1;
    }
  }
  return { modules: [...ran.keys()].map((u) => relative(join(root, 'dist', 'src'), fileURLToPath(u))), lines, covered };
}

/** The reports as a Markdown table (bench/README.md's). */
export function table(reports: TargetReport[]): string {
  const cov = (r: TargetReport) =>
    [
      r.coverage
        ? `${r.coverage.covered} / ${r.coverage.lines} lines (${((100 * r.coverage.covered) / Math.max(r.coverage.lines, 1)).toFixed(0)}%) of ${r.coverage.modules.join(', ')}`
        : '',
      r.jazzer
        ? `${r.jazzer.edges} / ${r.jazzer.instrumented} edges, ${r.jazzer.features} features, ${r.jazzer.corpus} corpus inputs (libFuzzer)`
        : '',
    ]
      .filter(Boolean)
      .join('; ');
  const rows = reports.map(
    (r) =>
      `| ${r.target} | ${r.execs} | ${(r.execs / Math.max(r.seconds, 1e-3)).toFixed(0)} | ${r.outcomes.length} | ${cov(r)} | ${r.findings.length} |`,
  );
  return ['| target | executions | exec/s | distinct outcomes | coverage | findings |', '|---|---:|---:|---:|---|---:|', ...rows].join(
    '\n',
  );
}
