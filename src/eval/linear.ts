// The linear protocol of eval_linear.py on features: a RegLog head (nn.Linear, weights N(0, 0.01), bias 0) trained
// by SGD with momentum and weight decay, CosineAnnealingLR stepped per epoch, validated after every epoch; the best
// top-1 over epochs and the top-5 of that epoch.
import type { Tensor } from '../torch/tensor.js';
import { fromTypedArray, zeros } from '../torch/creation.js';
import { crossEntropy } from '../torch/functional.js';
import { noGrad } from '../torch/autograd.js';
import { tidy } from '../torch/scope.js';
import { manualSeed } from '../torch/runtime.js';
import { Linear } from '../nn/layers.js';
import { SGD } from '../optim/sgd.js';
import { Rng } from '../data/rng.js';

export interface LinearProbeOptions {
  epochs?: number;
  batchSize?: number;
  lr?: number;
  momentum?: number;
  weightDecay?: number;
  nesterov?: boolean;
  /** The cosine's end (eta_min; default 0). */
  finalLr?: number;
  /** A new order of the training rows every epoch (default true); else the rows in order. */
  shuffle?: boolean;
  /** torch.manualSeed before the head is created, and the shuffling's seed (default 31). */
  seed?: number;
  /** Classes (default: the largest label + 1). */
  numClasses?: number;
  /** Called after each epoch. */
  onEpoch?: (e: { epoch: number; loss: number; top1: number; top5: number; lr: number }) => void;
}

/** An evaluation's course over epochs and its best epoch. */
export interface EvalCurve {
  top1PerEpoch: number[];
  top5PerEpoch: number[];
  lossPerEpoch: number[];
  bestTop1: number;
  /** The top-5 of the epoch of the best top-1. */
  bestTop5: number;
  bestEpoch: number;
}

export interface LinearProbeResult extends EvalCurve {
  classifier: Linear;
}

/** torch.optim.lr_scheduler.CosineAnnealingLR's recursive rule: the learning rate of epoch e + 1 after e. */
export function cosineAnnealingStep(lr: number, epoch: number, baseLr: number, tMax: number, etaMin: number): number {
  if (epoch === 0) return baseLr;
  if ((epoch - 1 - tMax) % (2 * tMax) === 0) return lr + ((baseLr - etaMin) * (1 - Math.cos(Math.PI / tMax))) / 2;
  return ((1 + Math.cos((Math.PI * epoch) / tMax)) / (1 + Math.cos((Math.PI * (epoch - 1)) / tMax))) * (lr - etaMin) + etaMin;
}

/** Features and their labels, a batch at a time (the head's input). */
export interface FeatureBatch {
  /** B x D float. */
  x: Tensor;
  /** B int64. */
  y: Tensor;
}

/** Batches from a generator or an async one (a plain loop for the first: no promise per batch). */
export type Batches<T> = Iterable<T> | AsyncIterable<T>;

async function forEachBatch<T>(batches: Batches<T>, fn: (b: T) => void): Promise<void> {
  if (Symbol.asyncIterator in batches) {
    for await (const b of batches) fn(b);
  } else {
    for (const b of batches) fn(b);
  }
}

/** Top-1 and top-5 accuracy of `head` over batches. */
export async function accuracy(head: Linear, batches: Batches<FeatureBatch>): Promise<{ top1: number; top5: number }> {
  let c1 = 0;
  let c5 = 0;
  let n = 0;
  const k = Math.min(5, head.outFeatures);
  await forEachBatch(batches, (b) => {
    noGrad(() => tidy(() => {
      const hits = head.forward(b.x).topk(k, 1).indices.eq(b.y.unsqueeze(1));
      c1 += hits.narrow(1, 0, 1).sum().item();
      c5 += hits.sum().item();
    }));
    n += b.y.shape[0];
  });
  if (!n) throw new Error('linear evaluation: an empty validation split');
  return { top1: c1 / n, top5: c5 / n };
}

/** The rows of x and y in `order` (or in order), `batchSize` at a time; each batch freed once the consumer moves on. */
function* rowBatches(x: Tensor, y: Tensor, batchSize: number, order: Int32Array | null): Generator<FeatureBatch> {
  const n = x.shape[0];
  const idx = order ? fromTypedArray(order).long() : null;
  try {
    for (let s = 0; s < n; s += batchSize) {
      const m = Math.min(batchSize, n - s);
      const b = tidy(() => {
        const rows = idx?.narrow(0, s, m);
        return rows ? { x: x.indexSelect(0, rows), y: y.indexSelect(0, rows) } : { x: x.narrow(0, s, m), y: y.narrow(0, s, m) };
      });
      try {
        yield b;
      } finally {
        b.x.dispose();
        b.y.dispose();
      }
    }
  } finally {
    idx?.dispose();
  }
}

export type HeadOptions = Omit<LinearProbeOptions, 'batchSize' | 'shuffle' | 'numClasses'>;

/**
 * eval_linear.py's RegLog trained on the batches train(epoch) yields, validated on val() after every epoch: the
 * head under the seed, SGD, CosineAnnealingLR stepped per epoch; the best top-1 and its epoch's top-5.
 */
export async function trainLinearHead(dim: number, classes: number, train: (epoch: number) => Batches<FeatureBatch>,
  val: () => Batches<FeatureBatch>, o: HeadOptions = {}): Promise<LinearProbeResult> {
  const epochs = o.epochs ?? 100;
  const baseLr = o.lr ?? 0.3;
  manualSeed(o.seed ?? 31);
  const head = new Linear(dim, classes);
  noGrad(() => {
    head.weight.normal_(0, 0.01);
    head.bias!.zero_();
  });
  const sgd = new SGD(head.parameters(), { lr: baseLr, momentum: o.momentum ?? 0.9, weightDecay: o.weightDecay ?? 1e-6, nesterov: o.nesterov ?? false });
  const r: LinearProbeResult = { classifier: head, top1PerEpoch: [], top5PerEpoch: [], lossPerEpoch: [], bestTop1: -1, bestTop5: 0, bestEpoch: 0 };
  let lr = baseLr;
  try {
    for (let epoch = 0; epoch < epochs; epoch++) {
      for (const g of sgd.paramGroups) g.lr = lr;
      const total = zeros([]);
      let seen = 0;
      await forEachBatch(train(epoch), (b) => {
        tidy(() => {
          const loss = crossEntropy(head.forward(b.x), b.y);
          sgd.zeroGrad();
          loss.backward();
          sgd.step();
          total.add_(loss.detach(), b.y.shape[0]); // summed on the tensor: no synchronizing item() per step
        });
        seen += b.y.shape[0];
      });
      const epochLoss = total.item() / Math.max(1, seen);
      total.dispose();
      const { top1, top5 } = await accuracy(head, val());
      r.top1PerEpoch.push(top1);
      r.top5PerEpoch.push(top5);
      r.lossPerEpoch.push(epochLoss);
      if (top1 > r.bestTop1) Object.assign(r, { bestTop1: top1, bestTop5: top5, bestEpoch: epoch + 1 });
      o.onEpoch?.({ epoch: epoch + 1, loss: epochLoss, top1, top5, lr });
      lr = cosineAnnealingStep(lr, epoch + 1, baseLr, epochs, o.finalLr ?? 0);
      await new Promise(setImmediate); // let signals through between epochs
    }
  } finally {
    for (const b of sgd.momentumBuffers.values()) b.dispose();
  }
  return r;
}

/** eval_linear.py's training of the head on fixed features (trainX: N x D float, trainY: N int64). */
export async function linearProbe(trainX: Tensor, trainY: Tensor, valX: Tensor, valY: Tensor, o: LinearProbeOptions = {}): Promise<LinearProbeResult> {
  const bs = o.batchSize ?? 256;
  const seed = o.seed ?? 31;
  const [n, dim] = trainX.shape;
  if (trainX.ndim !== 2 || valX.ndim !== 2 || valX.shape[1] !== dim) {
    throw new Error(`linearProbe: features must be N x D matrices of one D, got [${trainX.shape}] and [${valX.shape}]`);
  }
  if (trainY.shape[0] !== n || valY.shape[0] !== valX.shape[0]) throw new Error('linearProbe: one label per feature row is needed');
  if (n === 0 || valX.shape[0] === 0) throw new Error('linearProbe: an empty split');
  const maxLabel = noGrad(() => tidy(() => Math.max(trainY.max().item(), valY.max().item())));
  const minLabel = noGrad(() => tidy(() => Math.min(trainY.min().item(), valY.min().item())));
  const classes = o.numClasses ?? maxLabel + 1;
  if (minLabel < 0 || maxLabel >= classes) throw new Error(`linearProbe: labels must lie in [0, ${classes}), got ${minLabel}..${maxLabel}`);
  const [x, y, vx, vy] = tidy(() => [trainX.float(), trainY.long(), valX.float(), valY.long()]);
  try {
    const shuffle = o.shuffle ?? true;
    return await trainLinearHead(dim, classes, (epoch) => rowBatches(x, y, bs, shuffle ? new Rng(seed, epoch, 0x11ea).permutation(n) : null),
      () => rowBatches(vx, vy, 1024, null), o);
  } finally {
    [x, y, vx, vy].forEach((t) => t.dispose());
  }
}
