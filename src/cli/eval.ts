// `swav eval knn` and `swav eval linear`: a trunk from a run directory's checkpoint, a checkpoint file or a zoo name,
// evaluated on a dataset's train and eval splits; results printed as JSON and appended to the run's metrics.jsonl.
import { appendFileSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import * as torch from '../torch/index.js';
import { validateConfig, type Config } from '../train/config.js';
import { buildModel, CHECKPOINT } from '../train/trainer.js';
import { modelFromFile } from '../hub/index.js';
import { architectures, type Architecture, type ResNet } from '../models/resnet.js';
import { DATASET_TYPES, openDataset, type Dataset, type DatasetType } from '../data/datasets.js';
import { datasetFeatures, knnTop1Many } from '../eval/knn.js';
import { linearProbe, trainLinearHead, type EvalCurve, type FeatureBatch } from '../eval/linear.js';
import { fineTune, labelledSubset, subsetOf } from '../eval/semisup.js';
import { MultiCropLoader, evalBatches, type LabelledBatch } from '../data/loader.js';
import { randomResizedCropConfig } from '../data/multicrop.js';
import { FrozenTrunk } from '../models/inference.js';
import { Flags, UsageError } from './args.js';
import { resolveWeights } from './extract.js';

const log = (s: string) => process.stderr.write(`${s}\n`);

interface EvalSubject {
  model: ResNet;
  c: Config;
  /** Where results are recorded (a run directory), or null for a bare weights file. */
  runDir: string | null;
  weightsPath: string;
}

/** The flags every evaluation shares (weights, data, splits, device), read now; the model is loaded by the thunk. */
function subject(what: string, f: Flags): () => Promise<EvalSubject> {
  const weights = f.string('weights');
  const data = f.optional('data');
  const type = f.optional('type') as DatasetType | undefined;
  const arch = f.optional('arch') as Architecture | undefined;
  const trainSplit = f.optional('train-split');
  const testSplit = f.optional('split');
  const device = f.optional('device');
  if (type && !DATASET_TYPES.includes(type)) throw new UsageError(`eval ${what}: --type must be one of ${DATASET_TYPES.join(', ')}`);
  if (arch && !(arch in architectures)) throw new UsageError(`eval ${what}: --arch must be one of ${Object.keys(architectures).join(', ')}`);
  return () => loadSubject(what, { weights, data, type, arch, trainSplit, testSplit, device });
}

async function loadSubject(what: string, o: { weights: string; data?: string; type?: DatasetType; arch?: Architecture;
  trainSplit?: string; testSplit?: string; device?: string }): Promise<EvalSubject> {
  const { weights, data, type, arch, trainSplit, testSplit, device } = o;
  const runCheckpoint = existsSync(join(weights, CHECKPOINT)) ? join(weights, CHECKPOINT) : null;
  const path = runCheckpoint ?? (existsSync(weights) ? weights : await resolveWeights(weights));
  const ck = torch.load(path);
  let c: Config;
  let model: ResNet;
  const ours = typeof ck?.config === 'string'; // one of our training checkpoints: its config says what it is
  try {
    if (ours) {
      c = JSON.parse(ck.config);
      model = buildModel(c);
      torch.tidy(() => model.loadStateDict(ck.state_dict));
    } else {
      if (!arch) throw new UsageError(`eval ${what}: --arch is needed for weights that are not a swav training checkpoint`);
      c = validateConfig({ data: { path: data ?? '.', type: type ?? 'folder' }, model: { arch } });
      model = modelFromFile(arch, path);
    }
  } finally {
    torch.tidy(() => Object.values(ck).forEach((v: unknown) => v instanceof torch.Tensor && v.dispose()));
  }
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

/** Pooled features of one split (eval transform, BatchNorm folded), from the cache when there. */
async function splitFeatures(s: EvalSubject, split: string, cacheDir: string | null): Promise<{ feats: torch.Tensor; labels: torch.Tensor }> {
  const { c } = s;
  const key = createHash('sha256').update(JSON.stringify([resolve(s.weightsPath), statSync(s.weightsPath).mtimeMs, c.data.type, resolve(c.data.path!), split, c.crops.mean, c.crops.std]))
    .digest('hex').slice(0, 16);
  const file = cacheDir ? join(cacheDir, `features-${split}-${key}.pth`) : null;
  if (file && existsSync(file)) {
    log(`cached features: ${file}`);
    const t = torch.load(file);
    return { feats: t.feats, labels: t.labels };
  }
  const t0 = performance.now();
  const ds = openDataset({ type: c.data.type, path: c.data.path!, split });
  try {
    if (ds.length === 0) throw new Error(`${ds.name}: the split '${split}' is empty`);
    const r = await datasetFeatures(s.model, ds, { device: c.run.device, mean: c.crops.mean, std: c.crops.std });
    const unlabelled = r.labels.filter((l) => l < 0).length;
    if (unlabelled) {
      r.feats.dispose();
      throw new Error(`${ds.name}: ${unlabelled} images without a label (a flat folder): an evaluation needs class subfolders or a labelled list`);
    }
    const labels = torch.fromTypedArray(r.labels).long();
    log(`features of ${ds.name}: ${r.feats.shape[0]} x ${r.feats.shape[1]} (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
    if (file) {
      mkdirSync(cacheDir!, { recursive: true });
      torch.save({ feats: r.feats, labels }, file);
    }
    return { feats: r.feats, labels };
  } finally {
    if (ds.kind === 'tensor') ds.images.dispose();
  }
}

/** A per-epoch progress line with the ETA. */
function epochLog(epochs: number): (e: { epoch: number; loss: number; top1: number; top5: number; lr: number }) => void {
  const t0 = performance.now();
  return (e) => log(`epoch ${e.epoch}/${epochs}: loss ${e.loss.toFixed(4)}, top-1 ${(100 * e.top1).toFixed(2)}%, top-5 ` +
    `${(100 * e.top5).toFixed(2)}%, lr ${e.lr.toPrecision(3)}, ETA ${(((performance.now() - t0) / 1000 / e.epoch) * (epochs - e.epoch)).toFixed(0)} s`);
}

/** The best epoch logged, recorded as `<name>_top1` / `<name>_top5` with `extra`, and printed as JSON. */
function report(s: EvalSubject, name: string, r: EvalCurve, extra: Record<string, unknown>): void {
  log(`best top-1 ${(100 * r.bestTop1).toFixed(2)}% (epoch ${r.bestEpoch}), its top-5 ${(100 * r.bestTop5).toFixed(2)}%`);
  const common = { ...extra, best_epoch: r.bestEpoch };
  record(s, [{ metric: `${name}_top1`, value: r.bestTop1, ...common }, { metric: `${name}_top5`, value: r.bestTop5, ...common }]);
  console.log(JSON.stringify({ [`${name}_top1`]: r.bestTop1, [`${name}_top5`]: r.bestTop5, ...common }));
}

const list = (what: string, name: string, text: string) => text.split(',').map((x) => {
  const v = Number(x);
  if (!(v > 0)) throw new UsageError(`eval ${what}: --${name} takes positive numbers separated by commas, got '${text}'`);
  return v;
});

/** `swav eval knn --weights W --data PATH [--k 20,200] [--temperature 0.07,0.1]`: several k in one pass. */
async function evalKnn(f: Flags): Promise<number> {
  const ks = list('knn', 'k', f.string('k', '200'));
  const ts = list('knn', 'temperature', f.string('temperature', '0.1'));
  if (ts.length !== 1 && ts.length !== ks.length) throw new UsageError('eval knn: --temperature takes one value, or one per --k');
  const load = subject('knn', f);
  f.done();
  const s = await load();
  const settings = ks.map((k, i) => ({ k: Math.round(k), temperature: ts.length === 1 ? ts[0] : ts[i] }));
  try {
    const train = await splitFeatures(s, s.c.data.eval_train_split, null);
    const test = await splitFeatures(s, s.c.data.eval_split, null);
    const top1 = knnTop1Many(train.feats, Int32Array.from(train.labels.tolist() as number[]), test.feats, Int32Array.from(test.labels.tolist() as number[]), settings);
    [train.feats, train.labels, test.feats, test.labels].forEach((t) => t.dispose());
    const results = settings.map((st, i) => ({ metric: 'knn_top1', value: top1[i], k: st.k, temperature: st.temperature }));
    results.forEach((r) => log(`kNN (k=${r.k}, T=${r.temperature}) top-1: ${(100 * r.value).toFixed(2)}%`));
    record(s, results);
    console.log(JSON.stringify(results.length === 1 ? { knn_top1: top1[0], k: settings[0].k, temperature: settings[0].temperature } : { knn: results.map(({ metric: _m, ...r }) => r) }));
    return 0;
  } finally {
    s.model.dispose();
  }
}

/** `swav eval linear --weights W --data PATH --cached-features [--epochs 100 --lr 0.3 --batch 256 ...]`. */
async function evalLinear(f: Flags): Promise<number> {
  const cached = f.bool('cached-features');
  const epochs = f.int('epochs', 100);
  const lr = f.number('lr', 0.3);
  const batch = f.int('batch', 256);
  const wd = f.number('wd', 1e-6);
  const finalLr = f.number('final-lr', 0);
  const nesterov = f.bool('nesterov');
  const seed = f.int('seed', 31);
  const cacheOpt = f.optional('cache');
  const size = f.int('size', 0);
  const load = subject('linear', f);
  f.done();
  const s = await load();
  if (!cached) return linearProtocol(s, { epochs, lr, batch, wd, finalLr, nesterov, seed, size });
  log('linear probe on cached features: a variant of eval_linear.py\'s protocol (features extracted once, center crop, ' +
    'no augmentation, BatchNorm folded), not the protocol itself');
  const cacheDir = cacheOpt ?? (s.runDir ? join(s.runDir, 'features') : null);
  try {
    const train = await splitFeatures(s, s.c.data.eval_train_split, cacheDir);
    const val = await splitFeatures(s, s.c.data.eval_split, cacheDir);
    const r = await linearProbe(train.feats, train.labels, val.feats, val.labels, {
      epochs, batchSize: batch, lr, momentum: 0.9, weightDecay: wd, nesterov, finalLr, shuffle: true, seed, onEpoch: epochLog(epochs),
    });
    r.classifier.dispose();
    [train.feats, train.labels, val.feats, val.labels].forEach((t) => t.dispose());
    report(s, 'linear', r, { variant: 'cached-features', epochs, lr, batch_size: batch, wd });
    return 0;
  } finally {
    s.model.dispose();
  }
}

/**
 * `swav eval semisup --weights W --data PATH (--fraction 0.01|0.1 | --subset FILE) [--epochs 20 ...]`: eval_semisup.py's
 * fine-tuning of the trunk and a new head on a labelled subset of the train split.
 */
async function evalSemisup(f: Flags): Promise<number> {
  const subsetFile = f.optional('subset');
  const fraction = f.number('fraction', 0.1);
  const onePercent = !subsetFile && fraction <= 0.01;
  const epochs = f.int('epochs', 20);
  const lr = f.number('lr', onePercent ? 0.02 : 0.01);
  const lrLast = f.number('lr-last-layer', onePercent ? 5 : 0.2);
  const decay = list('semisup', 'decay-epochs', f.string('decay-epochs', '12,16'));
  const gamma = f.number('gamma', 0.2);
  const batch = f.int('batch', 32);
  const size = f.int('size', 0);
  const seed = f.int('seed', 31);
  if (!(fraction > 0 && fraction <= 1)) throw new UsageError(`eval semisup: --fraction must be in (0, 1], got ${fraction}`);
  const load = subject('semisup', f);
  f.done();
  const s = await load();
  const { c } = s;
  const trainDs = openDataset({ type: c.data.type, path: c.data.path!, split: c.data.eval_train_split });
  const valDs = openDataset({ type: c.data.type, path: c.data.path!, split: c.data.eval_split });
  let loader: MultiCropLoader | null = null;
  let model: ResNet | null = null;
  let sub: Dataset | null = null;
  try {
    const names = subsetFile ? readFileSync(subsetFile, 'utf8').split('\n').map((l) => l.trim()).filter(Boolean) : undefined;
    const rows = labelledSubset(trainDs, { names, fraction, seed });
    const classes = Math.max(...trainDs.labels) + 1;
    sub = subsetOf(trainDs, rows);
    const labelsOf = sub.labels;
    log(`fine-tuning on ${rows.length} labelled images of ${trainDs.name} (${subsetFile ?? `${100 * fraction}% of each class`}), ${classes} classes`);
    model = architectures[c.model.arch]({ numClasses: 0, stem: c.model.stem, stemStride: c.model.stem_stride, width: c.model.width ?? undefined,
      inChannels: c.model.in_channels, outputDim: classes, hiddenMlp: 0 });
    const trunk = new Map(Object.entries(s.model.stateDict()).filter(([k]) => !k.startsWith('projection_head') && !k.startsWith('prototypes')));
    model.loadStateDict(trunk, { strict: false });
    model.to({ device: c.run.device, memoryFormat: 'channelsLast' });
    const crop = size || (trainDs.kind === 'tensor' ? trainDs.images.shape[3] : 224);
    loader = new MultiCropLoader(sub, { batchSize: Math.min(batch, sub.length), seed, workers: c.data.workers,
      crops: randomResizedCropConfig(crop, c.crops.mean, c.crops.std) });
    const l = loader;
    const r = await fineTune(model, (epoch) => labelledCrops(l, epoch, labelsOf, c.run.device), () => evalBatches(valDs, { batch: 64, mean: c.crops.mean, std: c.crops.std, device: c.run.device }), {
      epochs, lr, lrLastLayer: lrLast, decayEpochs: decay, gamma, onEpoch: epochLog(epochs),
    });
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
    const y = torch.tensor(Array.from(b.indices, (i) => labels[i]), { dtype: 'int64', device });
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
 * (eval mode, BatchNorm folded, no autograd), global average pooled, into the head; validation with the eval
 * transform after every epoch.
 */
async function linearProtocol(s: EvalSubject, o: { epochs: number; lr: number; batch: number; wd: number; finalLr: number; nesterov: boolean;
  seed: number; size: number }): Promise<number> {
  const { c } = s;
  const trainDs = openDataset({ type: c.data.type, path: c.data.path!, split: c.data.eval_train_split });
  const valDs = openDataset({ type: c.data.type, path: c.data.path!, split: c.data.eval_split });
  const trunk = new FrozenTrunk(s.model.eval(), { device: c.run.device });
  const loader = new MultiCropLoader(trainDs, { batchSize: o.batch, seed: o.seed, workers: c.data.workers,
    crops: randomResizedCropConfig(o.size || (trainDs.kind === 'tensor' ? trainDs.images.shape[3] : 224), c.crops.mean, c.crops.std) });
  try {
    if (trainDs.labels.some((l) => l < 0)) throw new Error(`${trainDs.name}: images without a label (class subfolders give labels)`);
    const classes = Math.max(...trainDs.labels) + 1;
    log(`linear protocol: ${trainDs.name} (${trainDs.length} images, ${loader.itersPerEpoch} batches of ${o.batch} per epoch), ` +
      `${classes} classes, ${o.epochs} epochs`);
    const train = (epoch: number) => throughTrunk(trunk, labelledCrops(loader, epoch, trainDs.labels, c.run.device));
    const val = () => throughTrunk(trunk, evalBatches(valDs, { batch: 256, mean: c.crops.mean, std: c.crops.std, device: c.run.device }));
    const r = await trainLinearHead(s.model.numFeatures, classes, train, val, {
      epochs: o.epochs, lr: o.lr, momentum: 0.9, weightDecay: o.wd, nesterov: o.nesterov, finalLr: o.finalLr, seed: o.seed, onEpoch: epochLog(o.epochs),
    });
    r.classifier.dispose();
    report(s, 'linear', r, { variant: 'protocol', epochs: o.epochs, lr: o.lr, batch_size: o.batch, wd: o.wd });
    return 0;
  } finally {
    loader.close();
    trunk.dispose();
    s.model.dispose();
    for (const ds of [trainDs, valDs]) if (ds.kind === 'tensor') ds.images.dispose();
  }
}

const EVALUATIONS: Record<string, (f: Flags) => Promise<number>> = { knn: evalKnn, linear: evalLinear, semisup: evalSemisup };

export async function evalCommand(argv: string[], flags: (argv: string[]) => Flags): Promise<number> {
  const [what, ...rest] = argv;
  const run = EVALUATIONS[what];
  if (!run) throw new UsageError(`eval: unknown evaluation '${what ?? ''}' (${Object.keys(EVALUATIONS).join(', ')})`);
  return run(flags(rest));
}
