// SwAV's method, exactly as main_swav.py computes it: Sinkhorn-Knopp assignments and the swapped-prediction
// loss over multi-crop scores.
import { Tensor } from '../torch/tensor.js';
import { cat } from '../torch/functional.js';
import { zeros } from '../torch/creation.js';
import { noGrad } from '../torch/autograd.js';
import { keep, tidy } from '../torch/scope.js';
import { normalize } from '../torch/functional.js';
import type { ResNet } from '../models/resnet.js';

/** L2-normalizes every prototype (each row of each head's weight) in place, before a step, as main_swav.py. */
export function normalizePrototypes(model: ResNet): void {
  const heads = model.prototypes === null ? [] : 'heads' in model.prototypes ? model.prototypes.heads : [model.prototypes];
  noGrad(() => tidy(() => {
    for (const h of heads) h.weight.copy_(normalize(h.weight, 2, 1));
  }));
}

export interface SinkhornOptions {
  /** Entropic regularization: scores are divided by it before exp (default 0.05). */
  epsilon?: number;
  /** Alternating row / column normalizations (default 3). */
  iterations?: number;
  /**
   * Subtract the largest score before exp (as SwAV's first release did): the same assignments, no overflow when
   * scores / epsilon exceed float range. Off by default, as in the current reference.
   */
  stable?: boolean;
}

/**
 * Sinkhorn-Knopp on a B x K score matrix: B x K soft assignments whose rows sum to 1 and whose columns are
 * equipartitioned. Computed in float32 without autograd.
 */
export function sinkhorn(scores: Tensor, o: SinkhornOptions = {}): Tensor {
  const epsilon = o.epsilon ?? 0.05;
  const iterations = o.iterations ?? 3;
  return noGrad(() => tidy(() => {
    let s = scores.dtype === 'float32' ? scores : scores.float();
    if (o.stable) s = s.sub(s.max());
    const Q = s.div(epsilon).exp().t(); // K x B, as in the paper's notation
    const [K, B] = Q.shape;
    Q.div_(Q.sum());
    for (let i = 0; i < iterations; i++) {
      Q.div_(Q.sum(1, true)).div_(K); // each prototype's total weight 1/K
      Q.div_(Q.sum(0, true)).div_(B); // each sample's total weight 1/B
    }
    return Q.mul_(B).t();
  }));
}

export interface SwAVLossOptions {
  /** Samples per crop in this batch (bs). */
  batchSize: number;
  /** Crops per resolution group, as the reference's nmb_crops (e.g. [2, 6]). */
  nmbCrops: number[];
  /** Crops whose codes are computed and predicted from the others (default [0, 1]). */
  cropsForAssign?: number[];
  /** Softmax temperature of the predictions (default 0.1). */
  temperature?: number;
  epsilon?: number;
  sinkhornIterations?: number;
  stableSinkhorn?: boolean;
  /** One score matrix per assigned crop (queue embeddings x prototypes), prepended before Sinkhorn. */
  queueScores?: (Tensor | null)[];
}

/**
 * The swapped-prediction loss. `output` holds the prototype scores of every crop, crops stacked in order
 * (total crops x batch rows). For each assigned crop c, codes q = sinkhorn(scores of c)[-bs:] are predicted
 * from every other crop v: loss_c = -(1 / (n - 1)) sum_v mean_rows(sum_k q log softmax(output_v / T)).
 * The loss is the mean over the assigned crops.
 */
export function swavLoss(output: Tensor, o: SwAVLossOptions): Tensor {
  const bs = o.batchSize;
  const n = o.nmbCrops.reduce((a, b) => a + b, 0);
  const assign = o.cropsForAssign ?? [0, 1];
  const [rows, K] = output.shape;
  if (rows !== n * bs) {
    throw new Error(`swavLoss: output has ${rows} rows, expected crops x batch = ${n} x ${bs} = ${n * bs}`);
  }
  if (n < 2) throw new Error('swavLoss: needs at least 2 crops');
  for (const c of assign) if (!(c >= 0 && c < n)) throw new Error(`swavLoss: crop ${c} to assign is not among the ${n} crops`);
  if (o.queueScores && o.queueScores.length !== assign.length) {
    throw new Error(`swavLoss: queueScores needs one matrix per assigned crop (${assign.length})`);
  }
  return tidy(() => {
    const scores = output.dtype === 'float32' ? output : output.float();
    // log softmax(output_v / T) for every crop v at once, and its sum over crops.
    const logp = scores.div(o.temperature ?? 0.1).logSoftmax(1).view(n, bs, K);
    const total = logp.sum(0);
    let loss: Tensor | null = null;
    assign.forEach((c, i) => {
      const q = noGrad(() => {
        const own = scores.narrow(0, bs * c, bs).detach();
        const extra = o.queueScores?.[i];
        const all = extra ? cat([extra, own]) : own;
        const codes = sinkhorn(all, { epsilon: o.epsilon, iterations: o.sinkhornIterations, stable: o.stableSinkhorn });
        return codes.narrow(0, codes.shape[0] - bs, bs);
      });
      // sum over the other crops v of sum_k q * logp_v  =  q . (sum_v logp_v - logp_c)
      const others = total.sub(logp.select(0, c));
      const sub = q.mul(others).sum().div(-bs * (n - 1));
      loss = loss === null ? sub : loss.add(sub);
    });
    return loss!.div(assign.length);
  });
}

/**
 * SwAV's queue of past embeddings, one row block per assigned crop: [crops for assign, length, feature dim].
 * Once full (its last row non-zero) or already in use this epoch, its scores against the current prototypes
 * are prepended before Sinkhorn; each step shifts it by the batch and puts the new embeddings at its head.
 */
export class SwAVQueue {
  /** Set once the queue has been used in the current epoch (the reference resets it each epoch). */
  useTheQueue = false;

  constructor(readonly tensor: Tensor) {}

  static zeros(nAssign: number, length: number, dim: number, device = 'cpu'): SwAVQueue {
    return new SwAVQueue(keep(zeros([nAssign, length, dim], { device })));
  }

  get length(): number { return this.tensor.shape[1]; }

  /**
   * For each assigned crop i: the scores queue[i] @ prototypesᵀ when the queue is in use (else null), then the
   * shift and push of that crop's embeddings (rows crop*bs .. crop*bs+bs of `embedding`).
   */
  step(embedding: Tensor, prototypes: Tensor, cropsForAssign: number[], bs: number): (Tensor | null)[] {
    return noGrad(() => cropsForAssign.map((crop, i) => tidy(() => {
      const q = this.tensor.select(0, i);
      let scores: Tensor | null = null;
      if (this.useTheQueue || !q.select(0, this.length - 1).eq(0).all().item()) {
        this.useTheQueue = true;
        scores = q.mm(prototypes.t());
      }
      // queue[i, bs:] = queue[i, :-bs].clone(); queue[i, :bs] = embedding of this crop
      q.narrow(0, bs, this.length - bs).copy_(q.narrow(0, 0, this.length - bs).clone());
      q.narrow(0, 0, bs).copy_(embedding.narrow(0, crop * bs, bs));
      return scores;
    })));
  }

  dispose(): void { this.tensor.dispose(); }
}
