// The seam between the trainer and a self-supervised method. The trainer owns the data, the model, the optimizer,
// the schedule, checkpoints and evaluation; a method owns what happens inside an iteration, what it does at the
// start of an epoch (clustering, a queue), and the state it adds to checkpoints.
import type { Tensor } from '../torch/tensor.js';
import type { ResNet } from '../models/resnet.js';
import type { LARC } from '../optim/larc.js';
import type { SGD } from '../optim/sgd.js';
import type { ProcessGroup } from '../dist/group.js';

/** A batch as the trainer hands it over: crops on the training device, and the samples' dataset indices. */
export interface MethodBatch {
  /** One tensor per crop, crops in order (B x C x size x size). */
  crops: Tensor[];
  /** Dataset indices of the B samples. */
  indices: Int32Array;
}

export interface MethodContext {
  model: ResNet;
  optimizer: LARC | SGD;
  /** Autocast dtype of the forward, or null for float32. */
  amp: 'bfloat16' | 'float16' | null;
  deviceType: 'cpu' | 'cuda';
  device: string;
  group: ProcessGroup;
  /** After each backward, before the optimizer step: gradients averaged over the processes (identity alone). */
  syncGradients?: () => void;
  /** Samples in the dataset (indices run below it). */
  datasetSize: number;
  batchSize: number;
  itersPerEpoch: number;
  /** Crops per resolution group. */
  nmbCrops: number[];
  featDim: number;
  log: (line: string) => void;
}

export interface IterationResult {
  loss: number;
  /** Prototype scores of one crop of the batch (B x K, detached; the trainer reads statistics, then disposes them). */
  scores: Tensor;
  /** Something the user should know (e.g. a collapse): the trainer logs and records it; a method says it once. */
  warning?: string;
}

export interface TrainingMethod {
  /**
   * Before the first epoch of a new run: a pass over the data (e.g. filling a memory bank). `pass` yields the
   * batches of epoch 0's order with augmentations of their own.
   */
  prepare?(pass: AsyncIterable<MethodBatch>): Promise<void>;
  /** At the start of `epoch`; `fromIteration` > 0 when a run resumes in the middle of it. */
  startEpoch(epoch: number, fromIteration: number): void;
  /** One training iteration: forward, loss, backward, optimizer step at learning rate `lr`. */
  iteration(batch: MethodBatch, lr: number, iteration: number, epochIteration: number): IterationResult;
  /** What the method adds to a checkpoint (top-level keys: tensors, numbers, booleans, null). */
  state(): Record<string, unknown>;
  /** Restores state() from a checkpoint; the tensors given are the checkpoint's (copy what is kept). */
  loadState(state: Record<string, unknown>): void;
  /** A cause of a non-finite loss that is this method's own, for the error message. */
  readonly nanHint?: string;
  dispose(): void;
}
