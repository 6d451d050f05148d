// torch.nn.SyncBatchNorm: BatchNorm whose training batches are normalized with the statistics of every process
// of a group (native/sync_batch_norm.cc); evaluation uses the running statistics, as before.
import type { Tensor } from '../torch/tensor.js';
import type { Module } from '../nn/module.js';
import { BatchNorm1d, BatchNorm2d } from '../nn/layers.js';
import type { SyncBatchNormGroup } from './group.js';

/** One SyncBatchNorm step, training mode: the running statistics (if given) updated with `momentum`. */
export function syncBatchNorm(
  x: Tensor,
  weight: Tensor | null,
  bias: Tensor | null,
  runningMean: Tensor | null,
  runningVar: Tensor | null,
  momentum: number,
  eps: number,
  group: SyncBatchNormGroup,
): Tensor {
  return group.batchNorm(x, weight, bias, runningMean, runningVar, momentum, eps);
}

/**
 * nn.SyncBatchNorm.convert_sync_batchnorm: every BatchNorm of `model` synchronizes over `group` from now on (in
 * place, the modules and their state kept). Returns `model`.
 */
export function convertSyncBatchNorm<M extends Module>(model: M, group: SyncBatchNormGroup): M {
  for (const m of model.modules()) {
    if (m instanceof BatchNorm1d || m instanceof BatchNorm2d) m.syncGroup = group;
  }
  return model;
}
