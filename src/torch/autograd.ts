// Grad mode, autocast and the autograd entry points.
import { native } from './native.js';
import type { Tensor } from './tensor.js';
import type { DType } from './dtype.js';

function withGradMode<T>(enabled: boolean, fn: () => T): T {
  const prev = native.setGradEnabled(enabled);
  try {
    return fn();
  } finally {
    native.setGradEnabled(prev);
  }
}

/** Runs fn without recording autograd history (torch.no_grad); returns fn's value. Synchronous fn only. */
export function noGrad<T>(fn: () => T): T {
  return withGradMode(false, fn);
}
/** Runs fn with autograd recording on (torch.enable_grad). */
export function enableGrad<T>(fn: () => T): T {
  return withGradMode(true, fn);
}
export function isGradEnabled(): boolean {
  return native.isGradEnabled();
}
export function setGradEnabled(on: boolean): boolean {
  return native.setGradEnabled(on);
}

export interface AutocastOptions {
  deviceType: 'cpu' | 'cuda';
  dtype?: DType;
  enabled?: boolean;
}
/**
 * Runs fn under automatic mixed precision (torch.autocast): eligible ops (convolutions, matmuls) compute in
 * `dtype` (bfloat16 on CPU, float16 on CUDA by default), precision-sensitive ones stay in float32.
 */
export function autocast<T>(o: AutocastOptions, fn: () => T): T {
  const dtype = o.dtype ?? (o.deviceType === 'cpu' ? 'bfloat16' : 'float16');
  // 'enter' / 'exit' count the nesting, as torch.autocast does: the bf16 copies of the weights cast in a region are
  // cached until the outermost one ends, also across an inner region with autocast off.
  const [wasOn, wasDtype] = native.setAutocast(o.deviceType, o.enabled ?? true, dtype, 'enter');
  try {
    return fn();
  } finally {
    native.setAutocast(o.deviceType, wasOn, wasDtype, 'exit');
  }
}

/** torch.autograd.backward: accumulates the gradients of `tensors` (weighted by `grads`) into the leaves. */
export function backward(tensors: Tensor[], grads?: Tensor[], retainGraph?: boolean): void {
  native.backward(
    tensors.map((t) => t.h),
    grads ? grads.map((g) => g.h) : null,
    retainGraph,
  );
}
