// Weighted kNN classification on frozen features (as VISSL, lightly and solo-learn evaluate): cosine similarity
// to a memory bank of training features, the k nearest vote with weight exp(similarity / T).
import type { Tensor } from '../torch/tensor.js';
import { zeros, fromTypedArray, tensor } from '../torch/creation.js';
import { cat, normalize } from '../torch/functional.js';
import { noGrad } from '../torch/autograd.js';
import { tidy } from '../torch/scope.js';
import { singleProcess, type ProcessGroup } from '../dist/group.js';
import type { ResNet } from '../models/resnet.js';
import { FrozenTrunk, type FeaturePool } from '../models/inference.js';
import type { Dataset } from '../data/datasets.js';
import { evalBatches } from '../data/loader.js';

export interface KnnOptions {
  k?: number;
  temperature?: number;
  /** Test rows compared at once. */
  chunk?: number;
}

/** Top-1 accuracy of weighted kNN: features of both sets are L2-normalized here. */
export function knnTop1(
  trainFeats: Tensor,
  trainLabels: Int32Array,
  testFeats: Tensor,
  testLabels: Int32Array,
  o: KnnOptions = {},
): number {
  return knnTop1Many(trainFeats, trainLabels, testFeats, testLabels, [{ k: o.k ?? 200, temperature: o.temperature ?? 0.1 }], o.chunk)[0];
}

/** Weighted kNN top-1 for several (k, temperature) settings in one pass over the similarities (knnPredictMany). */
export function knnTop1Many(
  trainFeats: Tensor,
  trainLabels: Int32Array,
  testFeats: Tensor,
  testLabels: Int32Array,
  settings: { k: number; temperature: number }[],
  chunk = 1000,
): number[] {
  return knnPredictMany(trainFeats, trainLabels, testFeats, settings, chunk).map((p) => top1Of(p, testLabels));
}

/** The share of predictions equal to the truth. */
export function top1Of(predictions: Int32Array, truth: Int32Array): number {
  let correct = 0;
  predictions.forEach((p, i) => {
    if (p === truth[i]) correct++;
  });
  return correct / Math.max(1, truth.length);
}

/**
 * Weighted kNN's class for each test row, for several (k, temperature) settings in one pass over the
 * similarities: the neighbours of the largest k are found once, each setting votes with its first k of them.
 */
export function knnPredictMany(
  trainFeats: Tensor,
  trainLabels: Int32Array,
  testFeats: Tensor,
  settings: { k: number; temperature: number }[],
  chunk = 1000,
): Int32Array[] {
  const ks = settings.map((s) => Math.min(s.k, trainFeats.shape[0]));
  const kMax = Math.max(...ks);
  const classes = trainLabels.reduce((a, b) => Math.max(a, b), -1) + 1; // no spread: millions of labels
  const n = testFeats.shape[0];
  const out = settings.map(() => new Int32Array(n));
  noGrad(() =>
    tidy(() => {
      const bank = normalize(trainFeats.float(), 2, 1).t().contiguous();
      const labels = fromTypedArray(trainLabels).long();
      const test = normalize(testFeats.float(), 2, 1);
      for (let i = 0; i < n; i += chunk) {
        tidy(() => {
          const sim = test.narrow(0, i, Math.min(chunk, n - i)).mm(bank);
          const { values, indices } = sim.topk(kMax, 1);
          const neighbours = labels.index(indices);
          settings.forEach((st, j) => {
            const weights = values.narrow(1, 0, ks[j]).div(st.temperature).exp();
            const votes = zeros([sim.shape[0], classes]).scatterAdd(1, neighbours.narrow(1, 0, ks[j]), weights);
            out[j].set(votes.argmax(1).tolist() as number[], i);
          });
        });
      }
    }),
  );
  return out;
}

export interface FeatureOptions {
  batch?: number;
  device?: string;
  mean: number[];
  std: number[];
  /** Inference precision (default float32). */
  dtype?: 'float32' | 'bfloat16';
  /** Global average pooling (the default) or eval_linear.py's avg6 maps. */
  pool?: FeaturePool;
  /** For image files: resize then center crop (default 256 / 224). */
  resize?: number;
  crop?: number;
  /** Only rows from..to of the dataset. */
  range?: [number, number];
  /** Processes that share the work: each extracts its shard (shardOf), and every one receives all the features. */
  group?: ProcessGroup;
}

/** Process `rank`'s contiguous share of n rows: [from, to), the first processes taking one more when n % W > 0. */
export function shardOf(n: number, group: ProcessGroup): [number, number] {
  const per = Math.ceil(n / group.worldSize);
  return [Math.min(n, group.rank * per), Math.min(n, (group.rank + 1) * per)];
}

/** Pooled trunk features (eval-mode BN folded, no autograd) of a whole dataset, on the CPU. */
export async function datasetFeatures(model: ResNet, ds: Dataset, o: FeatureOptions): Promise<{ feats: Tensor; labels: Int32Array }> {
  const group = o.group ?? singleProcess;
  const range = o.group ? shardOf(ds.length, group) : o.range;
  const trunk = new FrozenTrunk(model, { device: o.device ?? 'cpu', dtype: o.dtype, pool: o.pool });
  const parts: Tensor[] = [];
  const labels: number[] = [];
  try {
    for await (const b of evalBatches(ds, { ...o, batch: o.batch ?? 256, range })) {
      parts.push(tidy(() => trunk.forward(b.images).cpu()));
      labels.push(...(b.labels.tolist() as number[]));
    }
    if (group.worldSize === 1) return { feats: cat(parts), labels: Int32Array.from(labels) };
    return gatherFeatures(group, parts.length ? tidy(() => cat(parts).float()) : null, labels, Math.ceil(ds.length / group.worldSize));
  } finally {
    parts.forEach((p) => p.dispose());
    trunk.dispose();
  }
}

/**
 * Every process's rows (at most `per` each; fewer where images were skipped, none past the dataset's end), in rank
 * order: counts and width all-gathered first, the rows padded to `per` so that the all-gather has equal shapes.
 */
export function gatherRows(group: ProcessGroup, rows: Tensor | null, per: number, dtype: 'float32' | 'int64' = 'float32'): Tensor {
  return tidy(() => {
    const n = rows?.shape[0] ?? 0;
    const meta = group.allGather(tensor([n, rows?.shape[1] ?? 0], { dtype: 'int64' })).tolist() as number[];
    const dim = Math.max(...meta.filter((_, i) => i % 2 === 1));
    const padded = zeros([per, dim], { dtype });
    if (rows && n) padded.narrow(0, 0, n).copy_(rows);
    const kept = Array.from({ length: group.worldSize }, (_, r) => Array.from({ length: meta[2 * r] }, (_, i) => r * per + i)).flat();
    return group.allGather(padded).indexSelect(0, tensor(kept, { dtype: 'int64' }));
  });
}

/** gatherRows of features and their labels. */
function gatherFeatures(group: ProcessGroup, feats: Tensor | null, labels: number[], per: number): { feats: Tensor; labels: Int32Array } {
  try {
    return tidy(() => ({
      feats: gatherRows(group, feats, per),
      labels: Int32Array.from(
        gatherRows(group, tensor(labels, { dtype: 'int64' }).view(-1, 1), per, 'int64')
          .view(-1)
          .tolist() as number[],
      ),
    }));
  } finally {
    feats?.dispose();
  }
}
