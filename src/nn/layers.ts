// The layers the ResNet family and the SwAV head need, with PyTorch's parameter names and initialization.
import type { Tensor } from '../torch/tensor.js';
import { empty, ones, zeros } from '../torch/creation.js';
import { noGrad } from '../torch/autograd.js';
import * as F from '../torch/functional.js';
import { Module } from './module.js';
import { defaultLayerInit } from './init.js';
import type { SyncBatchNormGroup } from '../dist/group.js';

type Pair = number | [number, number];

export class Identity extends Module {
  forward(x: Tensor): Tensor {
    return x;
  }
}

export class ReLU extends Module {
  constructor(readonly inplace = false) {
    super();
  }
  forward(x: Tensor): Tensor {
    return this.inplace ? x.relu_() : x.relu();
  }
}

export class Flatten extends Module {
  constructor(
    readonly startDim = 1,
    readonly endDim = -1,
  ) {
    super();
  }
  forward(x: Tensor): Tensor {
    return x.flatten(this.startDim, this.endDim);
  }
}

export class Conv2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernelSize: Pair,
    readonly options: F.Conv2dOptions & { bias?: boolean } = {},
  ) {
    super();
    const [kh, kw] = typeof kernelSize === 'number' ? [kernelSize, kernelSize] : kernelSize;
    const groups = options.groups ?? 1;
    if (inChannels % groups || outChannels % groups) throw new Error('Conv2d: channels must be divisible by groups');
    this.weight = this.registerParameter('weight', empty([outChannels, inChannels / groups, kh, kw]));
    this.bias = this.registerParameter('bias', options.bias === false ? null : empty([outChannels]));
    defaultLayerInit(this.weight, this.bias);
  }
  forward(x: Tensor): Tensor {
    return F.conv2d(x, this.weight, this.bias, this.options);
  }
}

export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    options: { bias?: boolean } = {},
  ) {
    super();
    this.weight = this.registerParameter('weight', empty([outFeatures, inFeatures]));
    this.bias = this.registerParameter('bias', options.bias === false ? null : empty([outFeatures]));
    defaultLayerInit(this.weight, this.bias);
  }
  forward(x: Tensor): Tensor {
    return F.linear(x, this.weight, this.bias);
  }
}

export interface BatchNormOptions {
  eps?: number;
  momentum?: number | null;
  affine?: boolean;
  trackRunningStats?: boolean;
}

/** Batch normalization with running statistics and momentum exactly as torch.nn.BatchNorm*. */
abstract class BatchNorm extends Module {
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;
  readonly runningMean: Tensor | null;
  readonly runningVar: Tensor | null;
  readonly numBatchesTracked: Tensor | null;
  readonly eps: number;
  readonly momentum: number | null;
  /** Set by dist.convertSyncBatchNorm: training batches normalized over this group's processes. */
  syncGroup: SyncBatchNormGroup | null = null;
  protected abstract readonly inputDims: number[];

  constructor(
    readonly numFeatures: number,
    o: BatchNormOptions = {},
  ) {
    super();
    this.eps = o.eps ?? 1e-5;
    this.momentum = o.momentum === undefined ? 0.1 : o.momentum;
    const affine = o.affine ?? true;
    const track = o.trackRunningStats ?? true;
    this.weight = this.registerParameter('weight', affine ? ones([numFeatures]) : null);
    this.bias = this.registerParameter('bias', affine ? zeros([numFeatures]) : null);
    this.runningMean = this.registerBuffer('running_mean', track ? zeros([numFeatures]) : null);
    this.runningVar = this.registerBuffer('running_var', track ? ones([numFeatures]) : null);
    this.numBatchesTracked = this.registerBuffer('num_batches_tracked', track ? zeros([], { dtype: 'int64' }) : null);
  }

  forward(x: Tensor): Tensor {
    if (!this.inputDims.includes(x.ndim)) {
      throw new Error(`${this.constructor.name}: expected ${this.inputDims.join(' or ')}-d input, got shape [${x.shape}]`);
    }
    let factor = this.momentum ?? 0;
    if (this.training && this.numBatchesTracked !== null) {
      noGrad(() => this.numBatchesTracked!.add_(1));
      if (this.momentum === null) factor = 1 / this.numBatchesTracked.item();
    }
    if (this.training && this.syncGroup !== null && this.syncGroup.worldSize > 1) {
      return this.syncGroup.batchNorm(x, this.weight, this.bias, this.runningMean, this.runningVar, factor, this.eps);
    }
    const useBatchStats = this.training || this.runningMean === null;
    const useRunning = !this.training || this.runningMean !== null;
    return F.batchNorm(x, useRunning ? this.runningMean : null, useRunning ? this.runningVar : null, this.weight, this.bias, {
      training: useBatchStats,
      momentum: factor,
      eps: this.eps,
    });
  }
}

export class BatchNorm1d extends BatchNorm {
  protected readonly inputDims = [2, 3];
}

export class BatchNorm2d extends BatchNorm {
  protected readonly inputDims = [4];
}

export class MaxPool2d extends Module {
  constructor(
    readonly kernelSize: Pair,
    readonly options: F.Pool2dOptions = {},
  ) {
    super();
  }
  forward(x: Tensor): Tensor {
    return F.maxPool2d(x, this.kernelSize, this.options);
  }
}

export class AdaptiveAvgPool2d extends Module {
  constructor(readonly outputSize: Pair) {
    super();
  }
  forward(x: Tensor): Tensor {
    return F.adaptiveAvgPool2d(x, this.outputSize);
  }
}

/**
 * Runs its modules in order; their names are '0', '1', ... as in PyTorch. Intermediate results are
 * disposed as soon as the next module has consumed them.
 */
export class Sequential extends Module {
  readonly #list: Module[] = [];
  constructor(...modules: Module[]) {
    super();
    for (const m of modules) this.append(m);
  }
  append(m: Module): this {
    this.registerModule(String(this.#list.length), m);
    this.#list.push(m);
    return this;
  }
  get length(): number {
    return this.#list.length;
  }
  at(i: number): Module {
    return this.#list.at(i)!;
  }
  forward(x: Tensor): Tensor {
    let out = x;
    for (const m of this.#list) {
      const next = m.forward(out) as Tensor;
      if (out !== x && next !== out) out.dispose();
      out = next;
    }
    return out;
  }
}
