// `swav eval knn` and `swav eval linear`: a trunk from a run directory's checkpoint, a checkpoint file or a zoo name,
// evaluated on a dataset's train and eval splits; results printed as JSON and appended to the run's metrics.jsonl.
import { appendFileSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import * as torch from '../torch/index.js';
import { validateConfig, type Config } from '../train/config.js';
import { CHECKPOINT } from '../train/trainer.js';
import { architectures, type Architecture, type ResNet } from '../models/resnet.js';
import { DATASET_TYPES, openSplits, type Dataset, type DatasetType } from '../data/datasets.js';
import { datasetFeatures, knnTop1Many } from '../eval/knn.js';
import { linearProbe, trainLinearHead, type EvalCurve, type FeatureBatch, type HeadOptions, type LinearHeadState } from '../eval/linear.js';
import { fineTune, labelledSubset, subsetOf } from '../eval/semisup.js';
import { MultiCropLoader, evalBatches, type LabelledBatch } from '../data/loader.js';
import { randomResizedCropConfig } from '../data/multicrop.js';
import { FrozenTrunk, type FeaturePool } from '../models/inference.js';
import { Option, type Command } from 'commander';
import { UsageError, action, examples, int, num, positiveList, subcommand } from './options.js';
import { disposeTensors, loadWeights } from './weights.js';

const log = (s: string) => process.stderr.write(`${s}\n`);

interface EvalSubject {
  model: ResNet;
  c: Config;
  /** Where results are recorded (a run directory), or null for a bare weights file. */
  runDir: string | null;
  weightsPath: string;
}

/** The options every evaluation shares: what is evaluated, on which data and device. */
interface SubjectOptions {
  weights: string;
  data?: string;
  type?: DatasetType;
  arch?: Architecture;
  trainSplit?: string;
  split?: string;
  device?: string;
}

function subjectOptions(cmd: Command): Command {
  return cmd
    .requiredOption('--weights <run|file|zoo-name>', 'a run directory (its checkpoint), a checkpoint file or a zoo name (swav hub list)')
    .option('--data <path>', "the dataset (default: the run's data.path)")
    .addOption(new Option('--type <type>', "the dataset's type (default: the run's, else folder)").choices(DATASET_TYPES))
    .addOption(
      new Option('--arch <arch>', 'the architecture of weights that are not a swav training checkpoint').choices(
        Object.keys(architectures),
      ),
    )
    .option('--train-split <split>', "the split the evaluation learns from (default: the run's data.eval_train_split)")
    .option('--split <split>', "the split it is measured on (default: the run's data.eval_split)")
    .option('--device <device>', "cpu, cuda or cuda:N (default: the run's run.device)");
}

async function loadSubject(what: string, o: SubjectOptions): Promise<EvalSubject> {
  const { weights, data, type, arch, trainSplit, split: testSplit, device } = o;
  const loaded = await loadWeights(`eval ${what}`, weights, arch);
  const { model, path } = loaded;
  const ours = loaded.config !== null;
  const c = loaded.config ?? validateConfig({ data: { path: data ?? '.', type: type ?? 'folder' }, model: { arch } });
  c.data.path = data ?? c.data.path;
  c.data.type = type ?? c.data.type;
  c.data.eval_train_split = trainSplit ?? c.data.eval_train_split;
  c.data.eval_split = testSplit ?? c.data.eval_split;
  c.run.device = device ?? c.run.device;
  if (!c.data.path) throw new UsageError(`eval ${what}: --data PATH is required`);
  model.to({ device: c.run.device, memoryFormat: 'channelsLast' });
  return { model, c, runDir: ours || existsSync(join(dirname(path), CHECKPOINT)) ? dirname(path) : null, weightsPath: path };
}

function record(s: EvalSubject, entries: Record<string, unknown>[]): void {
  if (!s.runDir) return;
  const time = new Date().toISOString();
  const lines = entries.map((e) => JSON.stringify({ type: 'eval', ...e, data: s.c.data.path, split: s.c.data.eval_split, time }));
  appendFileSync(join(s.runDir, 'metrics.jsonl'), `${lines.join('\n')}\n`);
}

interface SplitFeatures {
  feats: torch.Tensor;
  labels: torch.Tensor;
}

/**
 * Pooled features (eval transform, BatchNorm folded) of the train and eval splits, the eval split labelled by the
 * train split's classes; from the cache when there.
 */
async function splitFeatures(
  s: EvalSubject,
  cacheDir: string | null,
  pool: FeaturePool = 'global',
): Promise<{ train: SplitFeatures; val: SplitFeatures }> {
  const { c } = s;
  const splits = [c.data.eval_train_split, c.data.eval_split];
  const key = (split: string) =>
    createHash('sha256')
      .update(
        JSON.stringify([
          resolve(s.weightsPath),
          statSync(s.weightsPath).mtimeMs,
          c.data.type,
          resolve(c.data.path!),
          split,
          c.crops.mean,
          c.crops.std,
          ...(pool === 'global' ? [] : [pool]),
          ...(split === splits[0] ? [] : [splits[0]]),
        ]),
      )
      .digest('hex')
      .slice(0, 16);
  const files = splits.map((split) => (cacheDir ? join(cacheDir, `features-${split}-${key(split)}.pth`) : null));
  const cached = (i: number): SplitFeatures | null => {
    if (!files[i] || !existsSync(files[i]!)) return null;
    log(`cached features: ${files[i]}`);
    const t = torch.load(files[i]!);
    return { feats: t.feats, labels: t.labels };
  };
  if (files.every((f) => f && existsSync(f))) return { train: cached(0)!, val: cached(1)! };
  const { train, val } = openSplits(c.data.type, c.data.path!, splits[0], splits[1]);
  try {
    const [tr, va] = [
      await (cached(0) ?? extractSplit(s, train, files[0], pool)),
      await (cached(1) ?? extractSplit(s, val, files[1], pool)),
    ];
    return { train: tr, val: va };
  } finally {
    for (const ds of [train, val]) if (ds.kind === 'tensor') ds.images.dispose();
  }
}

async function extractSplit(s: EvalSubject, ds: Dataset, file: string | null, pool: FeaturePool): Promise<SplitFeatures> {
  const { c } = s;
  const t0 = performance.now();
  if (ds.length === 0) throw new Error(`${ds.name}: the split is empty`);
  const r = await datasetFeatures(s.model, ds, { device: c.run.device, mean: c.crops.mean, std: c.crops.std, pool });
  const unlabelled = r.labels.filter((l) => l < 0).length;
  if (unlabelled) {
    r.feats.dispose();
    throw new Error(
      `${ds.name}: ${unlabelled} images without a label (a flat folder): an evaluation needs class subfolders or a labelled list`,
    );
  }
  const labels = torch.fromTypedArray(r.labels).long();
  log(`features of ${ds.name}: ${r.feats.shape.join(' x ')} (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
  if (file) {
    mkdirSync(dirname(file), { recursive: true });
    torch.save({ feats: r.feats, labels }, file);
  }
  return { feats: r.feats, labels };
}

/** A per-epoch progress line with the ETA. */
function epochLog(epochs: number): (e: { epoch: number; loss: number; top1: number; top5: number; lr: number }) => void {
  const t0 = performance.now();
  return (e) =>
    log(
      `epoch ${e.epoch}/${epochs}: loss ${e.loss.toFixed(4)}, top-1 ${(100 * e.top1).toFixed(2)}%, top-5 ` +
        `${(100 * e.top5).toFixed(2)}%, lr ${e.lr.toPrecision(3)}, ETA ${(((performance.now() - t0) / 1000 / e.epoch) * (epochs - e.epoch)).toFixed(0)} s`,
    );
}

/** The best epoch logged, recorded as `<name>_top1` / `<name>_top5` with `extra`, and printed as JSON. */
function report(s: EvalSubject, name: string, r: EvalCurve, extra: Record<string, unknown>): void {
  log(`best top-1 ${(100 * r.bestTop1).toFixed(2)}% (epoch ${r.bestEpoch}), its top-5 ${(100 * r.bestTop5).toFixed(2)}%`);
  const common = { ...extra, best_epoch: r.bestEpoch };
  record(s, [
    { metric: `${name}_top1`, value: r.bestTop1, ...common },
    { metric: `${name}_top5`, value: r.bestTop5, ...common },
  ]);
  console.log(JSON.stringify({ [`${name}_top1`]: r.bestTop1, [`${name}_top5`]: r.bestTop5, ...common }));
}

/** `swav eval knn --weights W --data PATH [--k 20,200] [--temperature 0.07,0.1]`: several k in one pass. */
async function evalKnn(o: SubjectOptions & { k: number[]; temperature: number[] }): Promise<number> {
  const { k: ks, temperature: ts } = o;
  if (ts.length !== 1 && ts.length !== ks.length) throw new UsageError('eval knn: --temperature takes one value, or one per --k');
  const s = await loadSubject('knn', o);
  const settings = ks.map((k, i) => ({ k: Math.round(k), temperature: ts.length === 1 ? ts[0] : ts[i] }));
  try {
    const { train, val: test } = await splitFeatures(s, null);
    const top1 = knnTop1Many(
      train.feats,
      Int32Array.from(train.labels.tolist() as number[]),
      test.feats,
      Int32Array.from(test.labels.tolist() as number[]),
      settings,
    );
    [train.feats, train.labels, test.feats, test.labels].forEach((t) => t.dispose());
    const results = settings.map((st, i) => ({ metric: 'knn_top1', value: top1[i], k: st.k, temperature: st.temperature }));
    results.forEach((r) => log(`kNN (k=${r.k}, T=${r.temperature}) top-1: ${(100 * r.value).toFixed(2)}%`));
    record(s, results);
    console.log(
      JSON.stringify(
        results.length === 1
          ? { knn_top1: top1[0], k: settings[0].k, temperature: settings[0].temperature }
          : { knn: results.map(({ metric: _m, ...r }) => r) },
      ),
    );
    return 0;
  } finally {
    s.model.dispose();
  }
}

/** `swav eval linear --weights W --data PATH [--cached-features] [--epochs 100 --lr 0.3 --batch 256 ...]`. */
interface LinearOptions extends SubjectOptions {
  cachedFeatures?: boolean;
  pool: FeaturePool;
  useBn?: boolean;
  epochs: number;
  lr: number;
  batch: number;
  wd: number;
  finalLr: number;
  nesterov?: boolean;
  seed: number;
  cache?: string;
  size?: number;
  out?: string;
  stopAfterEpochs?: number;
}

/** What a run of the probe is: a checkpoint resumes only a probe of the same settings. */
function probeSettings(s: EvalSubject, o: LinearOptions) {
  return {
    variant: o.cachedFeatures ? 'cached-features' : 'protocol',
    weights: resolve(s.weightsPath),
    data: resolve(s.c.data.path!),
    train_split: s.c.data.eval_train_split,
    split: s.c.data.eval_split,
    pool: o.pool,
    use_bn: Boolean(o.useBn),
    epochs: o.epochs,
    lr: o.lr,
    batch_size: o.batch,
    wd: o.wd,
    final_lr: o.finalLr,
    nesterov: Boolean(o.nesterov),
    seed: o.seed,
    size: o.size ?? 0,
  };
}

async function evalLinear(o: LinearOptions): Promise<number> {
  if (o.useBn && o.pool !== 'avg6')
    throw new UsageError("eval linear: --use-bn normalizes the avg6 pool's maps, as eval_linear.py: add --pool avg6");
  const s = await loadSubject('linear', o);
  const settings = probeSettings(s, o);
  const dir = o.out ?? (s.runDir ? join(s.runDir, o.cachedFeatures ? 'eval_linear_cached' : 'eval_linear') : null);
  const ck = new ProbeCheckpoint(dir, settings, o.stopAfterEpochs);
  const head: HeadOptions = {
    epochs: o.epochs,
    lr: o.lr,
    momentum: 0.9,
    weightDecay: o.wd,
    nesterov: settings.nesterov,
    finalLr: o.finalLr,
    seed: o.seed,
    useBn: settings.use_bn,
    onEpoch: epochLog(o.epochs),
    ...ck.options(),
  };
  try {
    const r = o.cachedFeatures ? await cachedProbe(s, o, head) : await linearProtocol(s, o, head);
    r.head.dispose();
    if (r.interrupted) return ck.interrupted(o.epochs);
    report(s, 'linear', r, {
      variant: settings.variant,
      pool: o.pool,
      use_bn: settings.use_bn,
      epochs: o.epochs,
      lr: o.lr,
      batch_size: o.batch,
      wd: o.wd,
    });
    return 0;
  } finally {
    ck.close();
    s.model.dispose();
  }
}

/**
 * A probe's checkpoint in its directory (eval_linear.py's checkpoint.pth.tar, saved after every epoch): resumed when
 * its settings are the same, refused when not; Ctrl-C or SIGTERM (SLURM's preemption) stops at the epoch under way.
 */
class ProbeCheckpoint {
  readonly #file: string | null;
  readonly #resume: LinearHeadState | undefined;
  #stop = false;
  #epochs = 0;
  #last = 0;
  readonly #onSignal = () => {
    if (this.#stop) process.exit(130);
    this.#stop = true;
    log(
      `\ninterrupted: stopping${this.#file ? ` (the checkpoint of epoch ${this.#last} stays in ${this.#file})` : ''}; again to quit at once`,
    );
  };

  constructor(
    dir: string | null,
    readonly settings: Record<string, unknown>,
    readonly stopAfter?: number,
  ) {
    this.#file = dir ? join(dir, 'checkpoint.pth') : null;
    if (this.#file && existsSync(this.#file)) {
      const saved = torch.load(this.#file);
      if (saved.settings !== JSON.stringify(settings)) {
        const was = JSON.parse(saved.settings ?? '{}');
        const diff = Object.keys(settings)
          .filter((k) => JSON.stringify(was[k]) !== JSON.stringify(settings[k]))
          .map((k) => `${k} ${JSON.stringify(was[k])} -> ${JSON.stringify(settings[k])}`);
        disposeTensors(saved);
        throw new UsageError(
          `eval linear: ${this.#file} holds a linear evaluation of other settings (${diff.join(', ')}): remove ${dir} to start over, or give another --out`,
        );
      }
      this.#resume = saved as LinearHeadState;
      this.#last = saved.epoch;
      log(`resuming the linear evaluation of ${this.#file} at epoch ${saved.epoch + 1}`);
    }
    process.on('SIGINT', this.#onSignal);
    process.on('SIGTERM', this.#onSignal);
  }

  /** trainLinearHead's resume, onCheckpoint and shouldStop. */
  options(): Pick<HeadOptions, 'resume' | 'onCheckpoint' | 'shouldStop'> {
    return {
      resume: this.#resume,
      onCheckpoint: (state) => {
        this.#last = state.epoch;
        this.#epochs++;
        if (!this.#file) return;
        mkdirSync(dirname(this.#file), { recursive: true });
        torch.save({ ...state, settings: JSON.stringify(this.settings) }, this.#file);
      },
      shouldStop: () => this.#stop || (this.stopAfter !== undefined && this.#epochs >= this.stopAfter),
    };
  }

  /** The exit status of a stopped probe, said plainly. */
  interrupted(epochs: number): number {
    log(
      this.#file
        ? `stopped after epoch ${this.#last} of ${epochs}: ${this.#file} holds it; run the same command to resume`
        : `stopped after epoch ${this.#last} of ${epochs}; nothing saved (give --out DIR to resume later)`,
    );
    return 130;
  }

  close(): void {
    process.off('SIGINT', this.#onSignal);
    process.off('SIGTERM', this.#onSignal);
    if (this.#resume) disposeTensors(this.#resume);
  }
}

/** Validation's transform: Resize(256) + CenterCrop(224) for image files, scaled to --size when given. */
function evalTransform(c: Config, size?: number) {
  return {
    mean: c.crops.mean,
    std: c.crops.std,
    device: c.run.device,
    ...(size ? { crop: size, resize: Math.round((size * 256) / 224) } : {}),
  };
}

/** The classes of a labelled train split, and a check that the eval split's labels are among them. */
function classesOf(train: Dataset, val: Dataset): number {
  for (const ds of [train, val]) {
    if (ds.length === 0) throw new Error(`${ds.name}: the split is empty`);
    if (ds.labels.some((l) => l < 0))
      throw new Error(`${ds.name}: images without a label (class subfolders or a labelled list give labels)`);
  }
  const classes = train.labels.reduce((a, b) => Math.max(a, b), -1) + 1; // not Math.max(...): ImageNet has 1.28M labels
  const top = val.labels.reduce((a, b) => Math.max(a, b), -1);
  if (top >= classes)
    throw new Error(`${val.name}: label ${top} is not among the ${classes} classes of ${train.name}: the splits must share their classes`);
  return classes;
}

/** The probe on features extracted once (center crop, BatchNorm folded) and cached: a variant of the protocol. */
async function cachedProbe(s: EvalSubject, o: LinearOptions, head: HeadOptions) {
  log(
    "linear probe on cached features: a variant of eval_linear.py's protocol (features extracted once, center crop, " +
      'no augmentation, BatchNorm folded), not the protocol itself',
  );
  const cacheDir = o.cache ?? (s.runDir ? join(s.runDir, 'features') : null);
  const { train, val } = await splitFeatures(s, cacheDir, o.pool);
  try {
    return await linearProbe(train.feats, train.labels, val.feats, val.labels, { ...head, batchSize: o.batch, shuffle: true });
  } finally {
    [train.feats, train.labels, val.feats, val.labels].forEach((t) => t.dispose());
  }
}

/**
 * `swav eval semisup --weights W --data PATH (--fraction 0.01|0.1 | --subset FILE) [--epochs 20 ...]`: eval_semisup.py's
 * fine-tuning of the trunk and a new head on a labelled subset of the train split.
 */
interface SemisupOptions extends SubjectOptions {
  subset?: string;
  fraction: number;
  epochs: number;
  lr?: number;
  lrLastLayer?: number;
  decayEpochs: number[];
  gamma: number;
  batch: number;
  size?: number;
  seed: number;
}

async function evalSemisup(o: SemisupOptions): Promise<number> {
  const { subset: subsetFile, fraction, epochs, decayEpochs: decay, gamma, batch, seed } = o;
  const size = o.size ?? 0;
  const onePercent = !subsetFile && fraction <= 0.01;
  const lr = o.lr ?? (onePercent ? 0.02 : 0.01);
  const lrLast = o.lrLastLayer ?? (onePercent ? 5 : 0.2);
  if (!(fraction > 0 && fraction <= 1)) throw new UsageError(`eval semisup: --fraction must be in (0, 1], got ${fraction}`);
  const s = await loadSubject('semisup', o);
  const { c } = s;
  const { train: trainDs, val: valDs } = openSplits(c.data.type, c.data.path!, c.data.eval_train_split, c.data.eval_split);
  let loader: MultiCropLoader | null = null;
  let model: ResNet | null = null;
  let sub: Dataset | null = null;
  try {
    const classes = classesOf(trainDs, valDs);
    const names = subsetFile
      ? readFileSync(subsetFile, 'utf8')
          .split('\n')
          .map((l) => l.trim())
          .filter(Boolean)
      : undefined;
    const rows = labelledSubset(trainDs, { names, fraction, seed });
    sub = subsetOf(trainDs, rows);
    const labelsOf = sub.labels;
    log(
      `fine-tuning on ${rows.length} labelled images of ${trainDs.name} (${subsetFile ?? `${100 * fraction}% of each class`}), ${classes} classes`,
    );
    model = architectures[c.model.arch]({
      numClasses: 0,
      stem: c.model.stem,
      stemStride: c.model.stem_stride,
      width: c.model.width ?? undefined,
      inChannels: c.model.in_channels,
      outputDim: classes,
      hiddenMlp: 0,
    });
    const trunk = new Map(
      Object.entries(s.model.stateDict()).filter(([k]) => !k.startsWith('projection_head') && !k.startsWith('prototypes')),
    );
    model.loadStateDict(trunk, { strict: false });
    model.to({ device: c.run.device, memoryFormat: 'channelsLast' });
    const crop = size || (trainDs.kind === 'tensor' ? trainDs.images.shape[3] : 224);
    loader = new MultiCropLoader(sub, {
      batchSize: Math.min(batch, sub.length),
      seed,
      workers: c.data.workers,
      dropLast: false,
      crops: randomResizedCropConfig(crop, c.crops.mean, c.crops.std),
    });
    const l = loader;
    const r = await fineTune(
      model,
      (epoch) => labelledCrops(l, epoch, labelsOf, c.run.device),
      () => evalBatches(valDs, { batch: 64, ...evalTransform(c, size) }),
      {
        epochs,
        lr,
        lrLastLayer: lrLast,
        decayEpochs: decay,
        gamma,
        onEpoch: epochLog(epochs),
      },
    );
    report(s, 'semisup', r, { subset: subsetFile ?? fraction, labelled: rows.length, epochs, lr, lr_last_layer: lrLast });
    return 0;
  } finally {
    loader?.close();
    model?.dispose();
    s.model.dispose();
    for (const ds of [trainDs, valDs, sub]) if (ds?.kind === 'tensor') ds.images.dispose();
  }
}

/** The loader's single crops of `epoch` on the device (channels_last) with their labels; freed once consumed. */
async function* labelledCrops(loader: MultiCropLoader, epoch: number, labels: Int32Array, device: string): AsyncGenerator<LabelledBatch> {
  for await (const b of loader.batches(epoch)) {
    const images = b.crops[0].to({ device, memoryFormat: 'channelsLast' });
    const y = torch.tensor(
      Array.from(b.indices, (i) => labels[i]),
      { dtype: 'int64', device },
    );
    try {
      yield { images, labels: y };
    } finally {
      [images, y, ...b.crops].forEach((t) => t.dispose());
    }
  }
}

/** Labelled images as the frozen trunk's features (the head's input). */
async function* throughTrunk(trunk: FrozenTrunk, batches: AsyncIterable<LabelledBatch>): AsyncGenerator<FeatureBatch> {
  for await (const b of batches) {
    const x = torch.tidy(() => trunk.forward(b.images.contiguous('channelsLast')));
    try {
      yield { x, y: b.labels };
    } finally {
      x.dispose();
    }
  }
}

/**
 * eval_linear.py's protocol: every epoch, RandomResizedCrop + flip of the train split through the frozen trunk
 * (eval mode, BatchNorm folded, no autograd), pooled, into the head; validation with the eval transform after every
 * epoch.
 */
async function linearProtocol(s: EvalSubject, o: LinearOptions, head: HeadOptions) {
  const { c } = s;
  const { train: trainDs, val: valDs } = openSplits(c.data.type, c.data.path!, c.data.eval_train_split, c.data.eval_split);
  const trunk = new FrozenTrunk(s.model.eval(), { device: c.run.device, pool: o.pool });
  const size = o.size || (trainDs.kind === 'tensor' ? trainDs.images.shape[3] : 224);
  const loader = new MultiCropLoader(trainDs, {
    batchSize: o.batch,
    seed: o.seed,
    workers: c.data.workers,
    dropLast: false,
    crops: randomResizedCropConfig(size, c.crops.mean, c.crops.std),
  });
  try {
    const classes = classesOf(trainDs, valDs);
    const shape = torch.tidy(() => trunk.forward(torch.zeros([1, c.model.in_channels, size, size])).shape.slice(1));
    log(
      `linear protocol: ${trainDs.name} (${trainDs.length} images, ${loader.itersPerEpoch} batches of ${o.batch} per epoch), ` +
        `${classes} classes, features ${shape.join(' x ')}, ${o.epochs} epochs`,
    );
    const train = (epoch: number) => throughTrunk(trunk, labelledCrops(loader, epoch, trainDs.labels, c.run.device));
    const val = () => throughTrunk(trunk, evalBatches(valDs, { batch: 256, ...evalTransform(c, o.size) }));
    return await trainLinearHead(shape, classes, train, val, head);
  } finally {
    loader.close();
    trunk.dispose();
    for (const ds of [trainDs, valDs]) if (ds.kind === 'tensor') ds.images.dispose();
  }
}

export function evalCommand(swav: Command): void {
  const evaluation = subcommand(
    swav,
    'eval',
    'evaluations of a trunk as the seed measures it: kNN, the linear protocol, semi-supervised fine-tuning',
  );
  subjectOptions(
    subcommand(
      evaluation,
      'knn',
      "weighted kNN top-1 of the trunk's features (the eval split against the train split), several k in one pass",
    ),
  )
    .option('--k <list>', 'neighbours, several separated by commas', positiveList, [200])
    .option('--temperature <list>', "the weights' temperature: one, or one per k", positiveList, [0.1])
    .addHelpText(
      'after',
      examples(
        'swav eval knn --weights runs/quickstart --k 20,200 --temperature 0.07,0.1',
        'swav eval knn --weights swav_800ep --arch resnet50 --data ~/imagenet',
      ),
    )
    .action(action(evalKnn));
  subjectOptions(
    subcommand(
      evaluation,
      'linear',
      "eval_linear.py's protocol: a linear head on the frozen trunk, RandomResizedCrop + flip every " +
        'epoch, validation after each; --cached-features: the head on features extracted once (a variant)',
    ),
  )
    .option('--cached-features', 'features extracted once (center crop, no augmentation), cached; a variant of the protocol')
    .option('--epochs <n>', 'epochs', int, 100)
    .option('--lr <lr>', 'SGD learning rate', num, 0.3)
    .option('--batch <n>', 'batch size', int, 256)
    .option('--wd <wd>', 'weight decay', num, 1e-6)
    .option('--final-lr <lr>', "the cosine schedule's last learning rate", num, 0)
    .option('--nesterov', 'Nesterov momentum')
    .option('--seed <n>', 'the random seed', int, 31)
    .option('--size <px>', "the crop size (default: the images' size for tensor datasets, else 224)", int)
    .addOption(
      new Option(
        '--pool <pool>',
        "the features: global average pooling, or eval_linear.py's AvgPool2d(6, stride 1) maps (8192-d for a ResNet-50)",
      )
        .choices(['global', 'avg6'])
        .default('global'),
    )
    .option('--use-bn', "a BatchNorm2d on the avg6 maps before the linear layer (eval_linear.py's --use_bn)")
    .option('--cache <dir>', 'where cached features go (default: RUN/features)')
    .option(
      '--out <dir>',
      "the evaluation's checkpoint, saved every epoch; running again resumes (default: RUN/eval_linear, RUN/eval_linear_cached)",
    )
    .option('--stop-after-epochs <n>', 'stop (as Ctrl-C does) after this many epochs of this call', int)
    .addHelpText(
      'after',
      examples(
        'swav eval linear --weights runs/quickstart --epochs 30',
        'swav eval linear --cached-features --weights runs/quickstart',
        'swav eval linear --weights swav_800ep --arch resnet50 --data ~/imagenet --pool avg6 --use-bn',
      ),
    )
    .action(action(evalLinear));
  subjectOptions(
    subcommand(evaluation, 'semisup', 'eval_semisup.py: fine-tuning of the trunk and a new head on a labelled subset of the train split'),
  )
    .option('--fraction <f>', 'a seeded per-class fraction of the labels (0.01 or 0.1 as the paper)', num, 0.1)
    .option('--subset <file>', "a file list of the labelled images, one name per line (SimCLR's format)")
    .option('--epochs <n>', 'epochs', int, 20)
    .option('--lr <lr>', "the trunk's learning rate (default: 0.01; 0.02 with --fraction 0.01)", num)
    .option('--lr-last-layer <lr>', "the head's learning rate (default: 0.2; 5 with --fraction 0.01)", num)
    .option('--decay-epochs <list>', "MultiStepLR's milestones", positiveList, [12, 16])
    .option('--gamma <g>', "MultiStepLR's factor", num, 0.2)
    .option('--batch <n>', 'batch size', int, 32)
    .option('--size <px>', "the crop size (default: the images' size for tensor datasets, else 224)", int)
    .option('--seed <n>', 'the random seed (the subset and the order)', int, 31)
    .addHelpText(
      'after',
      examples(
        'swav eval semisup --weights runs/quickstart --fraction 0.01',
        'swav eval semisup --weights swav_800ep --arch resnet50 --data ~/imagenet --subset 1percent.txt',
      ),
    )
    .action(action(evalSemisup));
}
