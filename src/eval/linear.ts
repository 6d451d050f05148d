// The linear protocol of eval_linear.py on features: a RegLog head (an optional BatchNorm2d, then nn.Linear with
// weights N(0, 0.01) and bias 0) trained by SGD with momentum and weight decay, CosineAnnealingLR stepped per epoch,
// validated after every epoch; the best top-1 over epochs and the top-5 of that epoch. Resumable epoch by epoch.
import type { Tensor } from '../torch/tensor.js';
import { fromTypedArray } from '../torch/creation.js';
import * as F from '../torch/functional.js';
import { noGrad } from '../torch/autograd.js';
import { tidy } from '../torch/scope.js';
import { manualSeed } from '../torch/runtime.js';
import { BatchNorm2d, Linear } from '../nn/layers.js';
import { Module } from '../nn/module.js';
import { SGD, type TorchSGDState } from '../optim/sgd.js';
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
  /** eval_linear.py's use_bn: a BatchNorm2d over pooled maps (features N x C x h x w, the avg6 pool) before the linear layer. */
  useBn?: boolean;
  /** Called after each epoch. */
  onEpoch?: (e: { epoch: number; loss: number; top1: number; top5: number; lr: number }) => void;
  /** Called after each epoch with the state from which `resume` continues exactly: its tensors are the live ones, save or copy them. */
  onCheckpoint?: (state: LinearHeadState) => void;
  /** A state onCheckpoint gave: training goes on from its epoch, as if never stopped. */
  resume?: LinearHeadState;
  /** Polled between batches: true abandons the epoch under way (the last checkpoint stays) and returns, interrupted. */
  shouldStop?: () => boolean;
}

/** What a probe needs to go on after `epoch` epochs: eval_linear.py's checkpoint, with the curve so far. */
export interface LinearHeadState {
  epoch: number;
  state_dict: Map<string, Tensor>;
  optimizer: TorchSGDState;
  /** CosineAnnealingLR's learning rate for the next epoch. */
  lr: number;
  top1: number[];
  top5: number[];
  loss: number[];
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
  /** The head's linear layer. */
  classifier: Linear;
  /** The whole head (its BatchNorm with useBn). */
  head: RegLog;
  /** Stopped by shouldStop before the last epoch. */
  interrupted: boolean;
}

/**
 * eval_linear.py's RegLog after its pooling: with useBn a BatchNorm2d over the channels of pooled maps, then
 * flatten and nn.Linear(D, classes) with weight N(0, 0.01) and bias 0 (drawn from the global generator).
 */
export class RegLog extends Module {
  readonly bn: BatchNorm2d | null;
  readonly linear: Linear;
  /** `shape`: one sample's features, [D] or pooled maps [C, h, w]. */
  constructor(
    shape: number[],
    readonly classes: number,
    useBn = false,
  ) {
    super();
    if (useBn && shape.length !== 3)
      throw new Error(`RegLog: useBn normalizes pooled maps C x h x w (the avg6 pool), got features of shape [${shape}]`);
    this.bn = useBn ? this.registerModule('bn', new BatchNorm2d(shape[0])) : null;
    this.linear = this.registerModule(
      'linear',
      new Linear(
        shape.reduce((a, b) => a * b, 1),
        classes,
      ),
    );
    noGrad(() => {
      this.linear.weight.normal_(0, 0.01);
      this.linear.bias!.zero_();
    });
  }
  forward(x: Tensor): Tensor {
    return tidy(() => this.linear.forward((this.bn ? this.bn.forward(x) : x).flatten(1)));
  }
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

/** fn on each batch until it returns false; true when every batch was seen. */
// biome-ignore lint/suspicious/noConfusingVoidType: a callback may return nothing (void) or false to stop
async function forEachBatch<T>(batches: Batches<T>, fn: (b: T) => boolean | void): Promise<boolean> {
  if (Symbol.asyncIterator in batches) {
    for await (const b of batches) if (fn(b) === false) return false;
  } else {
    for (const b of batches) if (fn(b) === false) return false;
  }
  return true;
}

/** Top-1 and top-5 accuracy of a head (in eval mode) over batches. */
export async function accuracy(head: Linear | RegLog, batches: Batches<FeatureBatch>): Promise<{ top1: number; top5: number }> {
  let c1 = 0;
  let c5 = 0;
  let n = 0;
  const k = Math.min(5, head instanceof Linear ? head.outFeatures : head.classes);
  const training = head.training;
  head.eval();
  await forEachBatch(batches, (b) => {
    noGrad(() =>
      tidy(() => {
        const hits = head.forward(b.x).topk(k, 1).indices.eq(b.y.unsqueeze(1));
        c1 += hits.narrow(1, 0, 1).sum().item();
        c5 += hits.sum().item();
      }),
    );
    n += b.y.shape[0];
  });
  head.train(training);
  if (!n) throw new Error('linear evaluation: an empty validation split');
  return { top1: c1 / n, top5: c5 / n };
}

/** The rows of x and y in `order` (or in order), `batchSize` at a time; each batch freed once the consumer moves on. */
function* rowBatches(x: Tensor, y: Tensor, batchSize: number, order: Int32Array | null): Generator<FeatureBatch> {
  const n = x.shape[0];
  const idx = order ? tidy(() => fromTypedArray(order).long()) : null;
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

/** The head and its optimizer under the seed, at the start or at `resume`'s epoch. */
function headAndOptimizer(
  shape: number[],
  classes: number,
  o: HeadOptions,
): { head: RegLog; sgd: SGD; r: LinearProbeResult; lr: number; start: number } {
  manualSeed(o.seed ?? 31);
  const head = new RegLog(shape, classes, o.useBn);
  const sgd = new SGD(head.parameters(), {
    lr: o.lr ?? 0.3,
    momentum: o.momentum ?? 0.9,
    weightDecay: o.weightDecay ?? 1e-6,
    nesterov: o.nesterov ?? false,
  });
  const r: LinearProbeResult = {
    classifier: head.linear,
    head,
    top1PerEpoch: [],
    top5PerEpoch: [],
    lossPerEpoch: [],
    bestTop1: -1,
    bestTop5: 0,
    bestEpoch: 0,
    interrupted: false,
  };
  const s = o.resume;
  if (!s) return { head, sgd, r, lr: o.lr ?? 0.3, start: 0 };
  head.loadStateDict(s.state_dict);
  sgd.loadTorchStateDict(s.optimizer);
  s.top1.forEach((top1, i) => record(r, i + 1, top1, s.top5[i], s.loss[i]));
  return { head, sgd, r, lr: s.lr, start: s.epoch };
}

function record(r: EvalCurve, epoch: number, top1: number, top5: number, loss: number): void {
  r.top1PerEpoch.push(top1);
  r.top5PerEpoch.push(top5);
  r.lossPerEpoch.push(loss);
  if (top1 > r.bestTop1) Object.assign(r, { bestTop1: top1, bestTop5: top5, bestEpoch: epoch });
}

/** A step of cross-entropy on the head through autograd; the batch's summed loss. */
function autogradStep(head: RegLog, sgd: SGD, b: FeatureBatch): number {
  return tidy(() => {
    const loss = F.crossEntropy(head.forward(b.x), b.y);
    sgd.zeroGrad();
    loss.backward();
    sgd.step();
    return loss.item() * b.y.shape[0];
  });
}

/** A step of cross-entropy on a bare linear layer, its gradients computed in one call; the batch's summed loss. */
function linearStep(linear: Linear, sgd: SGD, b: FeatureBatch): number {
  const { gradWeight, gradBias, lossSum } = F.linearCrossEntropyGrad(b.x, b.y, linear.weight, linear.bias!);
  sgd.step([gradWeight, gradBias]);
  gradWeight.dispose();
  gradBias.dispose();
  return lossSum;
}

/** One epoch of SGD on the head; the mean loss, or null when shouldStop ended it early. */
async function trainEpoch(
  head: RegLog,
  sgd: SGD,
  lr: number,
  batches: Batches<FeatureBatch>,
  shouldStop?: () => boolean,
): Promise<number | null> {
  for (const g of sgd.paramGroups) g.lr = lr;
  head.train();
  let total = 0;
  let seen = 0;
  const done = await forEachBatch(batches, (b) => {
    if (shouldStop?.()) return false;
    total += head.bn ? autogradStep(head, sgd, b) : linearStep(head.linear, sgd, b);
    seen += b.y.shape[0];
  });
  return done ? total / Math.max(1, seen) : null;
}

/**
 * eval_linear.py's RegLog trained on the batches train(epoch) yields, validated on val() after every epoch: the
 * head under the seed, SGD, CosineAnnealingLR stepped per epoch; the best top-1 and its epoch's top-5. `shape` is
 * one sample's features: [D], or [C, h, w] for pooled maps.
 */
export async function trainLinearHead(
  shape: number[],
  classes: number,
  train: (epoch: number) => Batches<FeatureBatch>,
  val: () => Batches<FeatureBatch>,
  o: HeadOptions = {},
): Promise<LinearProbeResult> {
  const epochs = o.epochs ?? 100;
  const baseLr = o.lr ?? 0.3;
  const { head, sgd, r, start, lr: lr0 } = headAndOptimizer(shape, classes, o);
  let lr = lr0;
  try {
    for (let epoch = start; epoch < epochs; epoch++) {
      const loss = await trainEpoch(head, sgd, lr, train(epoch), o.shouldStop);
      if (loss === null) return Object.assign(r, { interrupted: true });
      const { top1, top5 } = await accuracy(head, val());
      record(r, epoch + 1, top1, top5, loss);
      o.onEpoch?.({ epoch: epoch + 1, loss, top1, top5, lr });
      lr = cosineAnnealingStep(lr, epoch + 1, baseLr, epochs, o.finalLr ?? 0);
      const next = lr;
      if (o.onCheckpoint)
        tidy(() =>
          o.onCheckpoint!({
            epoch: epoch + 1,
            state_dict: new Map(Object.entries(head.stateDict())),
            optimizer: sgd.torchStateDict(),
            lr: next,
            top1: [...r.top1PerEpoch],
            top5: [...r.top5PerEpoch],
            loss: [...r.lossPerEpoch],
          }),
        );
      await new Promise(setImmediate); // let signals through between epochs
      if (o.shouldStop?.() && epoch + 1 < epochs) return Object.assign(r, { interrupted: true });
    }
  } finally {
    for (const b of sgd.momentumBuffers.values()) b.dispose();
  }
  return r;
}

/**
 * eval_linear.py's training of the head on fixed features (trainX: N x D float, or N x C x h x w pooled maps for
 * useBn; trainY: N int64).
 */
export async function linearProbe(
  trainX: Tensor,
  trainY: Tensor,
  valX: Tensor,
  valY: Tensor,
  o: LinearProbeOptions = {},
): Promise<LinearProbeResult> {
  const bs = o.batchSize ?? 256;
  const seed = o.seed ?? 31;
  const [n, ...shape] = trainX.shape;
  if (![2, 4].includes(trainX.ndim) || valX.ndim !== trainX.ndim || valX.shape.slice(1).some((d, i) => d !== shape[i])) {
    throw new Error(
      `linearProbe: features must be N x D matrices (or N x C x h x w maps) of one shape, got [${trainX.shape}] and [${valX.shape}]`,
    );
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
    return await trainLinearHead(
      shape,
      classes,
      (epoch) => rowBatches(x, y, bs, shuffle ? new Rng(seed, epoch, 0x11ea).permutation(n) : null),
      () => rowBatches(vx, vy, 1024, null),
      o,
    );
  } finally {
    [x, y, vx, vy].forEach((t) => t.dispose());
  }
}
