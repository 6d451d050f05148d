// The collective operations that training methods use across the processes of a run. Methods write every
// reduction over the dataset through this interface, so that a single process and many (c10d) run the
// same code; the single-process group is the identity, src/dist/c10d.ts the many-process one.
import type { Tensor } from '../torch/tensor.js';
import { cat } from '../torch/functional.js';

export interface ProcessGroup {
  readonly rank: number;
  readonly worldSize: number;
  /** Sums `t` over all processes, in place; returns `t`. */
  allReduceSum_(t: Tensor): Tensor;
  /** Overwrites `t` with process `src`'s `t`, in place; returns `t`. */
  broadcast_(t: Tensor, src: number): Tensor;
  /** Every process's `t` (equal shapes), concatenated along dimension 0 in rank order: a new tensor. */
  allGather(t: Tensor): Tensor;
}

/** One process: every collective is the identity. */
export const singleProcess: ProcessGroup = {
  rank: 0,
  worldSize: 1,
  allReduceSum_: (t) => t,
  broadcast_: (t) => t,
  allGather: (t) => cat([t]),
};

/**
 * A group whose processes share batch-norm statistics: dist.convertSyncBatchNorm gives one to BatchNorm modules,
 * which then normalize training batches with it (torch.nn.SyncBatchNorm).
 */
export interface SyncBatchNormGroup {
  readonly worldSize: number;
  batchNorm(
    x: Tensor,
    weight: Tensor | null,
    bias: Tensor | null,
    runningMean: Tensor | null,
    runningVar: Tensor | null,
    momentum: number,
    eps: number,
  ): Tensor;
}
