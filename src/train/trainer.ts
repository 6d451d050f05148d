// `swav train`: SwAV pretraining in a run directory. Checkpoints every epoch (and on Ctrl-C or a time limit)
// hold everything needed to continue exactly as an uninterrupted run would: model, momentum buffers, queue,
// RNG state, epoch and iteration. Running again on the same directory resumes.
import { appendFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { torch } from '../index.js';
import { Tensor } from '../torch/tensor.js';
import { architectures, type ResNet } from '../models/resnet.js';
import { SGD } from '../optim/sgd.js';
import { LARC } from '../optim/larc.js';
import { cosineSchedule } from '../optim/schedule.js';
import { SwAVQueue } from '../methods/swav.js';
import { openDataset, type Dataset } from '../data/datasets.js';
import { MultiCropLoader } from '../data/loader.js';
import type { MultiCropConfig } from '../data/multicrop.js';
import { knnTop1, datasetFeatures } from '../eval/knn.js';
import { AUTOCAST_DTYPE, swavStep, type Amp } from './step.js';
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
}

export const CHECKPOINT = 'checkpoint.pth';

export function multiCropConfig(c: Config): MultiCropConfig {
  const s = c.crops.jitter_strength;
  return {
    nmbCrops: c.crops.nmb_crops, sizeCrops: c.crops.size_crops, minScaleCrops: c.crops.min_scale_crops, maxScaleCrops: c.crops.max_scale_crops,
    ratio: [3 / 4, 4 / 3], flipP: c.crops.flip_p, jitterP: c.crops.jitter_p, jitter: [0.8 * s, 0.8 * s, 0.8 * s, 0.2 * s],
    grayscaleP: c.crops.grayscale_p, blurP: c.crops.blur_p, blurRadius: [c.crops.blur_radius[0], c.crops.blur_radius[1]],
    mean: c.crops.mean, std: c.crops.std,
  };
}

/** The model a config describes (trunk, projection head, prototypes). */
export function buildModel(c: Config): ResNet {
  return architectures[c.model.arch]({
    numClasses: 0, stem: c.model.stem, stemStride: c.model.stem_stride, width: c.model.width ?? undefined, inChannels: c.model.in_channels, normalize: true,
    hiddenMlp: c.model.hidden_mlp, outputDim: c.model.feat_dim, nmbPrototypes: c.model.nmb_prototypes,
  });
}

interface Progress {
  epoch: number;
  /** Iterations done within `epoch`. */
  epochIteration: number;
  iteration: number;
}

function saveCheckpoint(dir: string, c: Config, model: ResNet, sgd: SGD, queue: SwAVQueue | null, p: Progress, badFiles: Set<string>): void {
  torch.tidy(() => {
    const params = sgd.allParams();
    const state = new Map<number, unknown>();
    params.forEach((q, i) => {
      const b = sgd.momentumBuffers.get(q);
      if (b) state.set(i, new Map([['momentum_buffer', b]]));
    });
    const groups = sgd.paramGroups.map(({ params: ps, weightDecay, ...g }) => ({ ...g, weight_decay: weightDecay, params: ps.map((q) => params.indexOf(q)) }));
    torch.save({
      epoch: p.epoch, epoch_iteration: p.epochIteration, iteration: p.iteration,
      state_dict: new Map(Object.entries(model.stateDict())),
      optimizer: { state, param_groups: groups },
      queue: queue?.tensor ?? null, use_the_queue: queue?.useTheQueue ?? false,
      rng_state: torch.getRngState(),
      bad_files: [...badFiles],
      config: JSON.stringify(c),
    }, join(dir, CHECKPOINT));
  });
}

function loadCheckpoint(dir: string, model: ResNet, sgd: SGD, badFiles: Set<string>): { progress: Progress; queue: Tensor | null; useTheQueue: boolean; config: string } {
  return torch.tidy(() => {
    const ck = torch.load(join(dir, CHECKPOINT));
    model.loadStateDict(ck.state_dict);
    const state = new Map<number, Tensor>();
    for (const [i, s] of Object.entries<any>(ck.optimizer.state)) state.set(Number(i), s.momentum_buffer);
    sgd.loadStateDict({ state, paramGroups: ck.optimizer.param_groups.map(({ weight_decay, params: _p, ...g }: any) => ({ ...g, weightDecay: weight_decay })) });
    torch.setRngState(ck.rng_state);
    for (const f of ck.bad_files ?? []) badFiles.add(f);
    const queue = ck.queue instanceof Tensor ? torch.keep(ck.queue.clone()) : null;
    return {
      progress: { epoch: ck.epoch, epochIteration: ck.epoch_iteration, iteration: ck.iteration },
      queue, useTheQueue: ck.use_the_queue === true, config: ck.config,
    };
  });
}

const fmtTime = (s: number) => (s >= 3600 ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`
  : `${Math.floor(s / 60)}m${String(Math.floor(s % 60)).padStart(2, '0')}s`);

/** Entropy of the prototypes picked (argmax) by a batch, over ln K: 1 when all are used evenly, 0 when one is. */
function usageEntropy(scores: Tensor): number {
  return torch.tidy(() => {
    const K = scores.shape[1];
    const counts = torch.zeros([K]).scatterAdd(0, scores.argmax(1), torch.ones([scores.shape[0]]));
    const p = counts.div(scores.shape[0]);
    const h = p.mul(p.clampMin(1e-12).log()).sum().neg().item();
    return h / Math.log(K);
  });
}

/** kNN top-1 of the trunk's features: the eval split against the train split as memory. */
export async function evaluateKnn(model: ResNet, c: Config, log: (s: string) => void): Promise<number> {
  const t0 = performance.now();
  const opts = { device: c.run.device, mean: c.crops.mean, std: c.crops.std };
  const open = (split: string) => openDataset({ type: c.data.type, path: c.data.path!, split });
  const trainDs = open(c.data.eval_train_split);
  const testDs = open(c.data.eval_split);
  try {
    const train = await datasetFeatures(model, trainDs, opts);
    const test = await datasetFeatures(model, testDs, opts);
    const top1 = knnTop1(train.feats, train.labels, test.feats, test.labels, { k: c.run.knn_k, temperature: c.run.knn_temperature });
    train.feats.dispose();
    test.feats.dispose();
    log(`kNN (k=${c.run.knn_k}, T=${c.run.knn_temperature}) top-1 on ${testDs.name}: ${(100 * top1).toFixed(2)}% ` +
      `(${train.labels.length} train / ${test.labels.length} test images, ${((performance.now() - t0) / 1000).toFixed(0)} s)`);
    return top1;
  } finally {
    for (const ds of [trainDs, testDs]) if (ds.kind === 'tensor') ds.images.dispose();
  }
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

export async function train(c: Config, ev: TrainEvents = {}): Promise<TrainResult> {
  const log = ev.log ?? (() => {});
  const dir = c.run.out;
  const deviceType = c.run.device.startsWith('cuda') ? 'cuda' as const : 'cpu' as const;
  const amp = resolveAmp(c.run.amp, deviceType);
  mkdirSync(dir, { recursive: true });
  if (c.run.threads > 0) torch.setNumThreads(c.run.threads);
  const metricsFile = join(dir, 'metrics.jsonl');
  const metric = (m: Record<string, unknown>) => appendFileSync(metricsFile, `${JSON.stringify({ ...m, time: new Date().toISOString() })}\n`);
  const knn = async (epoch: number) => {
    const value = await evaluateKnn(model, c, log);
    metric({ type: 'eval', metric: 'knn_top1', value, epoch, k: c.run.knn_k, temperature: c.run.knn_temperature });
    return value;
  };

  torch.manualSeed(c.run.seed);
  const dataset: Dataset = openDataset({ type: c.data.type, path: c.data.path!, split: c.data.split });
  const channels = dataset.kind === 'tensor' ? dataset.images.shape[1] : 3;
  if (channels !== c.model.in_channels) {
    throw new TrainingError(`${dataset.name} has ${channels}-channel images but model.in_channels is ${c.model.in_channels}`);
  }
  const model = buildModel(c);
  model.to({ device: c.run.device, memoryFormat: c.run.channels_last ? 'channelsLast' : undefined });
  const sgd = new SGD(model.parameters(), { lr: c.optim.base_lr, momentum: c.optim.momentum, weightDecay: c.optim.wd });
  const optimizer = c.optim.larc ? new LARC(sgd, { trustCoefficient: c.optim.trust_coefficient, clip: false }) : sgd;
  let skipped = 0;
  const loader = new MultiCropLoader(dataset, {
    batchSize: c.optim.batch_size, seed: c.run.seed, crops: multiCropConfig(c), workers: c.data.workers, corruptImages: c.data.corrupt_images,
    onSkip: (file, reason) => {
      skipped++;
      log(`warning: skipped an unreadable image: ${file} (${reason})`);
      metric({ type: 'skip', file, reason });
    },
  });
  const perEpoch = loader.itersPerEpoch;
  const schedule = cosineSchedule({
    baseLr: c.optim.base_lr, finalLr: c.optim.final_lr, epochs: c.optim.epochs, itersPerEpoch: perEpoch,
    warmupEpochs: c.optim.warmup_epochs, startWarmup: c.optim.start_warmup,
  });
  const bs = c.optim.batch_size;
  const queueLength = c.swav.queue_length - (c.swav.queue_length % bs);
  let queue: SwAVQueue | null = null;
  let progress: Progress = { epoch: 0, epochIteration: 0, iteration: 0 };

  if (existsSync(join(dir, CHECKPOINT))) {
    const r = loadCheckpoint(dir, model, sgd, loader.badFiles);
    const was = JSON.parse(r.config) as Config;
    const changed = (['model', 'swav', 'crops', 'optim'] as const).filter((s) => JSON.stringify(was[s]) !== JSON.stringify(c[s]));
    if (changed.length) log(`note: the config's ${changed.join(', ')} differ from the checkpoint's; continuing with the new values`);
    progress = r.progress;
    if (r.queue) {
      queue = new SwAVQueue(r.queue);
      queue.useTheQueue = r.useTheQueue;
    }
    log(`resuming ${dir} at epoch ${progress.epoch + 1}, iteration ${progress.epochIteration} of ${perEpoch}`);
  } else {
    writeFileSync(join(dir, 'config.yaml'), toYaml(c));
    log(`training ${c.model.arch} (${(model.numParameters() / 1e6).toFixed(2)}M parameters) on ${dataset.name}: ` +
      `${dataset.length} images, ${perEpoch} iterations of ${bs} per epoch, ${c.optim.epochs} epochs, ${amp}` +
      `${c.run.channels_last ? ' channels_last' : ''}; run directory ${dir}`);
  }

  const hyper = {
    nmbCrops: c.crops.nmb_crops, cropsForAssign: c.swav.crops_for_assign, temperature: c.swav.temperature, epsilon: c.swav.epsilon,
    sinkhornIterations: c.swav.sinkhorn_iterations, freezePrototypesNiters: c.swav.freeze_prototypes_niters, stableSinkhorn: c.swav.stable_sinkhorn,
  };
  const ctx = { model, optimizer, hyper, amp: AUTOCAST_DTYPE[amp], deviceType };
  let interrupted = false;
  const onSigint = () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    log('\ninterrupted: saving a checkpoint after this iteration (Ctrl-C again to quit at once)');
  };
  process.on('SIGINT', onSigint);
  const started = performance.now();
  const firstIteration = progress.iteration;
  const lnK = Math.log(c.model.nmb_prototypes);
  let nearLnK = 0;
  let warnedCollapse = false;
  let timeUp = false;
  try {
    model.train();
    const lastEpoch = c.run.stop_after_epochs > 0 ? Math.min(c.optim.epochs, progress.epoch + c.run.stop_after_epochs) : c.optim.epochs;
    for (let epoch = progress.epoch; epoch < lastEpoch && !interrupted && !timeUp; epoch++) {
      if (queueLength > 0 && epoch >= c.swav.epoch_queue_starts && queue === null) {
        queue = SwAVQueue.zeros(c.swav.crops_for_assign.length, queueLength, c.model.feat_dim, c.run.device);
      }
      if (queue && progress.epochIteration === 0) queue.useTheQueue = false; // the reference resets it every epoch
      const epochStart = performance.now();
      let window = { loss: 0, n: 0, wait: 0, t0: performance.now() };
      let epochLoss = 0;
      let epochN = 0;
      for await (const batch of loader.batches(epoch, progress.epochIteration)) {
        const it = progress.iteration;
        const lr = schedule[it] ?? schedule[schedule.length - 1];
        const crops = batch.crops.map((t) => t.to({ device: c.run.device, memoryFormat: c.run.channels_last ? 'channelsLast' : undefined }));
        let result;
        try {
          result = swavStep(ctx, crops, lr, it, queue);
        } finally {
          crops.forEach((t) => t.dispose());
          batch.crops.forEach((t) => t.dispose());
        }
        const { loss, scores } = result;
        if (!Number.isFinite(loss)) {
          scores.dispose();
          throw new TrainingError(`the loss is ${loss} at epoch ${epoch + 1}, iteration ${progress.epochIteration + 1}: training stopped. ` +
            `The last good checkpoint (after epoch ${progress.epoch}) is kept in ${dir}. Usual causes: a learning rate too high ` +
            '(optim.base_lr), overflow in Sinkhorn under float16 (run.amp: bf16, or swav.stable_sinkhorn: true), broken input data.');
        }
        progress = { epoch, epochIteration: progress.epochIteration + 1, iteration: it + 1 };
        window.loss += loss; window.n++; window.wait += batch.waitSeconds;
        epochLoss += loss; epochN++;
        if (it >= c.swav.freeze_prototypes_niters && Math.abs(loss - lnK) < 0.01 * lnK) nearLnK++;
        else nearLnK = 0;
        if (nearLnK >= Math.max(200, perEpoch) && !warnedCollapse) {
          warnedCollapse = true;
          const msg = `warning: the loss has stayed at ln(K) = ${lnK.toFixed(3)} for ${nearLnK} iterations: every sample is assigned ` +
            'uniformly, the representation has collapsed. Known remedies: keep the prototypes frozen longer at the start ' +
            '(swav.freeze_prototypes_niters), lower optim.base_lr, use a queue when the batch is small next to the number of ' +
            'prototypes (swav.queue_length, swav.epoch_queue_starts), fewer prototypes (model.nmb_prototypes ~ 10x the classes), ' +
            'and check that the augmentations are on.';
          log(msg);
          metric({ type: 'warning', message: msg });
        }
        const elapsed = (performance.now() - started) / 1000;
        if (progress.epochIteration % c.run.log_every === 0 || progress.epochIteration === perEpoch) {
          const seconds = (performance.now() - window.t0) / 1000;
          metric({
            type: 'train', epoch: epoch + 1, iteration: it + 1, loss: window.loss / window.n, lr,
            samples_per_s: (window.n * bs) / seconds, data_wait_s: window.wait / window.n, prototype_entropy: usageEntropy(scores),
          });
          window = { loss: 0, n: 0, wait: 0, t0: performance.now() };
        }
        scores.dispose();
        const remaining = ((c.optim.epochs * perEpoch - progress.iteration) * elapsed) / (progress.iteration - firstIteration);
        const bar = Math.round((progress.epochIteration / perEpoch) * 20);
        ev.progress?.(`epoch ${epoch + 1}/${c.optim.epochs} [${'#'.repeat(bar)}${'.'.repeat(20 - bar)}] ${progress.epochIteration}/${perEpoch} ` +
          `loss ${(epochLoss / epochN).toFixed(4)} lr ${lr.toPrecision(3)} ETA ${fmtTime(remaining)}`);
        if (c.run.max_minutes > 0 && elapsed > c.run.max_minutes * 60) {
          timeUp = true;
          break;
        }
        if (interrupted) break;
      }
      const finished = progress.epochIteration === perEpoch;
      if (finished) progress = { epoch: epoch + 1, epochIteration: 0, iteration: progress.iteration };
      saveCheckpoint(dir, c, model, sgd, queue, progress, loader.badFiles);
      ev.progress?.(null);
      if (finished) {
        const secs = (performance.now() - epochStart) / 1000;
        metric({ type: 'epoch', epoch: epoch + 1, loss: epochLoss / Math.max(1, epochN), seconds: secs, skipped_images: skipped });
        log(`epoch ${epoch + 1}/${c.optim.epochs}: loss ${(epochLoss / Math.max(1, epochN)).toFixed(4)}, ${secs.toFixed(0)} s`);
        if (c.run.knn_every > 0 && (epoch + 1) % c.run.knn_every === 0 && epoch + 1 < c.optim.epochs) await knn(epoch + 1);
      }
    }
  } finally {
    process.off('SIGINT', onSigint);
    loader.close();
    if (dataset.kind === 'tensor') dataset.images.dispose();
  }
  if (interrupted) log(`saved ${join(dir, CHECKPOINT)} at epoch ${progress.epoch + 1}, iteration ${progress.epochIteration}; run the same command to resume`);
  if (timeUp) log(`run.max_minutes (${c.run.max_minutes}) reached: stopped after ${progress.iteration} iterations; the checkpoint is saved`);
  const result: TrainResult = { epochsDone: progress.epoch, iterations: progress.iteration, interrupted };
  if (c.run.knn_eval && !interrupted && (progress.epoch === c.optim.epochs || timeUp)) {
    result.knnTop1 = await knn(progress.epoch);
  }
  queue?.dispose();
  model.dispose();
  for (const b of sgd.momentumBuffers.values()) b.dispose();
  return result;
}
