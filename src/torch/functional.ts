// torch.* functions and torch.nn.functional, over the same operators as PyTorch's.
import { type Tensor, call, handles, wrap } from './tensor.js';
import type { DType } from './dtype.js';
import { native } from './native.js';
import { autocast } from './autograd.js';

type Pair = number | [number, number];

export function cat(tensors: readonly Tensor[], dim = 0): Tensor {
  return wrap(call('cat', handles(tensors), dim));
}
export function stack(tensors: readonly Tensor[], dim = 0): Tensor {
  return wrap(call('stack', handles(tensors), dim));
}
/** where(condition, x, y): x where condition holds, else y. */
export function where(condition: Tensor, x: Tensor | number, y: Tensor | number): Tensor {
  if (typeof x === 'number' && typeof y === 'number') return wrap(call('where.Scalar', condition.h, x, y));
  if (typeof x === 'number') return wrap(call('where.ScalarSelf', condition.h, x, (y as Tensor).h));
  return x.where(condition, y);
}
export function matmul(a: Tensor, b: Tensor): Tensor {
  return a.matmul(b);
}
export function einsum(equation: string, ...operands: Tensor[]): Tensor {
  return wrap(call('einsum', equation, handles(operands), null));
}
export function exp(x: Tensor): Tensor {
  return x.exp();
}
export function log(x: Tensor): Tensor {
  return x.log();
}
export function sqrt(x: Tensor): Tensor {
  return x.sqrt();
}
export function abs(x: Tensor): Tensor {
  return x.abs();
}
export function clamp(x: Tensor, min: number | null = null, max: number | null = null): Tensor {
  return x.clamp(min, max);
}
export function topk(x: Tensor, k: number, dim = -1, largest = true, sorted = true) {
  return x.topk(k, dim, largest, sorted);
}
export function argmax(x: Tensor, dim?: number, keepdim = false): Tensor {
  return x.argmax(dim, keepdim);
}
export function gather(x: Tensor, dim: number, index: Tensor): Tensor {
  return x.gather(dim, index);
}
export function scatterAdd(x: Tensor, dim: number, index: Tensor, src: Tensor): Tensor {
  return x.scatterAdd(dim, index, src);
}
export function sum(x: Tensor, dim?: number | number[], keepdim = false): Tensor {
  return x.sum(dim, keepdim);
}
export function mean(x: Tensor, dim?: number | number[], keepdim = false): Tensor {
  return x.mean(dim, keepdim);
}
export function maximum(a: Tensor, b: Tensor): Tensor {
  return a.maximum(b);
}
export function minimum(a: Tensor, b: Tensor): Tensor {
  return a.minimum(b);
}
export function softmax(x: Tensor, dim: number, dtype?: DType): Tensor {
  return x.softmax(dim, dtype);
}
export function logSoftmax(x: Tensor, dim: number, dtype?: DType): Tensor {
  return x.logSoftmax(dim, dtype);
}
export function relu(x: Tensor): Tensor {
  return x.relu();
}
export function sigmoid(x: Tensor): Tensor {
  return x.sigmoid();
}
export function tanh(x: Tensor): Tensor {
  return x.tanh();
}
export function flatten(x: Tensor, startDim = 0, endDim = -1): Tensor {
  return x.flatten(startDim, endDim);
}
export function allclose(a: Tensor, b: Tensor, rtol = 1e-5, atol = 1e-8): boolean {
  return a.allclose(b, rtol, atol);
}

/** True when a Pair option is absent or `v` in every dimension. */
const unit = (p: Pair | undefined, v: number) => p === undefined || (typeof p === 'number' ? p === v : p.every((x) => x === v));

export interface Conv2dOptions {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  groups?: number;
}
export function conv2d(input: Tensor, weight: Tensor, bias: Tensor | null = null, o: Conv2dOptions = {}): Tensor {
  const run = (x = input) =>
    wrap(call('conv2d', x.h, weight.h, bias?.h ?? null, o.stride ?? 1, o.padding ?? 0, o.dilation ?? 1, o.groups ?? 1));
  // libtorch 1.13's oneDNN computes wrong (even inf) bfloat16 weight gradients when the input is smaller than
  // the kernel (a 1x1 map into a 3x3 convolution): such convolutions, tiny anyway, stay in float32.
  const [, c, h, w] = input.shape;
  const [, , kh, kw] = weight.shape;
  // Its backward of a strided 1x1 convolution of fewer than 8 channels (channels_last, one thread, AVX2 without
  // AVX-512) writes out of bounds and corrupts the heap; taking every stride-th pixel first is the same convolution.
  const stride = typeof o.stride === 'number' ? [o.stride, o.stride] : (o.stride ?? [1, 1]);
  if (
    kh === 1 &&
    kw === 1 &&
    c < 8 &&
    (stride[0] > 1 || stride[1] > 1) &&
    unit(o.padding, 0) &&
    unit(o.dilation, 1) &&
    input.device === 'cpu'
  ) {
    const x = input.slice(2, 0, h, stride[0]).slice(3, 0, w, stride[1]);
    try {
      return conv2d(x, weight, bias, { ...o, stride: 1 });
    } finally {
      x.dispose();
    }
  }
  if ((h < kh || w < kw) && input.device === 'cpu') {
    const [on, dtype] = native.autocastState('cpu');
    if (on && dtype === 'bfloat16') {
      const x = input.dtype === weight.dtype ? input : input.to(weight.dtype);
      try {
        return autocast({ deviceType: 'cpu', enabled: false }, () => run(x));
      } finally {
        if (x !== input) x.dispose();
      }
    }
  }
  return run();
}

export function linear(input: Tensor, weight: Tensor, bias: Tensor | null = null): Tensor {
  return wrap(call('linear', input.h, weight.h, bias?.h ?? null));
}

/**
 * The gradients of mean cross-entropy of linear(x, weight, bias) against labels y, and the summed loss, in one
 * call: the arithmetic autograd does, in its order (for small heads, where calls cost more than the math).
 */
export function linearCrossEntropyGrad(
  x: Tensor,
  y: Tensor,
  weight: Tensor,
  bias: Tensor,
): { gradWeight: Tensor; gradBias: Tensor; lossSum: number } {
  const [gw, gb, lossSum] = native.linearCrossEntropyGrad(x.h, y.h, weight.h, bias.h);
  return { gradWeight: wrap(gw), gradBias: wrap(gb), lossSum };
}

export interface BatchNormOptions {
  training?: boolean;
  momentum?: number;
  eps?: number;
}
/** F.batch_norm: in training, normalizes by batch statistics and updates the running ones in place. */
export function batchNorm(
  input: Tensor,
  runningMean: Tensor | null,
  runningVar: Tensor | null,
  weight: Tensor | null = null,
  bias: Tensor | null = null,
  o: BatchNormOptions = {},
): Tensor {
  return wrap(
    call(
      'batch_norm',
      input.h,
      weight?.h ?? null,
      bias?.h ?? null,
      runningMean?.h ?? null,
      runningVar?.h ?? null,
      o.training ?? false,
      o.momentum ?? 0.1,
      o.eps ?? 1e-5,
      true,
    ),
  );
}

export interface Pool2dOptions {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  ceilMode?: boolean;
}
export function maxPool2d(input: Tensor, kernelSize: Pair, o: Pool2dOptions = {}): Tensor {
  return wrap(call('max_pool2d', input.h, kernelSize, o.stride ?? kernelSize, o.padding ?? 0, o.dilation ?? 1, o.ceilMode ?? false));
}
export function avgPool2d(input: Tensor, kernelSize: Pair, o: Pool2dOptions & { countIncludePad?: boolean } = {}): Tensor {
  return wrap(
    call('avg_pool2d', input.h, kernelSize, o.stride ?? kernelSize, o.padding ?? 0, o.ceilMode ?? false, o.countIncludePad ?? true, null),
  );
}
export function adaptiveAvgPool2d(input: Tensor, outputSize: Pair): Tensor {
  return wrap(call('adaptive_avg_pool2d', input.h, outputSize));
}

/** F.normalize: x / max(||x||_p over dim, eps), composed exactly as PyTorch composes it. */
export function normalize(x: Tensor, p = 2, dim = 1, eps = 1e-12): Tensor {
  const n = x.norm(p, dim, true);
  const clamped = n.clampMin(eps);
  const denom = clamped.expandAs(x);
  try {
    return x.div(denom);
  } finally {
    n.dispose();
    clamped.dispose();
    denom.dispose();
  }
}

const REDUCTION = { none: 0, mean: 1, sum: 2 } as const;
export type Reduction = keyof typeof REDUCTION;

export function crossEntropy(
  input: Tensor,
  target: Tensor,
  o: { weight?: Tensor; ignoreIndex?: number; reduction?: Reduction; labelSmoothing?: number } = {},
): Tensor {
  return wrap(
    call(
      'cross_entropy_loss',
      input.h,
      target.h,
      o.weight?.h ?? null,
      REDUCTION[o.reduction ?? 'mean'],
      o.ignoreIndex ?? -100,
      o.labelSmoothing ?? 0,
    ),
  );
}
export function nllLoss(input: Tensor, target: Tensor, o: { ignoreIndex?: number; reduction?: Reduction } = {}): Tensor {
  return wrap(call('nll_loss_nd', input.h, target.h, null, REDUCTION[o.reduction ?? 'mean'], o.ignoreIndex ?? -100));
}
export function mseLoss(input: Tensor, target: Tensor, reduction: Reduction = 'mean'): Tensor {
  return wrap(call('mse_loss', input.h, target.h, REDUCTION[reduction]));
}

export function pad(x: Tensor, padding: number[], value = 0): Tensor {
  return wrap(call('constant_pad_nd', x.h, padding, value));
}
export function interpolate(x: Tensor, size: [number, number], mode: 'bilinear' | 'nearest' = 'bilinear', alignCorners = false): Tensor {
  return wrap(
    mode === 'bilinear'
      ? call('upsample_bilinear2d', x.h, size, alignCorners, null, null)
      : call('upsample_nearest2d', x.h, size, null, null),
  );
}
export function affineGrid(theta: Tensor, size: number[], alignCorners = false): Tensor {
  return wrap(call('affine_grid_generator', theta.h, size, alignCorners));
}
const GRID_MODE = { bilinear: 0, nearest: 1, bicubic: 2 } as const;
const GRID_PAD = { zeros: 0, border: 1, reflection: 2 } as const;
export function gridSample(
  x: Tensor,
  grid: Tensor,
  mode: keyof typeof GRID_MODE = 'bilinear',
  paddingMode: keyof typeof GRID_PAD = 'zeros',
  alignCorners = false,
): Tensor {
  return wrap(call('grid_sampler', x.h, grid.h, GRID_MODE[mode], GRID_PAD[paddingMode], alignCorners));
}
