#!/usr/bin/env node
// npm run soak -- [--minutes 60] [--threads 1] [--out DIR] [--json FILE]: trains the quickstart's model in one
// process for as long as asked, one epoch per round (each round resumes from the last checkpoint, trains an
// epoch, evaluates with kNN and saves), sampling the RSS, the live-tensor count and the caching allocator every
// minute from a thread of its own (training keeps the main thread's event loop busy for minutes at a time). It
// then fits a line to each over the samples after the warm-up (the first two rounds, while the allocator reaches
// its peak) and fails if one grows: the live tensors must come back to the same count after every round, and the
// RSS and the allocator's holdings must not rise by more than `limits` allows.
import { parseArgs } from 'node:util';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { torch } from '../dist/src/index.js';

const MiB = 1024 * 1024;

/** The RSS, live tensors and the allocator now: all of the process, so any thread reads them. */
function measure(kind, started) {
  const cache = torch.cpu.cacheStats();
  return {
    minute: Number(((Date.now() - started) / 60_000).toFixed(3)),
    kind,
    rssMiB: process.memoryUsage.rss() / MiB,
    liveTensors: torch.liveTensors(),
    allocatorMiB: (cache.liveBytes + cache.idleBytes) / MiB,
  };
}

/** Least-squares slope of ys over xs. */
function slope(xs, ys) {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i] - mx) * (ys[i] - my);
    sxx += (xs[i] - mx) ** 2;
  }
  return sxx > 0 ? sxy / sxx : 0;
}

/** The sampler thread: a sample every sampleMs into the log; all of them back when the main thread asks. */
function sampler({ sampleMs, started, logFile }) {
  const samples = [];
  const timer = setInterval(() => {
    const s = measure('minute', started);
    samples.push(s);
    appendFileSync(logFile, `${JSON.stringify(s)}\n`);
  }, sampleMs);
  parentPort.once('message', () => {
    clearInterval(timer);
    parentPort.postMessage(samples);
  });
}

async function main() {
  const { loadConfig } = await import('../dist/src/train/config.js');
  const { train } = await import('../dist/src/train/trainer.js');
  const { machineInfo } = await import('../dist/src/cli/machine.js');
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
  // Growth allowed, as what a line fitted over the steady samples would add in an hour: RSS moves with the phase
  // of the round a sample lands in (training, extraction, garbage not yet collected), hence a fit over many.
  const limits = { rssMiBPerHour: 64, allocatorMiBPerHour: 64, liveTensorsAfterRounds: 0 };

  const dir = values.out ?? mkdtempSync(join(tmpdir(), 'swav-soak-'));
  const logFile = join(dir, 'soak.log');
  // A schedule that never ends: each round is one more epoch of the same cosine, with kNN after every epoch.
  const config = loadConfig(values.config, [
    `run.out=${dir}`,
    'optim.epochs=100000',
    'run.budget_minutes=0',
    'run.max_minutes=0',
    'run.stop_after_epochs=1',
    'run.knn_eval=true',
    'run.knn_every=1',
    'run.linear_eval=false',
    `run.threads=${values.threads}`,
  ]);
  const started = Date.now();
  const elapsedMin = () => (Date.now() - started) / 60_000;
  const thread = new Worker(new URL(import.meta.url), { workerData: { sampleMs, started, logFile } });
  console.log(`soak: ${minutes} min of the quickstart's training in ${dir}, a sample every ${sampleMs / 1000} s`);
  const rounds = [];
  while (elapsedMin() < minutes) {
    const r = await train(config, { log: (l) => appendFileSync(logFile, `${l}\n`) });
    const s = { ...measure('round', started), epoch: r.epochsDone };
    rounds.push(s);
    appendFileSync(logFile, `${JSON.stringify(s)}\n`);
    console.log(
      `round ${rounds.length}: epoch ${r.epochsDone}, ${s.minute.toFixed(1)} min, RSS ${s.rssMiB.toFixed(0)} MiB, ` +
        `live tensors ${s.liveTensors}, allocator ${s.allocatorMiB.toFixed(0)} MiB`,
    );
  }
  thread.postMessage('stop');
  const minuteSamples = await new Promise((resolve) => thread.once('message', resolve));
  await thread.terminate();

  const warm = rounds.length > 2 ? rounds[1].minute : 0;
  const steady = [...minuteSamples, ...rounds].filter((s) => s.minute > warm).sort((a, b) => a.minute - b.minute);
  const hours = steady.map((s) => s.minute / 60);
  const rssSlope = slope(
    hours,
    steady.map((s) => s.rssMiB),
  );
  const allocatorSlope = slope(
    hours,
    steady.map((s) => s.allocatorMiB),
  );
  const afterRounds = rounds.map((r) => r.liveTensors);
  const fails = [];
  if (rounds.length < 4) fails.push(`only ${rounds.length} rounds: soak for longer to judge the slopes`);
  if (rssSlope > limits.rssMiBPerHour) fails.push(`RSS grows ${rssSlope.toFixed(1)} MiB per hour`);
  if (allocatorSlope > limits.allocatorMiBPerHour) fails.push(`the allocator's holdings grow ${allocatorSlope.toFixed(1)} MiB per hour`);
  if (Math.max(...afterRounds) > limits.liveTensorsAfterRounds) fails.push(`live tensors left after rounds: ${afterRounds.join(' ')}`);
  const rss = steady.map((s) => s.rssMiB);
  const report = {
    machine: machineInfo(),
    date: new Date().toISOString(),
    minutes: Number(elapsedMin().toFixed(1)),
    config: values.config,
    threads: Number(values.threads),
    rounds: rounds.length,
    warmupMinutes: warm,
    steadySamples: steady.length,
    limits,
    rss: { slopeMiBPerHour: rssSlope, min: Math.min(...rss), max: Math.max(...rss) },
    allocator: { slopeMiBPerHour: allocatorSlope },
    liveTensors: {
      afterRounds,
      slopePerHour: slope(
        hours,
        steady.map((s) => s.liveTensors),
      ),
    },
    knnTop1: readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l))
      .filter((m) => m.metric === 'knn_top1')
      .map((m) => m.value),
    fails,
    roundSamples: rounds,
    samples: minuteSamples,
  };
  writeFileSync(values.json, `${JSON.stringify(report, null, 1)}\n`);
  console.log(
    `\n${rounds.length} rounds in ${report.minutes} min; ${steady.length} samples after ${warm.toFixed(1)} min of warm-up:\n` +
      `  RSS ${report.rss.min.toFixed(0)}-${report.rss.max.toFixed(0)} MiB, slope ${rssSlope.toFixed(1)} MiB/h (limit ${limits.rssMiBPerHour})\n` +
      `  the allocator's holdings: slope ${allocatorSlope.toFixed(1)} MiB/h (limit ${limits.allocatorMiBPerHour})\n` +
      `  live tensors after each round: ${afterRounds.join(' ')}\n` +
      `  written to ${values.json}${fails.length ? `\nFAIL: ${fails.join('; ')}` : '\nnothing grows'}`,
  );
  if (!values.out) rmSync(dir, { recursive: true, force: true });
  return fails.length ? 1 : 0;
}

if (isMainThread) process.exit(await main());
else sampler(workerData);
