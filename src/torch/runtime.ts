// Process-wide engine settings: threads, seeds, devices, and the live-tensor count.
import { readFileSync } from 'node:fs';
import { native, type CpuCacheStats } from './native.js';
import { wrap, type Tensor } from './tensor.js';

export type { CpuCacheStats };

export function setNumThreads(n: number): void {
  native.setNumThreads(n);
}
export function getNumThreads(): number {
  return native.getNumThreads();
}
/** Seeds the global CPU (and CUDA) generators, as torch.manual_seed. */
export function manualSeed(seed: number): void {
  native.manualSeed(seed);
}
/** The CPU generator's state (a uint8 tensor), for checkpoints. */
export function getRngState(): Tensor {
  return wrap(native.getRngState());
}
export function setRngState(state: Tensor): void {
  native.setRngState(state.h);
}
/** Tensors alive in native memory: neither disposed nor collected. */
export function liveTensors(): number {
  return native.liveTensors();
}
export const version: string = native.version();
export const cuda = {
  isAvailable: (): boolean => native.cudaIsAvailable(),
  deviceCount: (): number => native.cudaDeviceCount(),
};

let bf16Native: boolean | undefined;
export const cpu = {
  /** Whether the CPU computes bfloat16 dot products natively (AVX-512 BF16 or AMX): where bf16 autocast pays. */
  hasNativeBf16: (): boolean => {
    if (bf16Native === undefined) {
      try {
        bf16Native = /^flags\s*:.*\b(avx512_bf16|amx_bf16)\b/m.test(readFileSync('/proc/cpuinfo', 'utf8'));
      } catch {
        bf16Native = false; // not Linux: no cheap way to tell, and fp32 is never wrong
      }
    }
    return bf16Native;
  },
  /** The caching allocator's state (SWAV_CPU_CACHE=N: it holds at most N MiB above its peak in use; 0 turns it off). */
  cacheStats: (): CpuCacheStats => native.cpuCache(),
  /** Gives the allocator's idle blocks back to the system, as torch.cuda.empty_cache. */
  emptyCache: (): void => native.cpuEmptyCache(),
};

export interface OpTime {
  name: string;
  count: number;
  totalUs: number;
  selfUs: number;
  /** With `detail`: each input's shape ([] for what is no tensor), dtype (f32, bf16, ...; Scalar, TensorList or '' for
   * what is no tensor) and memory layout (c: contiguous, cl: channels_last only, s: strided; '' for no tensor). */
  shapes?: number[][];
  dtypes?: string[];
  layouts?: string[];
}
/**
 * Runs fn under libtorch's op profiler; returns fn's value and the time per operator (self time first). With
 * `detail`, an observer of every operator call instead, the time per operator and inputs (shapes as PyTorch's
 * profiler records them with record_shapes, dtypes, layouts), for matching a profile of PyTorch op by op.
 */
export function profile<T>(fn: () => T, o: { detail?: boolean } = {}): { result: T; ops: OpTime[] } {
  native.profilerStart(o.detail ?? false);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    native.profilerStop();
    throw e;
  }
  const ops = native.profilerStop().map(
    (r): OpTime =>
      r.shapes === undefined
        ? { name: r.name, count: r.count, totalUs: r.totalUs, selfUs: r.selfUs }
        : {
            name: r.name,
            count: r.count,
            totalUs: r.totalUs,
            selfUs: r.selfUs,
            shapes: JSON.parse(r.shapes) as number[][],
            dtypes: JSON.parse(r.dtypes!) as string[],
            layouts: JSON.parse(r.layouts!) as string[],
          },
  );
  return { result, ops };
}
