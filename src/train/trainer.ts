// `swav train`: self-supervised pretraining in a run directory, with the method the config names (src/methods).
// Checkpoints every epoch (and on Ctrl-C or a time limit) hold everything needed to continue exactly as an
// uninterrupted run would: model, momentum buffers, the method's state, RNG state, epoch and iteration. Running
// again on the same directory resumes.
import { accessSync, constants, existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/tensor.js';
import { architectures, type ResNet } from '../models/resnet.js';
import { SGD } from '../optim/sgd.js';
import { LARC } from '../optim/larc.js';
import { cosineSchedule } from '../optim/schedule.js';
import { IterationClock, decisionIteration, fitEpochs } from './budget.js';
import { AUTOCAST_DTYPE, createMethod, type Amp, type MethodBatch, type TrainingMethod } from '../methods/index.js';
import { singleProcess, type ProcessGroup } from '../dist/group.js';
import { distEnv, type DistEnv } from '../dist/env.js';
import { availableBackends, initProcessGroup, type C10dGroup } from '../dist/c10d.js';
import { DistributedDataParallel } from '../dist/ddp.js';
import { convertSyncBatchNorm } from '../dist/sync_batch_norm.js';
import { openDataset, type Dataset } from '../data/datasets.js';
import { MultiCropLoader } from '../data/loader.js';
import type { MultiCropConfig } from '../data/multicrop.js';
import { evaluateFeatures } from './evaluation.js';
import { RunRecords } from './records.js';
import type { Config } from './config.js';

export class TrainingError extends Error {}

export interface TrainEvents {
  /** Human-readable progress (the CLI prints it to stderr). */
  log?: (line: string) => void;
  /** A progress line to redraw in place (a terminal), or null to end it. */
  progress?: (line: string | null) => void;
}

export interface TrainResult {
  epochsDone: number;
  iterations: number;
  interrupted: boolean;
  knnTop1?: number;
  linearTop1?: number;
}

export const CHECKPOINT = 'checkpoint.pth';

export function multiCropConfig(c: Config): MultiCropConfig {
  const s = c.crops.jitter_strength;
  return {
    nmbCrops: c.crops.nmb_crops,
    sizeCrops: c.crops.size_crops,
    minScaleCrops: c.crops.min_scale_crops,
    maxScaleCrops: c.crops.max_scale_crops,
    ratio: [3 / 4, 4 / 3],
    flipP: c.crops.flip_p,
    jitterP: c.crops.jitter_p,
    jitter: [0.8 * s, 0.8 * s, 0.8 * s, 0.2 * s],
    grayscaleP: c.crops.grayscale_p,
    blurP: c.crops.blur_p,
    blurRadius: [c.crops.blur_radius[0], c.crops.blur_radius[1]],
    mean: c.crops.mean,
    std: c.crops.std,
  };
}

/** The model a config describes (trunk, projection head, prototypes). */
export function buildModel(c: Config): ResNet {
  return architectures[c.model.arch]({
    numClasses: 0,
    stem: c.model.stem,
    stemStride: c.model.stem_stride,
    width: c.model.width ?? undefined,
    inChannels: c.model.in_channels,
    normalize: true,
    hiddenMlp: c.model.hidden_mlp,
    outputDim: c.model.feat_dim,
    nmbPrototypes: c.model.nmb_prototypes,
  });
}

interface Progress {
  epoch: number;
  /** Iterations done within `epoch`. */
  epochIteration: number;
  iteration: number;
}

/**
 * The checkpoint: rank 0 writes the model, optimizer, progress and its method state; each other rank its own
 * method state (SwAV's queue, a memory bank) beside it in rank<r>.pth, written first, so that a checkpoint.pth
 * always has its ranks' files.
 */
function saveCheckpoint(r: Run): void {
  const { dir, c, model, sgd, method, progress: p, group, c10d } = r;
  torch.tidy(() => {
    if (group.rank > 0) torch.save(method.state(), join(dir, `rank${group.rank}.pth`));
    c10d?.barrier();
    if (group.rank > 0) return;
    torch.save(
      {
        epoch: p.epoch,
        epoch_iteration: p.epochIteration,
        iteration: p.iteration,
        state_dict: new Map(Object.entries(model.stateDict())),
        optimizer: sgd.torchStateDict(),
        ...method.state(),
        rng_state: torch.getRngState(),
        bad_files: [...r.loader.badFiles],
        world_size: group.worldSize,
        schedule_epochs: r.epochs,
        config: JSON.stringify(c),
      },
      join(dir, CHECKPOINT),
    );
  });
}

/** Restores model, optimizer, the method's state, RNG and bad files; returns the progress and the saved config. */
function loadCheckpoint(
  dir: string,
  model: ResNet,
  sgd: SGD,
  method: TrainingMethod,
  badFiles: Set<string>,
  group: ProcessGroup,
): { progress: Progress; config: Config; scheduleEpochs: number | null } {
  return torch.tidy(() => {
    const ck = torch.load(join(dir, CHECKPOINT));
    const saved = ck.world_size ?? 1;
    if (saved !== group.worldSize) {
      throw new TrainingError(
        `${dir} was trained by ${saved} process${saved > 1 ? 'es' : ''}, this run has ${group.worldSize}: each process's share of ` +
          `the data and its queue or memory bank belong to that number; resume with ${saved}, or set run.out to another directory`,
      );
    }
    model.loadStateDict(ck.state_dict);
    sgd.loadTorchStateDict(ck.optimizer);
    method.loadState(group.rank > 0 ? torch.load(join(dir, `rank${group.rank}.pth`)) : ck);
    torch.setRngState(ck.rng_state);
    for (const f of ck.bad_files ?? []) badFiles.add(f);
    return {
      progress: { epoch: ck.epoch, epochIteration: ck.epoch_iteration, iteration: ck.iteration },
      config: JSON.parse(ck.config),
      scheduleEpochs: typeof ck.schedule_epochs === 'number' ? ck.schedule_epochs : null,
    };
  });
}

const fmtTime = (s: number) =>
  s >= 3600
    ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`
    : `${Math.floor(s / 60)}m${String(Math.floor(s % 60)).padStart(2, '0')}s`;

/** How many rows of a batch pick (argmax) each prototype. */
function prototypeCounts(scores: Tensor): number[] {
  return torch.tidy(
    () =>
      torch
        .zeros([scores.shape[1]], { device: scores.device })
        .scatterAdd(0, scores.argmax(1), torch.ones([scores.shape[0]], { device: scores.device }))
        .tolist() as number[],
  );
}

/** Entropy of a batch's prototype counts, over ln K: 1 when all are used evenly, 0 when one is. */
function usageEntropy(counts: number[]): number {
  const n = counts.reduce((a, b) => a + b, 0);
  const h = counts.reduce((acc, c) => (c > 0 ? acc - (c / n) * Math.log(c / n) : acc), 0);
  return h / Math.log(counts.length);
}

/**
 * run.amp as used: 'auto' is bf16 on a CPU with native bf16, else fp32 (also on CUDA: fp16 there would need the
 * dynamic loss scaling of the reference's apex O1, which is not built yet).
 */
export function resolveAmp(amp: Config['run']['amp'], deviceType: 'cpu' | 'cuda'): Amp {
  if (amp === 'auto') return deviceType === 'cpu' && torch.cpu.hasNativeBf16() ? 'bf16' : 'fp32';
  if (amp === 'fp16' && deviceType === 'cpu') throw new TrainingError('run.amp: fp16 autocast needs CUDA; on a CPU use bf16, fp32 or auto');
  return amp;
}

/** The augmentation key of the pass that prepares a method (epoch 0's order, crops of their own). */
const PREPARE_PASS = -1;

/** Everything one invocation of train() works with. */
interface Run {
  c: Config;
  dir: string;
  log: (line: string) => void;
  ev: TrainEvents;
  metric: (m: Record<string, unknown>) => void;
  /** metrics.jsonl and the TensorBoard events (rank 0; null on the others). */
  records: RunRecords | null;
  dataset: Dataset;
  model: ResNet;
  sgd: SGD;
  loader: MultiCropLoader;
  /** The number of epochs; null until optim.epochs: auto decides it. */
  epochs: number | null;
  /** The learning rate of each iteration (until the decision: the warmup's alone). */
  schedule: Float64Array;
  /** When train() was called (run.budget_minutes counts from there). */
  called: number;
  /** Until the decision: this invocation's iteration times, and the first epoch's start-of-epoch seconds. */
  clock: IterationClock | null;
  epochOverhead: number;
  method: TrainingMethod;
  amp: Amp;
  progress: Progress;
  /** When this invocation started training, and at which iteration (for the ETA). */
  started: number;
  firstIteration: number;
  /** Images skipped as unreadable in this invocation; seconds waited for the gradients' all-reduce since the last metrics line. */
  counts: { skipped: number; syncSeconds: number };
  interrupted: boolean;
  timeUp: boolean;
  /** The processes of the run (one alone); the c10d group and the gradient reducer when there are several. */
  group: ProcessGroup;
  c10d: C10dGroup | null;
  ddp: DistributedDataParallel | null;
}

/** Makes the run directory, or says in one line why it cannot be used (before any work is done). */
function usableRunDirectory(dir: string): void {
  if (existsSync(dir) && !statSync(dir).isDirectory()) throw new TrainingError(`run.out ${dir} is a file: set run.out to a directory`);
  try {
    mkdirSync(dir, { recursive: true });
    accessSync(dir, constants.W_OK);
  } catch (e) {
    throw new TrainingError(
      `run.out ${dir} cannot be written (${(e as NodeJS.ErrnoException).code}): make it writable, or set run.out to another directory`,
    );
  }
}

/** The schedule of `epochs` epochs; for an undecided number, its warmup alone (base_lr follows). */
function learningRates(c: Config, itersPerEpoch: number, epochs: number | null): Float64Array {
  const o = c.optim;
  return cosineSchedule({
    baseLr: o.base_lr,
    finalLr: o.final_lr,
    epochs: epochs ?? o.warmup_epochs,
    itersPerEpoch,
    warmupEpochs: o.warmup_epochs,
    startWarmup: o.start_warmup,
  });
}

function setup(c: Config, ev: TrainEvents, c10d: C10dGroup | null, syncBn: C10dGroup | null): Run {
  const group: ProcessGroup = c10d ?? singleProcess;
  const log = ev.log ?? (() => {});
  const dir = c.run.out;
  const deviceType = c.run.device.startsWith('cuda') ? ('cuda' as const) : ('cpu' as const);
  const amp = resolveAmp(c.run.amp, deviceType);
  if (deviceType === 'cuda' && !torch.cuda.isAvailable()) {
    throw new TrainingError(
      `run.device ${c.run.device}: this libtorch has no CUDA (or no GPU is visible): use run.device=cpu, or build the addon against a CUDA libtorch`,
    );
  }
  if (c.run.threads > 0) torch.setNumThreads(c.run.threads);
  let records: RunRecords | null = null; // made with the run directory; rank 0 alone writes the run's records
  const metric = (m: Record<string, unknown>) => records?.record(m);
  torch.manualSeed(c.run.seed);
  const dataset: Dataset = openDataset({ type: c.data.type, path: c.data.path!, split: c.data.split });
  const channels = dataset.kind === 'tensor' ? dataset.images.shape[1] : 3;
  if (channels !== c.model.in_channels) {
    if (dataset.kind === 'tensor') dataset.images.dispose();
    throw new TrainingError(`${dataset.name} has ${channels}-channel images but model.in_channels is ${c.model.in_channels}`);
  }
  const model = buildModel(c);
  model.to({ device: c.run.device, memoryFormat: c.run.channels_last ? 'channelsLast' : undefined });
  if (syncBn) convertSyncBatchNorm(model, syncBn);
  // rank 0's weights to every rank, then gradients averaged in buckets during backward (after to(): it replaces the tensors)
  const ddp = c10d ? new DistributedDataParallel(c10d, model.parameters(), model.buffers()) : null;
  const sgd = new SGD(model.parameters(), { lr: c.optim.base_lr, momentum: c.optim.momentum, weightDecay: c.optim.wd });
  const optimizer = c.optim.larc ? new LARC(sgd, { trustCoefficient: c.optim.trust_coefficient, clip: false }) : sgd;
  const counts = { skipped: 0, syncSeconds: 0 };
  const loader = new MultiCropLoader(dataset, {
    batchSize: c.optim.batch_size,
    seed: c.run.seed,
    crops: multiCropConfig(c),
    workers: c.data.workers,
    corruptImages: c.data.corrupt_images,
    prefetch: c.data.prefetch,
    rank: group.rank,
    worldSize: group.worldSize,
    onSkip: (file, reason) => {
      counts.skipped++;
      log(`warning: skipped an unreadable image: ${file} (${reason})`);
      metric({ type: 'skip', file, reason });
    },
  });
  const epochs = c.optim.epochs === 'auto' ? null : c.optim.epochs;
  let method: TrainingMethod | undefined;
  try {
    method = createMethod(c, {
      model,
      optimizer,
      amp: AUTOCAST_DTYPE[amp],
      deviceType,
      device: c.run.device,
      group,
      syncGradients: ddp ? () => timed(counts, () => ddp.finishGradSync()) : undefined,
      datasetSize: dataset.length,
      batchSize: c.optim.batch_size,
      itersPerEpoch: loader.itersPerEpoch,
      nmbCrops: c.crops.nmb_crops,
      featDim: c.model.feat_dim,
      log,
    });
    usableRunDirectory(dir); // once data, model and method are known to be fine: a mistake leaves no directory behind
    if (group.rank === 0) records = new RunRecords(dir, { tensorboard: c.run.tensorboard });
  } catch (e) {
    method?.dispose();
    loader.close(); // what setup made is released before the error goes up (the library's callers go on living)
    ddp?.dispose();
    model.dispose();
    if (dataset.kind === 'tensor') dataset.images.dispose();
    throw e;
  }
  return {
    c,
    dir,
    log,
    ev,
    metric,
    records,
    dataset,
    model,
    sgd,
    loader,
    epochs,
    schedule: learningRates(c, loader.itersPerEpoch, epochs),
    method,
    amp,
    progress: { epoch: 0, epochIteration: 0, iteration: 0 },
    called: performance.now(),
    clock: null,
    epochOverhead: 0,
    started: 0,
    firstIteration: 0,
    counts,
    interrupted: false,
    timeUp: false,
    group,
    c10d,
    ddp,
  };
}

/** Continues from the run directory's checkpoint, or starts the run there. */
function resumeOrStart(r: Run): void {
  const { c, dir } = r;
  if (existsSync(join(dir, CHECKPOINT))) {
    const was = loadCheckpoint(dir, r.model, r.sgd, r.method, r.loader.badFiles, r.group);
    const wasMethod = was.config.method ?? 'swav';
    if (wasMethod !== c.method) {
      throw new TrainingError(
        `${dir} holds a ${wasMethod} run, but the config's method is ${c.method}: set run.out to another directory, or method: ${wasMethod}`,
      );
    }
    const changed = (['model', c.method, 'crops', 'optim'] as const).filter(
      (s) => JSON.stringify((was.config as any)[s]) !== JSON.stringify((c as any)[s]),
    );
    if (changed.length) r.log(`note: the config's ${changed.join(', ')} differ from the checkpoint's; continuing with the new values`);
    r.progress = was.progress;
    if (c.optim.epochs === 'auto' && was.scheduleEpochs !== null) setEpochs(r, was.scheduleEpochs);
    r.log(`resuming ${dir} at epoch ${r.progress.epoch + 1}, iteration ${r.progress.epochIteration} of ${r.loader.itersPerEpoch}`);
  } else {
    if (r.group.rank === 0) writeFileSync(join(dir, 'config.yaml'), toYaml(c));
    r.log(
      `training ${c.model.arch} (${(r.model.numParameters() / 1e6).toFixed(2)}M parameters) with ${c.method} on ${r.dataset.name}: ` +
        `${r.dataset.length} images, ${r.loader.itersPerEpoch} iterations of ${c.optim.batch_size}${r.group.worldSize > 1 ? ` x ${r.group.worldSize} processes` : ''} per epoch, ${r.epochs !== null ? `${r.epochs} epochs` : `as many epochs as fit in ${c.run.budget_minutes} minutes`}, ${r.amp}` +
        `${c.run.channels_last ? ' channels_last' : ''}; run directory ${dir}`,
    );
  }
}

/** The loader's batches with their crops on the training device (freed once the consumer moves on). */
async function* deviceBatches(
  r: Run,
  epoch: number,
  start: number,
  augmentEpoch = epoch,
): AsyncGenerator<MethodBatch & { waitSeconds: number }> {
  const memoryFormat = r.c.run.channels_last ? ('channelsLast' as const) : undefined;
  for await (const b of r.loader.batches(epoch, start, augmentEpoch)) {
    const crops = b.crops.map((t) => t.to({ device: r.c.run.device, memoryFormat }));
    try {
      yield { crops, indices: b.indices, waitSeconds: b.waitSeconds };
    } finally {
      crops.forEach((t) => t.dispose());
      b.crops.forEach((t) => t.dispose());
    }
    if (r.interrupted) return;
  }
}

interface EpochStats {
  window: { loss: number; n: number; wait: number; t0: number };
  loss: number;
  n: number;
  start: number;
  /** The epoch's prototype picks so far (this process's batches), for the usage histogram of its metrics. */
  usage: number[];
}

/** One training iteration through the method, then its bookkeeping: progress, metrics, warnings, limits. */
function iterate(r: Run, batch: MethodBatch & { waitSeconds: number }, epoch: number, s: EpochStats): void {
  const { c } = r;
  const perEpoch = r.loader.itersPerEpoch;
  const it = r.progress.iteration;
  const lr = r.schedule[it] ?? (r.epochs === null ? r.c.optim.base_lr : r.schedule[r.schedule.length - 1]);
  if (it === 0) r.records?.crops('train/crops', batch.crops, c.crops.mean, c.crops.std, 0); // the augmentation, to be looked at
  const { loss, scores, warning } = r.method.iteration(batch, lr, it, r.progress.epochIteration);
  try {
    if (!Number.isFinite(loss)) {
      throw new TrainingError(
        `the loss is ${loss} at epoch ${epoch + 1}, iteration ${r.progress.epochIteration + 1}: training stopped. ` +
          `The last good checkpoint (after epoch ${r.progress.epoch}) is kept in ${r.dir}. Usual causes: a learning rate too high ` +
          `(optim.base_lr), ${r.method.nanHint ? `${r.method.nanHint}, ` : ''}broken input data.`,
      );
    }
    r.progress = { epoch, epochIteration: r.progress.epochIteration + 1, iteration: it + 1 };
    const counts = prototypeCounts(scores);
    s.usage = counts.map((c, k) => c + (s.usage[k] ?? 0));
    s.window.loss += loss;
    s.window.n++;
    s.window.wait += batch.waitSeconds;
    s.loss += loss;
    s.n++;
    if (warning) {
      r.log(warning);
      r.metric({ type: 'warning', message: warning });
    }
    if (r.progress.epochIteration % c.run.log_every === 0 || r.progress.epochIteration === perEpoch) {
      const seconds = (performance.now() - s.window.t0) / 1000;
      r.metric({
        type: 'train',
        epoch: epoch + 1,
        iteration: it + 1,
        loss: s.window.loss / s.window.n,
        lr,
        samples_per_s: (s.window.n * c.optim.batch_size * r.group.worldSize) / seconds,
        data_wait_s: s.window.wait / s.window.n,
        prototype_entropy: usageEntropy(counts),
        ...(r.ddp ? { grad_sync_s: r.counts.syncSeconds / s.window.n, processes: r.group.worldSize } : {}),
      });
      r.counts.syncSeconds = 0;
      s.window = { loss: 0, n: 0, wait: 0, t0: performance.now() };
    }
  } finally {
    scores.dispose();
  }
  if (r.clock) calibrate(r, r.clock);
  const elapsed = (performance.now() - r.started) / 1000;
  const remaining =
    r.epochs === null
      ? c.run.budget_minutes * 60 - (performance.now() - r.called) / 1000
      : ((r.epochs * perEpoch - r.progress.iteration) * elapsed) / (r.progress.iteration - r.firstIteration);
  const bar = Math.round((r.progress.epochIteration / perEpoch) * 20);
  r.ev.progress?.(
    `epoch ${epoch + 1}/${r.epochs ?? '?'} [${'#'.repeat(bar)}${'.'.repeat(20 - bar)}] ${r.progress.epochIteration}/${perEpoch} ` +
      `loss ${(s.loss / s.n).toFixed(4)} lr ${lr.toPrecision(3)} ETA ${fmtTime(remaining)}`,
  );
  if (c.run.max_minutes > 0 && elapsed > c.run.max_minutes * 60) r.timeUp = true;
  if (r.c10d) agree(r, r.c10d);
}

/** fn, its wall time added to counts.syncSeconds (what the gradients' all-reduce leaves to wait for after backward). */
function timed(counts: { syncSeconds: number }, fn: () => void): void {
  const t0 = performance.now();
  fn();
  counts.syncSeconds += (performance.now() - t0) / 1000;
}

/** Every process stops at the same iteration: Ctrl-C or the time limit on any one stops them all. */
function agree(r: Run, c10d: C10dGroup): void {
  torch.tidy(() => {
    const flags = c10d.allReduce_(torch.tensor([r.interrupted ? 1 : 0, r.timeUp ? 1 : 0]), 'max').tolist() as number[];
    r.interrupted = flags[0] > 0;
    r.timeUp = flags[1] > 0;
  });
}

/** optim.epochs: auto: times the iteration; at the decision iteration fixes the epochs (rank 0's, for every rank). */
function calibrate(r: Run, clock: IterationClock): void {
  clock.tick();
  const perEpoch = r.loader.itersPerEpoch;
  if (r.progress.iteration < decisionIteration(perEpoch)) return;
  const secondsPerIteration = clock.secondsPerIteration;
  const fit = fitEpochs({
    budgetSeconds: r.c.run.budget_minutes * 60,
    elapsedSeconds: (performance.now() - r.called) / 1000,
    secondsPerIteration,
    epochOverheadSeconds: r.epochOverhead,
    itersPerEpoch: perEpoch,
    iterationsDone: r.progress.iteration,
  });
  const epochs = torch.tidy(() => r.group.broadcast_(torch.tensor([Math.max(fit, r.c.optim.warmup_epochs)], { dtype: 'int64' }), 0).item());
  setEpochs(r, epochs);
  const minutes = (epochs * perEpoch * secondsPerIteration + epochs * r.epochOverhead) / 60;
  r.log(
    `\noptim.epochs auto: ${(secondsPerIteration * 1000).toFixed(0)} ms per iteration, ${perEpoch} per epoch: ${epochs} epochs ` +
      `(~${minutes.toFixed(1)} of run.budget_minutes ${r.c.run.budget_minutes}, setup included)` +
      (fit < r.c.optim.warmup_epochs ? `; the budget fits ${fit}, fewer than optim.warmup_epochs: the schedule will overrun it` : ''),
  );
  r.metric({
    type: 'schedule',
    epochs,
    seconds_per_iteration: secondsPerIteration,
    iterations_per_epoch: perEpoch,
    budget_minutes: r.c.run.budget_minutes,
  });
}

/** Fixes the number of epochs and the schedule over them (decided, or from the checkpoint). */
function setEpochs(r: Run, epochs: number): void {
  r.epochs = epochs;
  r.schedule = learningRates(r.c, r.loader.itersPerEpoch, epochs);
  r.clock = null;
}

/** One epoch (or the rest of one), then its checkpoint, and kNN when asked. */
async function runEpoch(r: Run, epoch: number): Promise<void> {
  const { c } = r;
  const t0 = performance.now();
  r.method.startEpoch(epoch, r.progress.epochIteration);
  if (r.epochs === null) r.epochOverhead = (performance.now() - t0) / 1000;
  const s: EpochStats = { window: { loss: 0, n: 0, wait: 0, t0: performance.now() }, loss: 0, n: 0, start: performance.now(), usage: [] };
  for await (const batch of deviceBatches(r, epoch, r.progress.epochIteration)) {
    iterate(r, batch, epoch, s);
    if (r.timeUp || r.interrupted) break;
  }
  const finished = r.progress.epochIteration === r.loader.itersPerEpoch;
  if (finished) r.progress = { epoch: epoch + 1, epochIteration: 0, iteration: r.progress.iteration };
  saveCheckpoint(r);
  r.ev.progress?.(null);
  if (!finished) return;
  const secs = (performance.now() - s.start) / 1000;
  r.metric({
    type: 'epoch',
    epoch: epoch + 1,
    loss: s.loss / Math.max(1, s.n),
    seconds: secs,
    skipped_images: r.counts.skipped,
    prototype_usage: s.usage,
  });
  r.log(`epoch ${epoch + 1}/${r.epochs}: loss ${(s.loss / Math.max(1, s.n)).toFixed(4)}, ${secs.toFixed(0)} s`);
  if (c.run.knn_every > 0 && (epoch + 1) % c.run.knn_every === 0 && epoch + 1 < r.epochs!) await knn(r, epoch + 1);
}

async function knn(r: Run, epoch: number, final = false): Promise<{ knnTop1: number; linearTop1?: number }> {
  return evaluateFeatures(r.model, r.c, r.log, r.metric, epoch, { group: r.group, final });
}

/** The method's pass before the first epoch (a method whose state came from the checkpoint skips it). */
async function prepare(r: Run): Promise<void> {
  if (!r.method.prepare) return;
  const t0 = performance.now();
  await r.method.prepare(deviceBatches(r, 0, 0, PREPARE_PASS));
  const secs = (performance.now() - t0) / 1000;
  if (secs > 1) r.log(`${r.c.method}: prepared in ${secs.toFixed(0)} s`);
}

/**
 * The process group of a job started by `swav launch`, torchrun or srun (null alone), and SyncBatchNorm's group;
 * threads default to this machine's cores shared by its processes.
 */
async function joinJob(c: Config, job: DistEnv | null): Promise<{ c10d: C10dGroup | null; syncBn: C10dGroup | null }> {
  if (!job) return { c10d: null, syncBn: null };
  if (c.run.threads === 0 && !process.env.OMP_NUM_THREADS)
    torch.setNumThreads(Math.max(1, Math.floor(availableParallelism() / job.localWorldSize)));
  const backend =
    c.run.dist_backend !== 'auto'
      ? c.run.dist_backend
      : c.run.device.startsWith('cuda') && availableBackends().includes('nccl')
        ? 'nccl'
        : 'gloo';
  const group = await initProcessGroup({
    backend,
    rank: job.rank,
    worldSize: job.worldSize,
    masterAddr: job.masterAddr,
    masterPort: job.masterPort,
    timeoutSeconds: c.run.dist_timeout,
  });
  const size = c.model.sync_bn_group_size;
  const syncBn = !c.model.sync_bn ? null : size > 0 && size < job.worldSize ? await group.subgroups(size) : group;
  return { c10d: group, syncBn };
}

/** In a job, `run.device: cuda` is this process's own GPU, cuda:LOCAL_RANK (as torchrun's scripts set it). */
function onLocalDevice(c: Config, job: DistEnv | null): Config {
  return job && c.run.device === 'cuda' ? { ...c, run: { ...c.run, device: `cuda:${job.localRank}` } } : c;
}

export async function train(config: Config, ev: TrainEvents = {}): Promise<TrainResult> {
  const job = distEnv();
  const c = onLocalDevice(config, job);
  const { c10d, syncBn } = await joinJob(c, job);
  const r = setup(c, c10d && c10d.rank > 0 ? {} : ev, c10d, syncBn); // rank 0 alone reports
  const onSigint = () => {
    if (r.interrupted) process.exit(130);
    r.interrupted = true;
    r.log('\ninterrupted: saving a checkpoint after this iteration (Ctrl-C again to quit at once)');
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint); // SLURM's preemption, and swav launch passing Ctrl-C on
  let trained = false;
  try {
    resumeOrStart(r);
    r.model.train();
    await prepare(r);
    r.started = performance.now();
    r.firstIteration = r.progress.iteration;
    if (r.epochs === null) r.clock = new IterationClock();
    const first = r.progress.epoch;
    const lastEpoch = () => Math.min(r.epochs ?? Infinity, c.run.stop_after_epochs > 0 ? first + c.run.stop_after_epochs : Infinity);
    for (let epoch = first; epoch < lastEpoch() && !r.interrupted && !r.timeUp; epoch++) {
      trained = true;
      await runEpoch(r, epoch);
    }
  } finally {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
    r.ddp?.dispose();
    r.loader.close();
    if (r.dataset.kind === 'tensor') r.dataset.images.dispose();
  }
  if (r.interrupted) {
    r.log(
      trained
        ? `saved ${join(r.dir, CHECKPOINT)} at epoch ${r.progress.epoch + 1}, iteration ${r.progress.epochIteration}; run the same command to resume`
        : 'interrupted before the first iteration: nothing to save',
    );
  }
  if (r.timeUp)
    r.log(`run.max_minutes (${c.run.max_minutes}) reached: stopped after ${r.progress.iteration} iterations; the checkpoint is saved`);
  const result: TrainResult = { epochsDone: r.progress.epoch, iterations: r.progress.iteration, interrupted: r.interrupted };
  if (c.run.knn_eval && !r.interrupted && (r.progress.epoch === r.epochs || r.timeUp))
    Object.assign(result, await knn(r, r.progress.epoch, true));
  r.c10d?.destroy();
  await r.records?.close();
  r.method.dispose();
  r.model.dispose();
  for (const b of r.sgd.momentumBuffers.values()) b.dispose();
  return result;
}
