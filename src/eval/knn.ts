// Weighted kNN classification on frozen features (as VISSL, lightly and solo-learn evaluate): cosine similarity
// to a memory bank of training features, the k nearest vote with weight exp(similarity / T).
import { Tensor } from '../torch/tensor.js';
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
export function knnTop1(trainFeats: Tensor, trainLabels: Int32Array, testFeats: Tensor, testLabels: Int32Array, o: KnnOptions = {}): number {
  return knnTop1Many(trainFeats, trainLabels, testFeats, testLabels, [{ k: o.k ?? 200, temperature: o.temperature ?? 0.1 }], o.chunk)[0];
}

/**
 * Weighted kNN top-1 for several (k, temperature) settings in one pass over the similarities: the neighbours of
 * the largest k are found once, each setting votes with its first k of them.
 */
export function knnTop1Many(trainFeats: Tensor, trainLabels: Int32Array, testFeats: Tensor, testLabels: Int32Array,
  settings: { k: number; temperature: number }[], chunk = 1000): number[] {
  const ks = settings.map((s) => Math.min(s.k, trainFeats.shape[0]));
  const kMax = Math.max(...ks);
  const classes = Math.max(trainLabels.reduce((a, b) => Math.max(a, b), -1), testLabels.reduce((a, b) => Math.max(a, b), -1)) + 1; // no spread: millions of labels
  return noGrad(() => tidy(() => {
    const bank = normalize(trainFeats.float(), 2, 1).t().contiguous();
    const labels = fromTypedArray(trainLabels).long();
    const test = normalize(testFeats.float(), 2, 1);
    const correct = settings.map(() => 0);
    for (let i = 0; i < test.shape[0]; i += chunk) {
      tidy(() => {
        const sim = test.narrow(0, i, Math.min(chunk, test.shape[0] - i)).mm(bank);
        const { values, indices } = sim.topk(kMax, 1);
        const neighbours = labels.index(indices);
        const truth = fromTypedArray(testLabels.subarray(i, i + sim.shape[0])).long();
        settings.forEach((st, j) => {
          const weights = values.narrow(1, 0, ks[j]).div(st.temperature).exp();
          const votes = zeros([sim.shape[0], classes]).scatterAdd(1, neighbours.narrow(1, 0, ks[j]), weights);
          correct[j] += votes.argmax(1).eq(truth).sum().item();
        });
      });
    }
    return correct.map((c) => c / test.shape[0]);
  }));
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
    return gatherRows(group, parts.length ? tidy(() => cat(parts).float()) : null, labels, Math.ceil(ds.length / group.worldSize));
  } finally {
    parts.forEach((p) => p.dispose());
    trunk.dispose();
  }
}

/**
 * Every process's rows (at most `per` each; fewer where images were skipped, none past the dataset's end), in rank
 * order: counts and width all-gathered first, the rows padded to `per` so that the all-gather has equal shapes.
 */
function gatherRows(group: ProcessGroup, feats: Tensor | null, labels: number[], per: number): { feats: Tensor; labels: Int32Array } {
  try {
    return tidy(() => {
      const meta = group.allGather(tensor([labels.length, feats?.shape[1] ?? 0], { dtype: 'int64' })).tolist() as number[];
      const dim = Math.max(...meta.filter((_, i) => i % 2 === 1));
      const f = zeros([per, dim]);
      const l = zeros([per], { dtype: 'int64' });
      if (feats) f.narrow(0, 0, labels.length).copy_(feats);
      if (labels.length) l.narrow(0, 0, labels.length).copy_(tensor(labels, { dtype: 'int64' }));
      const rows = tensor(Array.from({ length: group.worldSize }, (_, r) => Array.from({ length: meta[2 * r] }, (_, i) => r * per + i)).flat(), { dtype: 'int64' });
      return { feats: group.allGather(f).indexSelect(0, rows), labels: Int32Array.from(group.allGather(l).indexSelect(0, rows).tolist() as number[]) };
    });
  } finally {
    feats?.dispose();
  }
}
