// Runs a fuzz target under Jazzer.js: coverage-guided, libFuzzer's mutations kept when they reach new edges of the
// reader's compiled modules (dist/src/<target.sources>.js, instrumented by Jazzer's ES module loader hook as they are
// imported; nothing else is). In a child process, as runner.ts runs fast-check's: the same seeds (packed by bytes.ts,
// the initial corpus), the same judgement of each outcome (jazzer.ts, execute.ts), the same watchdog for hangs and
// memory, findings saved the same way (test/fuzz/findings/, replayed by npm run fuzz -- --replay DIR).
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { fileNames, pack, zipEntries } from './bytes.js';
import { normalize, type FindingKind, type Outcome } from './execute.js';
import type { JazzerStart } from './jazzer.js';
import { jazzerAddon } from './jazzer-addon.js';
import {
  fuzzDefaults,
  lineCoverage,
  MAX_RESTARTS,
  readDir,
  residentBytes,
  save,
  scratchRoot,
  type Finding,
  type FuzzOptions,
  type LineCoverage,
  type TargetReport,
} from './runner.js';
import type { Target } from './targets.js';
import type { WorkerMessage } from './worker.js';

export interface JazzerOptions extends FuzzOptions {
  /** libFuzzer's corpus directory, kept between runs (default: a temporary one). The seeds are read from their own. */
  corpus?: string;
}

const cli = createRequire(import.meta.url).resolve('@jazzer.js/core/dist/cli.js');
const fuzzModule = fileURLToPath(new URL('./jazzer.js', import.meta.url));

/**
 * Jazzer's bug detectors left off: no reader derives a path, a command or an address from its bytes (and
 * path-traversal's hooks on every fs call slow each execution); prototype pollution is execute.ts's own check, in both
 * engines and in replays (Jazzer's would fire again on every execution after the first, the prototypes left as they
 * were polluted), its words in libFuzzer's dictionary here. The one left on: remote-code-execution (eval, Function).
 */
const DETECTORS_OFF = ['path-traversal', 'command-injection', 'ssrf', 'prototype-pollution'];
const DICTIONARY = ['__proto__', 'constructor', 'prototype'].map((w) => `"${w}"`).join('\n');

/** libFuzzer's status lines: `#RUNS KIND cov: EDGES ft: FEATURES corp: INPUTS/SIZE ...`. */
const STATUS = /^#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+) corp: (\d+)\//;

interface Life {
  execs: number;
  fuzzedMs: number;
  /** 'done', a finding the child reported (finding.json), or one this process saw. */
  ended: 'done' | 'reported' | FindingKind;
  detail: string;
  edges: number;
  /** The edges instrumented: the counters of the modules' regions (Jazzer's first, for CommonJS modules, left out). */
  instrumented: number;
  features: number;
  corpus: number;
}

/** The instrumentation's includes: the reader's compiled modules (or, for a test's own targets, their module). */
function includes(target: Target, module: string): string[] {
  return target.sources.length ? target.sources.map((s) => `/dist/src/${s}.js`) : [fileURLToPath(module)];
}

function live(args: string[], env: NodeJS.ProcessEnv, o: Required<JazzerOptions>, scratch: string, outcomes: Set<string>): Promise<Life> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    let tail = '';
    let partial = '';
    const life: Life = { execs: 0, fuzzedMs: 0, ended: 'done', detail: '', edges: 0, instrumented: 0, features: 0, corpus: 0 };
    let runs = 0;
    child.stdout!.on('data', (d: Buffer) => {
      tail = (tail + d.toString()).slice(-6000);
    });
    child.stderr!.on('data', (d: Buffer) => {
      const text = partial + d.toString();
      const lines = text.split('\n');
      partial = lines.pop()!;
      for (const line of lines) {
        const m = STATUS.exec(line);
        if (m) [runs, life.edges, life.features, life.corpus] = [Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4])];
        const loaded = /^INFO: Loaded \d+ modules\s+\(\d+ inline 8-bit counters\): (.*)/.exec(line);
        if (loaded) life.instrumented = [...loaded[1].matchAll(/(\d+) \[/g)].slice(1).reduce((n, x) => n + Number(x[1]), 0);
        const done = /^Done (\d+) runs/.exec(line);
        if (done) runs = Number(done[1]);
      }
      tail = (tail + d.toString()).slice(-6000);
    });
    let last = Date.now();
    let readyAt = 0;
    let hangMs = o.hangMs;
    let killed: { kind: FindingKind; detail: string } | undefined;
    const kill = (kind: FindingKind, detail: string) => {
      if (killed) return;
      killed = { kind, detail };
      child.kill('SIGKILL');
    };
    child.on('message', (m: WorkerMessage) => {
      last = Date.now();
      if (m.t === 'ready') {
        readyAt = last;
        hangMs = Math.max(o.hangMs, 2 * (m.ms ?? 0)); // as runner.ts: a read the target allows that long is slow, not hung
      } else if (m.t === 'beat') {
        life.execs = m.execs;
        for (const s of m.outcomes) outcomes.add(s);
      }
    });
    const watchdog = setInterval(() => {
      const rss = residentBytes(child.pid!);
      const quiet = Date.now() - last;
      if (quiet > (readyAt ? hangMs : Math.max(hangMs, 120_000))) kill('hang', `no progress for ${Math.round(quiet / 1000)} s`);
      else if (rss > o.memoryBytes) kill('memory', `${Math.round(rss / 2 ** 20)} MiB resident`);
    }, 200);
    child.on('exit', (code, signal) => {
      clearInterval(watchdog);
      life.fuzzedMs = readyAt ? Date.now() - readyAt : 0;
      life.execs = Math.max(life.execs, runs);
      const lines = tail
        .trim()
        .split('\n')
        .filter((l) => l.trim());
      const said = (re: RegExp) =>
        lines
          .filter((l) => re.test(l))
          .slice(-3)
          .join(' | ');
      if (killed) {
        [life.ended, life.detail] = [killed.kind, killed.detail];
      } else if (existsSync(join(scratch, 'finding.json'))) {
        life.ended = 'reported';
      } else if (code === 0) {
        life.ended = 'done';
      } else if (!readyAt) {
        reject(new Error(`Jazzer.js did not start (exit ${signal ?? code}): ${lines.slice(-8).join('\n')}`));
        return;
      } else if (code === 77 && /^==\d+== /m.test(tail)) {
        // Jazzer's own finding (a bug detector's): its title, then its indented lines
        let at = lines.length - 1;
        while (!/^==\d+== /.test(lines[at])) at--;
        const more = lines.slice(at + 1).filter((l, i, all) => /^\s/.test(l) && all.slice(0, i).every((x) => /^\s/.test(x)));
        [life.ended, life.detail] = ['jazzer', [lines[at].replace(/^==\d+== /, ''), ...more.map((l) => l.trim())].join(': ')];
      } else if (/libFuzzer: timeout/.test(tail)) {
        [life.ended, life.detail] = ['hang', said(/libFuzzer: timeout|ALARM/)];
      } else if (/libFuzzer: out-of-memory/.test(tail)) {
        [life.ended, life.detail] = ['memory', said(/out-of-memory/)];
      } else {
        [life.ended, life.detail] = [
          'crash',
          `exit ${signal ?? code}: ${said(/ERROR|Error|signal|abort/i) || lines.slice(-3).join(' | ') || 'no message'}`,
        ];
      }
      resolve(life);
    });
  });
}

let noted = false;

const start = (target: string, module: string, names: string[], scratch: string): JazzerStart => ({
  target,
  module,
  names,
  scratch,
  known: [],
});

/**
 * The lines of `sources` (as runner.ts's lineCoverage counts them) that the inputs of `dirs` (the seeds and libFuzzer's
 * corpus) run, each read once by jazzer.ts's fuzz in a plain node process, V8 counting blocks: the fast-check runs'
 * measure, for comparing the engines (Jazzer's own instrumentation is not in these modules' offsets).
 */
function corpusCoverage(s: JazzerStart, dirs: string[], sources: string[]): Promise<LineCoverage> {
  const v8 = join(s.scratch, 'v8-coverage');
  const code = `const { fuzz } = await import(${JSON.stringify(pathToFileURL(fuzzModule).href)});
    for (const dir of ${JSON.stringify(dirs)}) for (const f of fs.readdirSync(dir)) await fuzz(fs.readFileSync(path.join(dir, f))).catch(() => {});`;
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--expose-gc', '--input-type=module', '-e', `import fs from 'node:fs'; import path from 'node:path'; ${code}`],
      { env: { ...process.env, SWAV_JAZZER: JSON.stringify(s), NODE_V8_COVERAGE: v8 }, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    child.on('exit', (code) =>
      code === 0 ? resolve(lineCoverage(v8, sources)) : reject(new Error(`replaying the corpus for coverage: exit ${code}: ${stderr}`)),
    );
  });
}

/** Fuzzes one target with Jazzer.js for `o.ms` of fuzzing time, over as many child processes as findings make it take. */
export async function jazzerTarget(name: string, opts: JazzerOptions): Promise<TargetReport> {
  const o: Required<JazzerOptions> = { ...fuzzDefaults(), corpus: '', ...opts };
  const target: Target | undefined = ((await import(o.module)).targets as Target[]).find((t) => t.name === name);
  if (!target) throw new Error(`no fuzz target '${name}' in ${o.module}`);
  const addon = jazzerAddon();
  if (addon.note && !noted) o.log(`(${addon.note})`);
  noted = true;
  const seeds = await target.seeds();
  const names = fileNames(seeds);
  const scratch = mkdtempSync(join(scratchRoot, `swav-jazzer-${name}-`));
  const seedDir = join(scratch, 'seeds');
  const corpus = o.corpus || join(scratch, 'corpus');
  const outcomes = new Set<string>();
  const findings: Finding[] = [];
  const known: string[] = [];
  let execs = 0;
  let fuzzed = 0;
  let stats = { edges: 0, instrumented: 0, features: 0, corpus: 0 };
  try {
    mkdirSync(seedDir, { recursive: true });
    mkdirSync(corpus, { recursive: true });
    // the pickle opcodes (as fast-check's 'opcode' mutation writes them) too
    const opcodes = (target.opcodes ?? []).map((c) => `"\\x${c.toString(16).padStart(2, '0')}"`);
    writeFileSync(join(scratch, 'dictionary'), `${[DICTIONARY, ...opcodes].join('\n')}\n`);
    for (const s of seeds) {
      const file = join(seedDir, s.name.replace(/[^\w.-]/g, '_'));
      writeFileSync(file, pack(s.files, names));
      // a zip container's seeds also as their entries (bytes.ts), for mutations of the pickle inside to reach its reader
      const entries = target.zip && names.length === 1 ? zipEntries(s.files[names[0]], scratch) : undefined;
      if (entries) writeFileSync(`${file}.entries`, entries);
    }
    for (let life = 0; life <= MAX_RESTARTS && fuzzed < o.ms; life++) {
      rmSync(join(scratch, 'finding.json'), { force: true });
      const s = { ...start(name, o.module, names, scratch), known: [...known] };
      const args = [
        ...addon.execArgv,
        '--expose-gc',
        cli,
        fuzzModule,
        corpus,
        seedDir,
        ...includes(target, o.module).flatMap((i) => ['-i', i]),
        ...DETECTORS_OFF.flatMap((d) => ['--disable_bug_detectors', d]),
        // the watchdog here judges hangs (as runner.ts's does); libFuzzer's own timeout only backs it up
        `--timeout=${3 * Math.max(o.hangMs, 2 * (target.limits?.ms ?? 0))}`,
        '--',
        `-max_total_time=${Math.max(1, Math.ceil((o.ms - fuzzed) / 1000))}`,
        `-seed=${(o.seed + 1_000_003 * life) % 2 ** 31 || 1}`,
        '-rss_limit_mb=0',
        '-len_control=0',
        `-artifact_prefix=${scratch}/`,
        `-dict=${join(scratch, 'dictionary')}`,
      ];
      const env = { ...process.env, ...addon.env, SWAV_JAZZER: JSON.stringify(s) };
      const r = await live(args, env, o, scratch, outcomes);
      execs += r.execs;
      fuzzed += Math.max(r.fuzzedMs, 1);
      if (r.edges >= stats.edges) stats = { edges: r.edges, instrumented: r.instrumented, features: r.features, corpus: r.corpus };
      if (r.ended === 'done') break;
      // the input the child was reading when it threw or died is the one its scratch directory still holds
      const outcome: Outcome & { kind: FindingKind } =
        r.ended === 'reported'
          ? JSON.parse(readFileSync(join(scratch, 'finding.json'), 'utf8')).outcome
          : {
              kind: r.ended,
              signature: `${r.ended}: ${r.ended === 'jazzer' ? normalize(r.detail, scratch) : r.detail}`,
              message: r.detail,
            };
      if (known.includes(outcome.signature)) continue; // Jazzer's detectors and native crashes do not know what is known
      const f = save(
        o.findings,
        name,
        outcome,
        readDir(join(scratch, 'input')),
        `Jazzer.js, process ${life} of the run with seed ${o.seed}`,
      );
      known.push(outcome.signature);
      findings.push(f);
      o.log(`  ${name}: ${f.kind}: ${f.message.slice(0, 300)}\n    saved in ${f.dir}\n    replay: ${f.reproduce}`);
    }
    const coverage = o.coverage.length
      ? await corpusCoverage(start(name, o.module, names, scratch), [seedDir, corpus], o.coverage).catch((e: Error) => {
          o.log(`  ${name}: ${e.message}`);
          return undefined;
        })
      : undefined;
    return { target: name, execs, seconds: fuzzed / 1000, outcomes: [...outcomes].sort(), findings, coverage, jazzer: stats };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
