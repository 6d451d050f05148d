// The linear protocol of eval_linear.py on features: a RegLog head (nn.Linear, weights N(0, 0.01), bias 0) trained
// by SGD with momentum and weight decay, CosineAnnealingLR stepped per epoch, validated after every epoch; the best
// top-1 over epochs and the top-5 of that epoch.
import type { Tensor } from '../torch/tensor.js';
import { arange, fromTypedArray, zeros } from '../torch/creation.js';
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

export interface LinearProbeResult {
  classifier: Linear;
  top1PerEpoch: number[];
  top5PerEpoch: number[];
  lossPerEpoch: number[];
  bestTop1: number;
  /** The top-5 of the epoch of the best top-1. */
  bestTop5: number;
  bestEpoch: number;
}

/** torch.optim.lr_scheduler.CosineAnnealingLR's recursive rule: the learning rate of epoch e + 1 after e. */
export function cosineAnnealingStep(lr: number, epoch: number, baseLr: number, tMax: number, etaMin: number): number {
  if (epoch === 0) return baseLr;
  if ((epoch - 1 - tMax) % (2 * tMax) === 0) return lr + ((baseLr - etaMin) * (1 - Math.cos(Math.PI / tMax))) / 2;
  return ((1 + Math.cos((Math.PI * epoch) / tMax)) / (1 + Math.cos((Math.PI * (epoch - 1)) / tMax))) * (lr - etaMin) + etaMin;
}

/** Top-1 and top-5 accuracy of `head` on features x with labels y, in batches. */
export function accuracy(head: Linear, x: Tensor, y: Tensor, batchSize = 1024): { top1: number; top5: number } {
  return noGrad(() => tidy(() => {
    let c1 = 0;
    let c5 = 0;
    const n = x.shape[0];
    const k = Math.min(5, head.outFeatures);
    for (let s = 0; s < n; s += batchSize) {
      tidy(() => {
        const m = Math.min(batchSize, n - s);
        const logits = head.forward(x.narrow(0, s, m).float());
        const truth = y.narrow(0, s, m).unsqueeze(1);
        const hits = logits.topk(k, 1).indices.eq(truth);
        c1 += hits.narrow(1, 0, 1).sum().item();
        c5 += hits.sum().item();
      });
    }
    return { top1: c1 / n, top5: c5 / n };
  }));
}

/** eval_linear.py's training of the head on fixed features (trainX: N x D float, trainY: N int64). */
export async function linearProbe(trainX: Tensor, trainY: Tensor, valX: Tensor, valY: Tensor, o: LinearProbeOptions = {}): Promise<LinearProbeResult> {
  const epochs = o.epochs ?? 100;
  const bs = o.batchSize ?? 256;
  const baseLr = o.lr ?? 0.3;
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

  manualSeed(seed);
  const head = new Linear(dim, classes);
  noGrad(() => {
    head.weight.normal_(0, 0.01);
    head.bias!.zero_();
  });
  const sgd = new SGD(head.parameters(), { lr: baseLr, momentum: o.momentum ?? 0.9, weightDecay: o.weightDecay ?? 1e-6, nesterov: o.nesterov ?? false });
  const trainXf = tidy(() => trainX.float());
  const trainYl = tidy(() => trainY.long());
  const valYl = tidy(() => valY.long());
  const r: LinearProbeResult = { classifier: head, top1PerEpoch: [], top5PerEpoch: [], lossPerEpoch: [], bestTop1: -1, bestTop5: 0, bestEpoch: 0 };
  let lr = baseLr;
  try {
    for (let epoch = 0; epoch < epochs; epoch++) {
      for (const g of sgd.paramGroups) g.lr = lr;
      const order = o.shuffle ?? true ? fromTypedArray(new Rng(seed, epoch, 0x11ea).permutation(n)).long() : arange(0, n, 1, { dtype: 'int64' });
      const total = zeros([]);
      for (let s = 0; s < n; s += bs) {
        tidy(() => {
          const idx = order.narrow(0, s, Math.min(bs, n - s));
          const loss = crossEntropy(head.forward(trainXf.indexSelect(0, idx)), trainYl.indexSelect(0, idx));
          sgd.zeroGrad();
          loss.backward();
          sgd.step();
          total.add_(loss.detach(), idx.shape[0]); // summed on the tensor: no synchronizing item() per step
        });
      }
      const epochLoss = total.item() / n;
      total.dispose();
      order.dispose();
      const { top1, top5 } = accuracy(head, valX, valYl);
      r.top1PerEpoch.push(top1);
      r.top5PerEpoch.push(top5);
      r.lossPerEpoch.push(epochLoss);
      if (top1 > r.bestTop1) Object.assign(r, { bestTop1: top1, bestTop5: top5, bestEpoch: epoch + 1 });
      o.onEpoch?.({ epoch: epoch + 1, loss: epochLoss, top1, top5, lr });
      lr = cosineAnnealingStep(lr, epoch + 1, baseLr, epochs, o.finalLr ?? 0);
      await new Promise(setImmediate); // let signals through between epochs
    }
  } finally {
    trainXf.dispose();
    trainYl.dispose();
    valYl.dispose();
    for (const b of sgd.momentumBuffers.values()) b.dispose();
  }
  return r;
}
