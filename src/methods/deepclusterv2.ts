// DeepCluster-v2, as main_deepclusterv2.py trains it: a memory bank of every sample's embedding (one per crop in
// crops_for_assign), spherical k-means on it at the start of every epoch for each prototype head, the centroids
// copied into that head, and a cross-entropy loss against each sample's cluster over all its crops.
import { Tensor } from '../torch/tensor.js';
import { cat, conv2d, crossEntropy, normalize, where } from '../torch/functional.js';
import { full, ones, randperm, tensor, zeros } from '../torch/creation.js';
import { noGrad } from '../torch/autograd.js';
import { keep, tidy } from '../torch/scope.js';
import { singleProcess, type ProcessGroup } from '../dist/group.js';
import { forwardCrops, normalizePrototypes, optimizerStep, prototypeHeads } from './common.js';
import type { IterationResult, MethodBatch, MethodContext, TrainingMethod } from './method.js';
import { z } from 'zod';
import { list, section } from './schema.js';

/**
 * The index of each row's largest entry (the first, on ties: torch.argmax's), for an N x K matrix. libtorch's
 * argmax over the contiguous dimension is scalar code, ~5x slower than amax: rows are cut into blocks of b,
 * the block holding the maximum found by amax, then argmax only within it.
 */
export function rowArgmax(scores: Tensor): Tensor {
  const [n, k] = scores.shape;
  const b = blockSize(k);
  if (b === 0 || !scores.isContiguous()) return scores.argmax(1);
  return tidy(() => {
    const blocks = scores.view(n, k / b, b);
    const block = blocks.amax(2).argmax(1);
    const within = blocks
      .gather(1, block.view(n, 1, 1).expand(n, 1, b))
      .squeeze(1)
      .argmax(1);
    return block.mul(b).add(within);
  });
}

/** A divisor of k near 2 sqrt(k) (100 for 3000), or 0 when k has none worth the blocking. */
function blockSize(k: number): number {
  const target = 2 * Math.sqrt(k);
  let best = 0;
  for (let b = 8; b <= k / 4; b++) if (k % b === 0 && Math.abs(b - target) < Math.abs(best - target)) best = b;
  return best;
}

/** Entries of the score matrix computed at once (128 MiB of float32): a large bank never needs N x K memory. */
const SCORES_AT_ONCE = 2 ** 25;

/**
 * For each row of `x` (N x D), the index of its largest dot product with the rows of `centroids` (K x D), by
 * blocks of rows. On the CPU the dot products are a 1x1 convolution in channels_last, which oneDNN computes ~2x
 * faster than the BLAS matrix product (the same float32 sums in another order).
 */
export function nearestCentroid(x: Tensor, centroids: Tensor): Tensor {
  return noGrad(() =>
    tidy(() => {
      const [n, d] = x.shape;
      const k = centroids.shape[0];
      const rows = Math.max(1, Math.ceil(SCORES_AT_ONCE / k));
      const weight = x.device === 'cpu' ? centroids.reshape([k, d, 1, 1]).contiguous('channelsLast') : centroids.t();
      const out = zeros([n], { dtype: 'int64', device: x.device });
      for (let s = 0; s < n; s += rows) {
        tidy(() => {
          const m = Math.min(rows, n - s);
          const part = x.narrow(0, s, m).contiguous();
          const scores =
            x.device === 'cpu'
              ? conv2d(part.view(1, m, 1, d).permute(0, 3, 1, 2), weight)
                  .permute(0, 2, 3, 1)
                  .reshape([m, k]) // N=1, C=d, H=m, W=1
              : part.mm(weight);
          out.narrow(0, s, m).copy_(rowArgmax(scores));
        });
      }
      return out;
    }),
  );
}

export interface KMeansOptions {
  /** Number of clusters. */
  k: number;
  /** Mean updates (the assignment pass runs once more, after the last; default 10). */
  iterations?: number;
  /** The processes whose banks are clustered together (default: this one alone). */
  group?: ProcessGroup;
  /** Rows each process's bank gets per iteration (its batch): how its rows interleave in the job's (see initialCentroids). */
  batchRows?: number;
}

export interface KMeansResult {
  /** k x D, rows L2-normalized. */
  centroids: Tensor;
  /** N int64: each row's cluster under the final centroids. */
  assignments: Tensor;
}

/**
 * Spherical k-means of main_deepclusterv2.py's cluster_memory for one head: initial centroids are the bank's rows
 * at torch.randperm(N)[:k] (the global generator, on rank 0, broadcast); then `iterations` times: assign each row
 * to its largest dot product, each centroid the mean of its rows (an empty cluster keeps its centroid), all
 * centroids L2-normalized; a last assignment with the final centroids. Sums and counts are summed over the group.
 */
export function sphericalKMeans(bank: Tensor, o: KMeansOptions): KMeansResult {
  const { k } = o;
  const iterations = o.iterations ?? 10;
  const group = o.group ?? singleProcess;
  const [n, dim] = bank.shape;
  if (bank.ndim !== 2) throw new Error(`sphericalKMeans: the bank must be N x D, got [${bank.shape}]`);
  if (!(Number.isInteger(k) && k >= 1)) throw new Error(`sphericalKMeans: k must be a positive integer, got ${k}`);
  if (k > n * group.worldSize) {
    throw new Error(
      `sphericalKMeans: ${k} centroids from a bank of ${n * group.worldSize} rows: reduce the number of prototypes (model.nmb_prototypes) or use more data`,
    );
  }
  return noGrad(() =>
    tidy(() => {
      let centroids = initialCentroids(bank, k, group, o.batchRows ?? n);
      let assignments = nearestCentroid(bank, centroids);
      const unit = ones([n], { device: bank.device });
      for (let it = 0; it < iterations; it++) {
        const sums = group.allReduceSum_(zeros([k, dim], { device: bank.device }).indexAdd_(0, assignments, bank));
        const counts = group.allReduceSum_(zeros([k], { device: bank.device }).indexAdd_(0, assignments, unit));
        const mean = sums.div(counts.clampMin(1).unsqueeze(1));
        centroids = normalize(where(counts.gt(0).unsqueeze(1), mean, centroids), 2, 1);
        assignments = nearestCentroid(bank, centroids);
      }
      return { centroids, assignments };
    }),
  );
}

/**
 * The rows at torch.randperm(N)[:k] of the job's bank, N rows in the order one process of the whole batch would
 * hold them: rank r's row it * B + p is the job's row it * B * W + r + p * W (the sampler gives rank r positions r,
 * r + W, ... of each global batch). Rank 0 draws, each rank contributes the rows it holds, an all-reduce sums them;
 * so W processes start from the centroids of one. (main_deepclusterv2.py draws from rank 0's own rows instead.)
 */
function initialCentroids(bank: Tensor, k: number, group: ProcessGroup, batchRows: number): Tensor {
  const [n, dim] = bank.shape;
  const W = group.worldSize;
  const device = bank.device;
  if (W === 1) return bank.indexSelect(0, randperm(n).narrow(0, 0, k).to({ device }));
  const picks = group
    .broadcast_(group.rank === 0 ? randperm(n * W).narrow(0, 0, k) : zeros([k], { dtype: 'int64' }), 0)
    .tolist() as number[];
  const B = batchRows;
  const local = picks.map((g) => Math.floor(g / (B * W)) * B + Math.floor((g % (B * W)) / W));
  const mine = picks.map((g) => (g % (B * W)) % W === group.rank);
  const rows = bank.indexSelect(
    0,
    tensor(
      local.map((l, i) => (mine[i] ? l : 0)),
      { dtype: 'int64', device },
    ),
  );
  return group.allReduceSum_(rows.mul(tensor(mine.map(Number), { device }).view(k, 1)).contiguous()).view(k, dim);
}

export interface LossOptions {
  /** Crops per resolution group, as the reference's nmb_crops (e.g. [2, 6]). */
  nmbCrops: number[];
  /** Softmax temperature (default 0.1). */
  temperature?: number;
}

/**
 * main_deepclusterv2.py's loss: the mean over heads h of cross-entropy(scores[h] / T, targets[h] repeated over all
 * crops), targets of -100 ignored. scores: one (crops x bs) x K_h matrix per head, crops stacked in order;
 * targets: heads x bs int64.
 */
export function loss(scores: Tensor[], targets: Tensor, o: LossOptions): Tensor {
  const n = o.nmbCrops.reduce((a, b) => a + b, 0);
  if (targets.ndim !== 2 || targets.shape[0] !== scores.length) {
    throw new Error(`deepclusterv2.loss: targets must be heads x batch (${scores.length} x bs), got [${targets.shape}]`);
  }
  const bs = targets.shape[1];
  scores.forEach((s, h) => {
    if (s.ndim !== 2 || s.shape[0] !== n * bs)
      throw new Error(`deepclusterv2.loss: scores[${h}] has shape [${s.shape}], expected crops x batch = ${n * bs} rows`);
  });
  return tidy(() => {
    let total: Tensor | null = null;
    scores.forEach((s, h) => {
      const x = (s.dtype === 'float32' ? s : s.float()).div(o.temperature ?? 0.1);
      const ce = crossEntropy(x, targets.select(0, h).repeat(n), { ignoreIndex: -100 });
      total = total === null ? ce : total.add(ce);
    });
    return total!.div(scores.length);
  });
}

/**
 * The memory bank: for each crop in crops_for_assign, the embedding of every sample of the epoch (rows in the
 * epoch's order), and their dataset indices.
 */
export class MemoryBank {
  constructor(
    readonly embeddings: Tensor,
    readonly index: Tensor,
  ) {}

  static zeros(banks: number, size: number, dim: number, device: string): MemoryBank {
    return new MemoryBank(keep(zeros([banks, size, dim], { device })), keep(zeros([size], { dtype: 'int64', device })));
  }

  get size(): number {
    return this.index.shape[0];
  }

  /** Rows start.. start+bs: the batch's indices and, for bank i, the embeddings of crop cropsForAssign[i]. */
  write(start: number, indices: Tensor, embedding: Tensor, cropsForAssign: number[]): void {
    const bs = indices.shape[0];
    noGrad(() =>
      tidy(() => {
        this.index.narrow(0, start, bs).copy_(indices);
        cropsForAssign.forEach((c, i) =>
          this.embeddings
            .select(0, i)
            .narrow(0, start, bs)
            .copy_(embedding.narrow(0, c * bs, bs)),
        );
      }),
    );
  }

  dispose(): void {
    this.embeddings.dispose();
    this.index.dispose();
  }
}

/**
 * How a clustering method labels the bank at the start of an epoch: for head h (prototype weight K_h x D), its
 * bank's embeddings (N x D) -> N int64 labels. It may write the head's prototypes (k-means copies its centroids).
 */
export type AssignRule = (bank: Tensor, prototypes: Tensor, group: ProcessGroup) => Tensor;

/**
 * cluster_memory: labels for every head h from bank h mod (number of banks), gathered from every process into a
 * heads x dataset size table (-100 for samples in no bank).
 */
export function clusterMemory(
  bank: MemoryBank,
  heads: Tensor[],
  rule: AssignRule,
  datasetSize: number,
  group: ProcessGroup = singleProcess,
): Tensor {
  return noGrad(() =>
    tidy(() => {
      const table = full([heads.length, datasetSize], -100, { dtype: 'int64' });
      const index = group.allGather(bank.index).cpu();
      const banks = bank.embeddings.shape[0];
      heads.forEach((w, h) =>
        tidy(() => {
          const labels = rule(bank.embeddings.select(0, h % banks), w, group);
          table.select(0, h).indexCopy_(0, index, group.allGather(labels).cpu());
        }),
      );
      return table;
    }),
  );
}

/** DeepCluster-v2's rule: spherical k-means with as many centroids as the head has prototypes, copied into them. */
export function kmeansRule(iterations: number, batchRows?: number): AssignRule {
  return (bank, prototypes, group) => {
    const { centroids, assignments } = sphericalKMeans(bank, { k: prototypes.shape[0], iterations, group, batchRows });
    noGrad(() => prototypes.copy_(centroids));
    centroids.dispose();
    return assignments;
  };
}

export interface ClusteringOptions {
  cropsForAssign: number[];
  temperature: number;
  /** Iterations during which SGD leaves the prototypes alone. */
  freezePrototypesNiters: number;
  /** L2-normalize the prototypes before each iteration and clustering (prototypes learned by SGD). */
  normalizePrototypes: boolean;
}

/**
 * The pipeline DeepCluster-v2 and SeLa-v2 share: the bank filled by a no-grad pass in train mode, labels per head
 * at each epoch's start from bank h mod (number of banks), the loss over all crops, the bank rows of each step
 * overwritten with its (pre-step) embeddings.
 */
export function createClusteringMethod(o: ClusteringOptions, rule: AssignRule, ctx: MethodContext): TrainingMethod {
  const { model, group } = ctx;
  const heads = prototypeHeads(model);
  if (heads.length === 0) throw new Error('a clustering method needs prototype heads (model.nmb_prototypes)');
  const bs = ctx.batchSize;
  let bank: MemoryBank | null = null;
  /** heads x dataset size: each sample's label, -100 where unknown. */
  let assignments: Tensor | null = null;

  const cluster = () => {
    if (o.normalizePrototypes) normalizePrototypes(model);
    const table = keep(clusterMemory(bank!, heads, rule, ctx.datasetSize, group));
    assignments?.dispose();
    assignments = table;
  };

  return {
    async prepare(pass: AsyncIterable<MethodBatch>) {
      if (bank) return; // from the checkpoint
      bank = MemoryBank.zeros(o.cropsForAssign.length, ctx.itersPerEpoch * bs, ctx.featDim, ctx.device);
      let start = 0;
      for await (const b of pass) {
        noGrad(() =>
          tidy(() => {
            // each assigned crop on its own, as the reference's init_memory (BatchNorm statistics per crop)
            const embedding = cat(o.cropsForAssign.map((c) => forwardCrops(ctx, [b.crops[c]]).embedding));
            const idx = tensor(Array.from(b.indices), { dtype: 'int64', device: ctx.device });
            bank!.write(
              start,
              idx,
              embedding,
              o.cropsForAssign.map((_, i) => i),
            );
          }),
        );
        start += bs;
      }
    },
    startEpoch(_epoch, fromIteration) {
      if (fromIteration > 0 && assignments) return; // resumed within the epoch: its labels are the checkpoint's
      cluster();
    },
    iteration(batch, lr, it, epochIteration): IterationResult {
      if (o.normalizePrototypes) normalizePrototypes(model);
      return tidy(() => {
        const { embedding, output } = forwardCrops(ctx, batch.crops);
        const scores = output instanceof Tensor ? [output] : output!; // one head (nmb_prototypes: K) or several
        const idx = tensor(Array.from(batch.indices), { dtype: 'int64' });
        const targets = assignments!.indexSelect(1, idx).to({ device: ctx.device });
        const l = loss(scores, targets, { nmbCrops: ctx.nmbCrops, temperature: o.temperature });
        optimizerStep(model, ctx.optimizer, l, lr, it, o.freezePrototypesNiters, ctx.syncGradients);
        bank!.write(epochIteration * bs, idx.to({ device: ctx.device }), embedding.detach(), o.cropsForAssign);
        return { loss: l.item(), scores: scores[0].narrow(0, 0, bs).detach() };
      });
    },
    state: () => ({ memory_embeddings: bank?.embeddings ?? null, memory_index: bank?.index ?? null, assignments }),
    loadState(s) {
      bank?.dispose();
      assignments?.dispose();
      bank =
        s.memory_embeddings instanceof Tensor && s.memory_index instanceof Tensor
          ? new MemoryBank(keep(s.memory_embeddings.clone()), keep(s.memory_index.clone()))
          : null;
      assignments = s.assignments instanceof Tensor ? keep(s.assignments.clone()) : null;
      if (bank && (bank.size !== ctx.itersPerEpoch * bs || bank.embeddings.shape[0] !== o.cropsForAssign.length)) {
        ctx.log(
          'note: the memory bank of the checkpoint does not fit this configuration (batch size or crops_for_assign changed): it is filled again',
        );
        bank.dispose();
        bank = null;
      }
      if (assignments && assignments.shape[1] !== ctx.datasetSize) {
        assignments.dispose();
        assignments = null;
      }
    },
    dispose() {
      bank?.dispose();
      assignments?.dispose();
    },
  };
}

/** The deepclusterv2 section of the configuration. */
export const deepclusterv2Section = section('DeepCluster-v2 (main_deepclusterv2.py): k-means pseudo-labels from memory banks', {
  crops_for_assign: list(z.int().min(0)).default([0, 1]).describe('crops whose embeddings fill the memory banks (one bank each)'),
  temperature: z.number().min(0).default(0.1).describe('softmax temperature'),
  freeze_prototypes_niters: z
    .int()
    .min(0)
    .default(300000)
    .describe(
      "iterations during which SGD does not update the prototypes (they are the k-means centroids); the reference recipes' 300000 means never",
    ),
  kmeans_iterations: z.int().min(1).default(10).describe('k-means mean updates per head per epoch (the assignment pass runs once more)'),
});
export type DeepClusterV2Section = z.output<typeof deepclusterv2Section>;

/** DeepCluster-v2 behind the trainer's seam: k-means labels, the centroids as prototypes. */
export function createDeepClusterV2(s: DeepClusterV2Section, ctx: MethodContext): TrainingMethod {
  const rows = ctx.itersPerEpoch * ctx.batchSize * ctx.group.worldSize;
  const k = Math.max(...prototypeHeads(ctx.model).map((w) => w.shape[0]));
  if (k > rows) {
    throw new Error(
      `deepclusterv2: ${k} prototypes (centroids) but the memory bank holds ${rows} samples per epoch: ` +
        'reduce model.nmb_prototypes or use more data',
    );
  }
  return createClusteringMethod(
    {
      cropsForAssign: s.crops_for_assign,
      temperature: s.temperature,
      freezePrototypesNiters: s.freeze_prototypes_niters,
      normalizePrototypes: false,
    },
    kmeansRule(s.kmeans_iterations, ctx.batchSize),
    ctx,
  );
}
