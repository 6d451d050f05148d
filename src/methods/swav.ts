// SwAV's method, exactly as main_swav.py computes it: Sinkhorn-Knopp assignments and the swapped-prediction
// loss over multi-crop scores, the queue, and the training iteration.
import { Tensor } from '../torch/tensor.js';
import { cat } from '../torch/functional.js';
import { zeros } from '../torch/creation.js';
import { noGrad } from '../torch/autograd.js';
import { keep, tidy } from '../torch/scope.js';
import type { ResNet } from '../models/resnet.js';
import type { LARC } from '../optim/larc.js';
import type { SGD } from '../optim/sgd.js';
import { forwardCrops, normalizePrototypes, optimizerStep } from './common.js';
import type { IterationResult, MethodContext, TrainingMethod } from './method.js';
import { singleProcess, type ProcessGroup } from '../dist/group.js';
import { z } from 'zod';
import { list, section } from './schema.js';

export { normalizePrototypes } from './common.js';

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
  /** The processes whose samples share the equipartition (default: this one alone). */
  group?: ProcessGroup;
}

/**
 * Sinkhorn-Knopp on a B x K score matrix: B x K soft assignments whose rows sum to 1 and whose columns are
 * equipartitioned. Computed in float32 without autograd.
 */
export function sinkhorn(scores: Tensor, o: SinkhornOptions = {}): Tensor {
  const epsilon = o.epsilon ?? 0.05;
  const iterations = o.iterations ?? 3;
  const group = o.group ?? singleProcess;
  return noGrad(() =>
    tidy(() => {
      let s = scores.dtype === 'float32' ? scores : scores.float();
      if (o.stable) s = s.sub(s.max());
      const Q = s.div(epsilon).exp().t(); // K x B, as in the paper's notation
      const K = Q.shape[0];
      const B = Q.shape[1] * group.worldSize;
      Q.div_(group.allReduceSum_(Q.sum()));
      for (let i = 0; i < iterations; i++) {
        Q.div_(group.allReduceSum_(Q.sum(1, true))).div_(K); // each prototype's total weight 1/K
        Q.div_(Q.sum(0, true)).div_(B); // each sample's total weight 1/B
      }
      return Q.mul_(B).t();
    }),
  );
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
  /** Several processes: Sinkhorn's sums over the group (the reference's distributed_sinkhorn). */
  group?: ProcessGroup;
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
    const logp = scores
      .div(o.temperature ?? 0.1)
      .logSoftmax(1)
      .view(n, bs, K);
    const total = logp.sum(0);
    let loss: Tensor | null = null;
    assign.forEach((c, i) => {
      const q = noGrad(() => {
        const own = scores.narrow(0, bs * c, bs).detach();
        const extra = o.queueScores?.[i];
        const all = extra ? cat([extra, own]) : own;
        const codes = sinkhorn(all, { epsilon: o.epsilon, iterations: o.sinkhornIterations, stable: o.stableSinkhorn, group: o.group });
        return codes.narrow(0, codes.shape[0] - bs, bs);
      });
      // sum over the other crops v of sum_k q * logp_v  =  q . (sum_v logp_v - logp_c)
      const others = total.sub(logp.select(0, c));
      const sub = q
        .mul(others)
        .sum()
        .div(-bs * (n - 1));
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

  get length(): number {
    return this.tensor.shape[1];
  }

  /**
   * For each assigned crop i: the scores queue[i] @ prototypesᵀ when the queue is in use (else null), then the
   * shift and push of that crop's embeddings (rows crop*bs .. crop*bs+bs of `embedding`).
   */
  step(embedding: Tensor, prototypes: Tensor, cropsForAssign: number[], bs: number): (Tensor | null)[] {
    return noGrad(() =>
      cropsForAssign.map((crop, i) =>
        tidy(() => {
          const q = this.tensor.select(0, i);
          let scores: Tensor | null = null;
          if (
            this.useTheQueue ||
            !q
              .select(0, this.length - 1)
              .eq(0)
              .all()
              .item()
          ) {
            this.useTheQueue = true;
            scores = q.mm(prototypes.t());
          }
          // queue[i, bs:] = queue[i, :-bs].clone(); queue[i, :bs] = embedding of this crop
          q.narrow(0, bs, this.length - bs).copy_(q.narrow(0, 0, this.length - bs).clone());
          q.narrow(0, 0, bs).copy_(embedding.narrow(0, crop * bs, bs));
          return scores;
        }),
      ),
    );
  }

  dispose(): void {
    this.tensor.dispose();
  }
}

export interface SwAVHyper {
  nmbCrops: number[];
  cropsForAssign: number[];
  temperature: number;
  epsilon: number;
  sinkhornIterations: number;
  freezePrototypesNiters: number;
  stableSinkhorn?: boolean;
}

export interface StepContext {
  model: ResNet;
  optimizer: LARC | SGD;
  hyper: SwAVHyper;
  /** Autocast dtype for the forward, or null for float32. */
  amp: 'bfloat16' | 'float16' | null;
  deviceType: 'cpu' | 'cuda';
  group?: ProcessGroup;
  /** After backward, before the step: gradients averaged over the processes (DistributedDataParallel). */
  syncGradients?: () => void;
}

export interface StepResult {
  loss: number;
  /** Prototype scores of the first assigned crop (kept for statistics; the caller disposes them). */
  scores: Tensor;
}

function prototypeWeight(model: ResNet): Tensor {
  const p = model.prototypes;
  if (p === null || 'heads' in p) throw new Error('SwAV training needs one prototype head (nmb_prototypes: a number)');
  return p.weight;
}

/**
 * One iteration of main_swav.py's train(): prototypes normalized, multi-crop forward, codes from Sinkhorn (with
 * the queue), swapped-prediction loss, backward, prototype gradients dropped while frozen, LARC + SGD step.
 */
export function swavStep(ctx: StepContext, crops: Tensor[], lr: number, iteration: number, queue: SwAVQueue | null): StepResult {
  const { model, hyper } = ctx;
  normalizePrototypes(model);
  return tidy(() => {
    const { embedding, output } = forwardCrops(ctx, crops);
    const scores = output as Tensor;
    const bs = crops[0].shape[0];
    const queueScores = queue?.step(embedding.detach().float(), prototypeWeight(model), hyper.cropsForAssign, bs);
    const loss = swavLoss(scores, {
      batchSize: bs,
      nmbCrops: hyper.nmbCrops,
      cropsForAssign: hyper.cropsForAssign,
      temperature: hyper.temperature,
      epsilon: hyper.epsilon,
      sinkhornIterations: hyper.sinkhornIterations,
      stableSinkhorn: hyper.stableSinkhorn,
      queueScores,
      group: ctx.group,
    });
    optimizerStep(model, ctx.optimizer, loss, lr, iteration, hyper.freezePrototypesNiters, ctx.syncGradients);
    return { loss: loss.item(), scores: scores.narrow(0, bs * hyper.cropsForAssign[0], bs).detach() };
  });
}

/** The swav section of the configuration. */
export const swavSection = section('SwAV (main_swav.py): swapped prediction of Sinkhorn-Knopp codes', {
  crops_for_assign: list(z.int().min(0)).default([0, 1]).describe('crops whose codes are computed'),
  temperature: z.number().min(0).default(0.1).describe('softmax temperature'),
  epsilon: z.number().min(0).default(0.05).describe('Sinkhorn regularization'),
  sinkhorn_iterations: z.int().min(1).default(3).describe('Sinkhorn iterations'),
  queue_length: z.int().min(0).default(0).describe('queue length (0: none), rounded down to a multiple of the batch'),
  epoch_queue_starts: z.int().min(0).default(15).describe('epoch from which the queue is used'),
  freeze_prototypes_niters: z.int().min(0).default(313).describe('iterations during which the prototypes are not updated'),
  stable_sinkhorn: z.boolean().default(false).describe('subtract the max score before exp (for float16 scores)'),
});
export type SwAVSection = z.output<typeof swavSection>;

/** SwAV behind the trainer's method seam: the queue from epoch_queue_starts, reset every epoch, saved with the model. */
export function createSwAV(o: SwAVSection, ctx: MethodContext): TrainingMethod {
  const hyper: SwAVHyper = {
    nmbCrops: ctx.nmbCrops,
    cropsForAssign: o.crops_for_assign,
    temperature: o.temperature,
    epsilon: o.epsilon,
    sinkhornIterations: o.sinkhorn_iterations,
    freezePrototypesNiters: o.freeze_prototypes_niters,
    stableSinkhorn: o.stable_sinkhorn,
  };
  const step = {
    model: ctx.model,
    optimizer: ctx.optimizer,
    hyper,
    amp: ctx.amp,
    deviceType: ctx.deviceType,
    group: ctx.group,
    syncGradients: ctx.syncGradients,
  };
  // queue_length is the whole group's, a multiple of the global batch, split over the processes (as main_swav.py)
  const W = ctx.group.worldSize;
  const queueLength = (o.queue_length - (o.queue_length % (ctx.batchSize * W))) / W;
  const lnK = Math.log(prototypeWeight(ctx.model).shape[0]);
  let queue: SwAVQueue | null = null;
  let nearLnK = 0;
  let warned = false;
  return {
    nanHint: 'overflow in Sinkhorn under float16 (run.amp: bf16, or swav.stable_sinkhorn: true)',
    startEpoch(epoch, fromIteration) {
      if (queueLength > 0 && epoch >= o.epoch_queue_starts && queue === null) {
        queue = SwAVQueue.zeros(o.crops_for_assign.length, queueLength, ctx.featDim, ctx.device);
      }
      if (queue && fromIteration === 0) queue.useTheQueue = false; // the reference resets it every epoch
    },
    iteration(batch, lr, it): IterationResult {
      const r: IterationResult = swavStep(step, batch.crops, lr, it, queue);
      if (it >= o.freeze_prototypes_niters && Math.abs(r.loss - lnK) < 0.01 * lnK) nearLnK++;
      else nearLnK = 0;
      if (nearLnK >= Math.max(200, ctx.itersPerEpoch) && !warned) {
        warned = true;
        r.warning =
          `warning: the loss has stayed at ln(K) = ${lnK.toFixed(3)} for ${nearLnK} iterations: every sample is assigned ` +
          'uniformly, the representation has collapsed. Known remedies: keep the prototypes frozen longer at the start ' +
          '(swav.freeze_prototypes_niters), lower optim.base_lr, use a queue when the batch is small next to the number of ' +
          'prototypes (swav.queue_length, swav.epoch_queue_starts), fewer prototypes (model.nmb_prototypes ~ 10x the classes), ' +
          'and check that the augmentations are on.';
      }
      return r;
    },
    state: () => ({ queue: queue?.tensor ?? null, use_the_queue: queue?.useTheQueue ?? false }),
    loadState(s) {
      queue?.dispose();
      queue = s.queue instanceof Tensor ? new SwAVQueue(keep(s.queue.clone())) : null;
      if (queue) queue.useTheQueue = s.use_the_queue === true;
    },
    dispose() {
      queue?.dispose();
    },
  };
}
