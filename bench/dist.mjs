#!/usr/bin/env node
// The quickstart's training step on this machine as 2 processes x 1 thread (swav launch, Gloo, DDP's buckets)
// against 1 process x 2 threads, the same global batch, alternating; samples per second from metrics.jsonl (the
// median of the windows after the first), and the share of a step spent waiting for the gradients' all-reduce.
// usage: node bench/dist.mjs [--rounds 2] [--minutes 1]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';

const option = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
};
const rounds = Number(option('rounds', '2'));
const minutes = Number(option('minutes', '1'));
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const dir = mkdtempSync(join(tmpdir(), 'swav-bench-dist-'));
const batch = 128; // the quickstart's global batch
// a short run (the time limit stops it with a checkpoint): steady windows, no evaluation
const common = [
  '--config',
  'configs/quickstart-fashion-mnist.yaml',
  'run.knn_eval=false',
  'run.log_every=10',
  'optim.epochs=1',
  `run.max_minutes=${minutes}`,
];

function run(kind, round) {
  const out = join(dir, `${kind}-${round}`);
  const argv =
    kind === 'one'
      ? ['dist/src/cli/main.js', 'train', ...common, `run.out=${out}`, 'run.threads=2', `optim.batch_size=${batch}`]
      : [
          'dist/src/cli/main.js',
          'launch',
          '--nproc-per-node',
          '2',
          '--master-port',
          String(29700 + round),
          'train',
          ...common,
          `run.out=${out}`,
          'run.threads=1',
          `optim.batch_size=${batch / 2}`,
          'model.sync_bn=true',
        ];
  const r = spawnSync('node', argv, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${argv.join(' ')}:\n${r.stderr}`);
  const lines = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .filter((m) => m.type === 'train')
    .slice(1);
  const sps = median(lines.map((m) => m.samples_per_s));
  const sync = kind === 'one' ? 0 : median(lines.map((m) => (m.grad_sync_s * m.samples_per_s) / batch)); // seconds waited / seconds per step
  return { sps, sync };
}

const res = { one: [], two: [] };
for (let r = 0; r < rounds; r++)
  for (const kind of ['one', 'two']) {
    const x = run(kind, r);
    res[kind].push(x);
    console.log(
      `round ${r + 1} ${kind}: ${x.sps.toFixed(1)} samples/s${kind === 'two' ? `, all-reduce wait ${(100 * x.sync).toFixed(1)}% of a step` : ''}`,
    );
  }
const one = median(res.one.map((x) => x.sps));
const two = median(res.two.map((x) => x.sps));
const report = {
  title: 'quickstart step: 2 processes x 1 thread vs 1 process x 2 threads',
  machine: `${cpus().length} x ${cpus()[0]?.model}`,
  date: new Date().toISOString(),
  one_process_samples_per_s: one,
  two_processes_samples_per_s: two,
  ratio: two / one,
  allreduce_wait_share: median(res.two.map((x) => x.sync)),
  rounds,
};
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/dist.json', `${JSON.stringify(report, null, 2)}\n`);
console.log(
  `\n1 x 2 threads: ${one.toFixed(1)} samples/s; 2 x 1 thread: ${two.toFixed(1)} samples/s (${(two / one).toFixed(2)}x); all-reduce wait ${(100 * report.allreduce_wait_share).toFixed(1)}% of a step`,
);
