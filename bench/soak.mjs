#!/usr/bin/env node
// npm run soak -- [--minutes 60] [--threads 1] [--out DIR] [--json FILE]: trains the quickstart's model in one
// process for as long as asked, one epoch per round (each round resumes from the last checkpoint, trains an
// epoch, evaluates with kNN and saves), sampling the RSS, the live-tensor count and the caching allocator every
// minute. It then fits a line to each over the samples after the warm-up (the first rounds, while the allocator
// reaches its peak) and fails if one grows: the live tensors must return to the same count after every round, and
// the RSS and the allocator's holdings must not rise by more than the noise allows (see `limits`).
import { parseArgs } from 'node:util';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../dist/src/train/config.js';
import { train } from '../dist/src/train/trainer.js';
import { torch } from '../dist/src/index.js';
import { machineInfo } from '../dist/src/cli/machine.js';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '60' },
    threads: { type: 'string', default: '0' },
    config: { type: 'string', default: 'configs/quickstart-fashion-mnist.yaml' },
    out: { type: 'string' },
    json: { type: 'string', default: 'bench/results/soak.json' },
    'sample-seconds': { type: 'string', default: '60' },
  },
});
const minutes = Number(values.minutes);
const sampleMs = Number(values['sample-seconds']) * 1000;
if (!(minutes > 0) || !(sampleMs > 0)) throw new Error('--minutes and --sample-seconds must be positive numbers');

const MiB = 1024 * 1024;
// Growth allowed over the whole soak before it counts as growing: RSS moves with the phase of the round a sample
// lands in (training, extraction, the probe's buffers), so its line is fitted over many samples and judged by
// what it would add in an hour.
const limits = { rssMiBPerHour: 64, cacheMiBPerHour: 64, liveTensorsPerRound: 0 };

const dir = values.out ?? mkdtempSync(join(tmpdir(), 'swav-soak-'));
const logFile = join(dir, 'soak.log');
// Schedule long enough never to end: each round is one more epoch of the same cosine; kNN after every epoch.
const config = loadConfig(values.config, [
  `run.out=${dir}`, 'optim.epochs=100000', 'run.budget_minutes=0', 'run.max_minutes=0', 'run.stop_after_epochs=1',
  'run.knn_eval=true', 'run.knn_every=1', 'run.linear_eval=false', `run.threads=${values.threads}`,
]);

const started = performance.now();
const elapsedMin = () => (performance.now() - started) / 60_000;
const samples = [];
const rounds = [];
const sample = (kind) => {
  const cache = torch.cpu.cacheStats();
  const s = { minute: Number(elapsedMin().toFixed(3)), kind, rssMiB: process.memoryUsage.rss() / MiB,
    liveTensors: torch.liveTensors(), cache };
  samples.push(s);
  appendFileSync(logFile, `${JSON.stringify(s)}\n`);
  return s;
};
const timer = setInterval(() => sample('minute'), sampleMs);

/** Least-squares slope of y over x. */
function slope(xs, ys) {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0, sxx = 0;
  for (let i = 0; i < n; i++) { sxy += (xs[i] - mx) * (ys[i] - my); sxx += (xs[i] - mx) ** 2; }
  return sxx > 0 ? sxy / sxx : 0;
}

const cacheHeld = (s) => (s.cache.liveBytes + s.cache.idleBytes) / MiB;
console.log(`soak: ${minutes} min of the quickstart's training in ${dir}, a sample every ${sampleMs / 1000} s`);
while (elapsedMin() < minutes) {
  const r = await train(config, { log: (l) => appendFileSync(logFile, `${l}\n`) });
  const s = sample('round');
  rounds.push({ ...s, epoch: r.epochsDone });
  console.log(`round ${rounds.length}: epoch ${r.epochsDone}, ${s.minute.toFixed(1)} min, ` +
    `RSS ${s.rssMiB.toFixed(0)} MiB, live tensors ${s.liveTensors}, allocator ${cacheHeld(s).toFixed(0)} MiB`);
}
clearInterval(timer);

// The warm-up: the first two rounds (datasets loaded, the allocator reaching its peak, code compiled).
const warm = rounds.length > 2 ? rounds[1].minute : 0;
const steady = samples.filter((s) => s.minute > warm);
const xs = steady.map((s) => s.minute / 60);
const rssSlope = slope(xs, steady.map((s) => s.rssMiB));
const cacheSlope = slope(xs, steady.map(cacheHeld));
const steadyRounds = rounds.slice(1);
const liveGrowth = steadyRounds.length > 1 ? Math.max(...steadyRounds.map((r) => r.liveTensors)) - steadyRounds[0].liveTensors : 0;
const liveSlope = slope(steady.map((s) => s.minute / 60), steady.map((s) => s.liveTensors));
const fails = [];
if (rounds.length < 4) fails.push(`only ${rounds.length} rounds: soak for longer to judge the slopes`);
if (rssSlope > limits.rssMiBPerHour) fails.push(`RSS grows ${rssSlope.toFixed(1)} MiB per hour`);
if (cacheSlope > limits.cacheMiBPerHour) fails.push(`the allocator's holdings grow ${cacheSlope.toFixed(1)} MiB per hour`);
if (liveGrowth > limits.liveTensorsPerRound) fails.push(`live tensors after a round grew by ${liveGrowth}`);

const rssSteady = steady.map((s) => s.rssMiB);
const report = {
  machine: machineInfo(), date: new Date().toISOString(), minutes: Number(elapsedMin().toFixed(1)), config: values.config,
  threads: Number(values.threads), rounds: rounds.length, warmupMinutes: warm, samples: steady.length, limits,
  rss: { slopeMiBPerHour: rssSlope, min: Math.min(...rssSteady), max: Math.max(...rssSteady), first: rounds[0]?.rssMiB },
  allocator: { slopeMiBPerHour: cacheSlope },
  liveTensors: { afterRounds: rounds.map((r) => r.liveTensors), slopePerHour: liveSlope },
  knnTop1: readFileSync(join(dir, 'metrics.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l))
    .filter((m) => m.metric === 'knn_top1').map((m) => m.value),
  fails, series: samples,
};
writeFileSync(values.json, `${JSON.stringify(report, null, 1)}\n`);
console.log(`\n${rounds.length} rounds in ${report.minutes} min (${steady.length} samples after ${warm.toFixed(1)} min of warm-up):\n` +
  `  RSS ${report.rss.min.toFixed(0)}-${report.rss.max.toFixed(0)} MiB, slope ${rssSlope.toFixed(1)} MiB/h (limit ${limits.rssMiBPerHour})\n` +
  `  allocator's holdings slope ${cacheSlope.toFixed(1)} MiB/h (limit ${limits.cacheMiBPerHour})\n` +
  `  live tensors after each round: ${report.liveTensors.afterRounds.join(' ')}\n` +
  `  written to ${values.json}${fails.length ? `\nFAIL: ${fails.join('; ')}` : '\nnothing grows'}`);
if (!values.out) rmSync(dir, { recursive: true, force: true });
process.exit(fails.length ? 1 : 0);
