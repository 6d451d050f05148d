// eval_semisup.py's fine-tuning: the whole network (trunk and a new linear head) trained on labelled batches with
// SGD (momentum 0.9, no weight decay), one learning rate for the trunk and one for the head (parameters named
// *head*), MultiStepLR per epoch; validated after every epoch; the best top-1 and that epoch's top-5.
import type { Tensor } from '../torch/tensor.js';
import { crossEntropy } from '../torch/functional.js';
import { noGrad } from '../torch/autograd.js';
import { tidy } from '../torch/scope.js';
import type { ResNet } from '../models/resnet.js';
import { SGD } from '../optim/sgd.js';
import type { EvalCurve } from './linear.js';
import { tensor } from '../torch/creation.js';
import { Rng } from '../data/rng.js';
import type { Dataset } from '../data/datasets.js';
import type { LabelledBatch } from '../data/loader.js';
import { basename, dirname } from 'node:path';

export type { LabelledBatch } from '../data/loader.js';

export interface FineTuneOptions {
  epochs?: number;
  /** The trunk's learning rate (default 0.01, the 10% recipe; 0.02 for 1%). */
  lr?: number;
  /** The head's (default 0.2; 5 for 1%). */
  lrLastLayer?: number;
  /** Epochs after which both learning rates are multiplied by gamma (default [12, 16]). */
  decayEpochs?: number[];
  gamma?: number;
  momentum?: number;
  onEpoch?: (e: { epoch: number; loss: number; top1: number; top5: number; lr: number; lrLastLayer: number }) => void;
}

export type FineTuneResult = EvalCurve;

/** torch.optim.lr_scheduler.MultiStepLR's rate for `epoch`: multiplied by gamma at each milestone passed, one product at a time as PyTorch does. */
export function multiStepLr(base: number, epoch: number, milestones: number[], gamma: number): number {
  let lr = base;
  for (const m of milestones) if (m <= epoch) lr *= gamma;
  return lr;
}

/** The network's logits: trunk, then its projection head (a Linear to the classes, no normalization). */
function logits(model: ResNet, x: Tensor): Tensor {
  return tidy(() => model.forwardHead(model.forwardBackbone(x)).embedding);
}

/**
 * Fine-tunes `model` (a ResNet whose projection head is a Linear to the classes) for `epochs`, with the batches
 * train(epoch) yields, validating on val() after each epoch. The model is trained in place.
 */
export async function fineTune(
  model: ResNet,
  train: (epoch: number) => AsyncIterable<LabelledBatch>,
  val: () => AsyncIterable<LabelledBatch>,
  o: FineTuneOptions = {},
): Promise<FineTuneResult> {
  const epochs = o.epochs ?? 20;
  const lr = o.lr ?? 0.01;
  const lrLast = o.lrLastLayer ?? 0.2;
  const milestones = o.decayEpochs ?? [12, 16];
  const gamma = o.gamma ?? 0.2;
  const named = [...model.namedParameters()];
  const head = named.filter(([n]) => n.includes('head')).map(([, p]) => p);
  if (!head.length) throw new Error('fineTune: the model has no head (a projection_head Linear to the classes)');
  const sgd = new SGD([{ params: named.filter(([n]) => !n.includes('head')).map(([, p]) => p) }, { params: head, lr: lrLast }], {
    lr,
    momentum: o.momentum ?? 0.9,
    weightDecay: 0,
  });
  const r: FineTuneResult = { top1PerEpoch: [], top5PerEpoch: [], lossPerEpoch: [], bestTop1: -1, bestTop5: 0, bestEpoch: 0 };
  try {
    for (let epoch = 0; epoch < epochs; epoch++) {
      const lrs = [multiStepLr(lr, epoch, milestones, gamma), multiStepLr(lrLast, epoch, milestones, gamma)];
      sgd.paramGroups.forEach((g, i) => {
        g.lr = lrs[i];
      });
      model.train();
      let loss = 0;
      let seen = 0;
      for await (const b of train(epoch)) {
        loss += tidy(() => {
          const l = crossEntropy(logits(model, b.images), b.labels);
          sgd.zeroGrad();
          l.backward();
          sgd.step();
          return l.item() * b.labels.shape[0];
        });
        seen += b.labels.shape[0];
      }
      model.eval();
      let c1 = 0;
      let c5 = 0;
      let n = 0;
      for await (const b of val()) {
        noGrad(() =>
          tidy(() => {
            const out = logits(model, b.images);
            const hits = out.topk(Math.min(5, out.shape[1]), 1).indices.eq(b.labels.unsqueeze(1));
            c1 += hits.narrow(1, 0, 1).sum().item();
            c5 += hits.sum().item();
          }),
        );
        n += b.labels.shape[0];
      }
      if (!seen || !n) throw new Error(`fineTune: an empty ${seen ? 'validation' : 'training'} split`);
      const e = { epoch: epoch + 1, loss: loss / seen, top1: c1 / n, top5: c5 / n, lr: lrs[0], lrLastLayer: lrs[1] };
      r.top1PerEpoch.push(e.top1);
      r.top5PerEpoch.push(e.top5);
      r.lossPerEpoch.push(e.loss);
      if (e.top1 > r.bestTop1) Object.assign(r, { bestTop1: e.top1, bestTop5: e.top5, bestEpoch: e.epoch });
      o.onEpoch?.(e);
    }
  } finally {
    for (const b of sgd.momentumBuffers.values()) b.dispose();
  }
  return r;
}

/**
 * The labelled subset to fine-tune on: the images a SimCLR-style list names (one file name per line, as
 * imagenet_subsets/1percent.txt), or a seeded fraction of every class (at least one image each).
 */
export function labelledSubset(ds: Dataset, o: { names?: string[]; fraction?: number; seed?: number }): number[] {
  if (o.names) {
    if (ds.kind !== 'files') throw new Error(`${ds.name}: a subset file names image files; this dataset is in memory (use a fraction)`);
    // a name is a file's name (ImageNet's are unique: n01440764_10026.JPEG) or its class/name
    const byName = new Map<string, number>();
    ds.files.forEach((f, i) => {
      for (const key of [basename(f), `${basename(dirname(f))}/${basename(f)}`]) byName.set(key, byName.has(key) ? -1 : i);
    });
    const ambiguous = o.names.filter((n) => byName.get(n) === -1);
    if (ambiguous.length) throw new Error(`${ambiguous[0]} names several images of ${ds.name}: write it as class/name in the subset file`);
    const missing = o.names.filter((n) => !byName.has(n));
    if (missing.length)
      throw new Error(`${missing.length} images of the subset are not in ${ds.name} (such as ${missing.slice(0, 3).join(', ')})`);
    return o.names.map((n) => byName.get(n)!);
  }
  const fraction = o.fraction ?? 0.1;
  const byClass = new Map<number, number[]>();
  ds.labels.forEach((l, i) => {
    if (l < 0) return;
    if (!byClass.has(l)) byClass.set(l, []);
    byClass.get(l)!.push(i);
  });
  if (!byClass.size) throw new Error(`${ds.name}: no labelled images (class subfolders or a labelled list give labels)`);
  return [...byClass.keys()]
    .sort((a, b) => a - b)
    .flatMap((c) => {
      const rows = byClass.get(c)!;
      const order = new Rng(o.seed ?? 31, 0x5e1, c).permutation(rows.length);
      return Array.from(order.subarray(0, Math.max(1, Math.round(fraction * rows.length))), (j) => rows[j]).sort((a, b) => a - b);
    });
}

/** The rows `indices` of a dataset, as a dataset of their own. */
export function subsetOf(ds: Dataset, indices: number[]): Dataset {
  const labels = Int32Array.from(indices, (i) => ds.labels[i]);
  if (ds.kind === 'files')
    return { ...ds, name: `${ds.name} (subset)`, files: indices.map((i) => ds.files[i]), labels, length: indices.length };
  const images = tidy(() => ds.images.indexSelect(0, tensor(indices, { dtype: 'int64' })));
  return { kind: 'tensor', name: `${ds.name} (subset)`, images, labels, length: indices.length };
}
