// Loads the native addon (build/Release/swav_native.node) and declares what it exports.
import { availableParallelism } from 'node:os';
import { loadAddon } from './addon.js';

export { root } from './addon.js';

/** The caching CPU allocator (native/allocator.cc): bytes handed out, kept idle, the most ever handed out at once,
 * and how many requests it served from idle blocks / by mapping new ones. */
export interface CpuCacheStats {
  enabled: boolean;
  liveBytes: number;
  idleBytes: number;
  peakBytes: number;
  reused: number;
  mapped: number;
}

/** An opaque reference to one at::Tensor, owned by exactly one Tensor object. */
export type Handle = { readonly __tensorHandle: unique symbol };

/** Opaque references to native c10d objects (native/dist.cc, native/ddp.cc). */
export type GroupHandle = { readonly __groupHandle: unique symbol };
export type WorkHandle = { readonly __workHandle: unique symbol };
export type ReducerHandle = { readonly __reducerHandle: unique symbol };

/** How a process joins a process group (native/dist.cc's JoinSpec, plus the store of a new group). */
export interface JoinSpec {
  backend: string;
  rank: number;
  worldSize: number;
  timeoutMs: number;
  interface?: string;
  hostname?: string;
  host?: string;
  port?: number;
  storePath?: string;
}

/** c10d: present where the addon was built with Gloo's or NCCL's headers (scripts/find-c10d.mjs). */
export interface NativeDist {
  /** The backends compiled in, comma-separated ("gloo", "gloo, nccl"). */
  distBackends(): string;
  distInit(spec: JoinSpec): Promise<GroupHandle>;
  distNewGroup(parent: GroupHandle, ranks: number[], spec: JoinSpec): Promise<GroupHandle | null>;
  distDestroy(g: GroupHandle): void;
  distWait(w: WorkHandle): void;
  distWaitAsync(w: WorkHandle): Promise<void>;
  distIsCompleted(w: WorkHandle): boolean;
  distAllReduce(g: GroupHandle, t: Handle, op: string): WorkHandle;
  distBroadcast(g: GroupHandle, t: Handle, src: number): WorkHandle;
  distAllGather(g: GroupHandle, t: Handle): [Handle, WorkHandle];
  distReduceScatter(g: GroupHandle, t: Handle, op: string): [Handle, WorkHandle];
  distBarrier(g: GroupHandle): WorkHandle;
  distBroadcastCoalesced(g: GroupHandle, ts: Handle[], src: number): void;
  ddpCreate(g: GroupHandle, params: Handle[], buffers: Handle[], bucketCapBytes: number, firstBucketBytes: number): ReducerHandle;
  ddpFinish(r: ReducerHandle): void;
  ddpBuckets(r: ReducerHandle): number[][];
  ddpLaunched(r: ReducerHandle): number;
  ddpDispose(r: ReducerHandle): void;
  syncBatchNorm(
    x: Handle,
    weight: Handle | null,
    bias: Handle | null,
    runningMean: Handle | null,
    runningVar: Handle | null,
    momentum: number,
    eps: number,
    g: GroupHandle,
  ): Handle;
}

export interface Native extends Partial<NativeDist> {
  opId(name: string, overload: string): number;
  overloads(name: string): string[];
  allOpNames(): string[];
  schema(id: number): string;
  call(id: number, ...args: unknown[]): any;
  run(id: number, ...args: unknown[]): void;
  callResolved(ids: number[], args: unknown[], kwargs?: Record<string, unknown> | null): any;

  dispose(h: Handle): void;
  isDisposed(h: Handle): boolean;
  liveTensors(): number;

  fromBytes(view: ArrayBufferView, shape: number[], dtype: string): Handle;
  toBytes(h: Handle): ArrayBuffer;
  fromFile(path: string, offset: number, byteLength: number, dtype: string): Handle;
  storageBytes(h: Handle): ArrayBuffer;
  shape(h: Handle): number[];
  strides(h: Handle): number[];
  dtype(h: Handle): string;
  device(h: Handle): string;
  dim(h: Handle): number;
  numel(h: Handle): number;
  storageOffset(h: Handle): number;
  storage(h: Handle): [number, number];
  isContiguous(h: Handle, format?: string): boolean;
  requiresGrad(h: Handle): boolean;
  item(h: Handle): number | boolean;

  setNumThreads(n: number): void;
  getNumThreads(): number;
  manualSeed(seed: number): void;
  getRngState(): Handle;
  setRngState(h: Handle): void;
  cudaIsAvailable(): boolean;
  cudaDeviceCount(): number;
  setGradEnabled(on: boolean): boolean;
  isGradEnabled(): boolean;
  setAutocast(device: string, enabled: boolean, dtype: string, phase?: 'enter' | 'exit'): [boolean, string];
  autocastState(device: string): [boolean, string];
  backward(tensors: Handle[], grads: Handle[] | null, retainGraph?: boolean): void;
  grad(h: Handle): Handle | null;
  setGrad(h: Handle, g: Handle | null): void;
  grads(hs: Handle[]): (Handle | null)[];
  clearGrads(hs: Handle[]): void;
  linearCrossEntropyGrad(x: Handle, y: Handle, weight: Handle, bias: Handle): [Handle, Handle, number];
  /** SGD's update of every parameter in one pass each (native/fused.cc); a null buffer with momentum comes back new. */
  sgdStep(
    params: Handle[],
    grads: Handle[],
    bufs: (Handle | null)[],
    scales: number[] | null,
    lr: number,
    momentum: number,
    dampening: number,
    weightDecay: number,
    nesterov: boolean,
  ): (Handle | null)[];
  setRequiresGrad(h: Handle, on: boolean): void;
  isLeaf(h: Handle): boolean;
  gradFn(h: Handle): string | null;
  profilerStart(detail?: boolean): void;
  /** With detail: shapes, dtypes and layouts of the inputs, each a JSON array. */
  profilerStop(): { name: string; count: number; totalUs: number; selfUs: number; shapes?: string; dtypes?: string; layouts?: string }[];
  version(): string;
  configShow(): string;
  cpuCache(): CpuCacheStats;
  cpuEmptyCache(): void;
  /** Absent where the addon was built without libjpeg's headers. */
  decodeJpeg?(bytes: Uint8Array): { data: Uint8Array; width: number; height: number };
}

function load(): Native {
  const n = loadAddon();
  // libtorch starts with one intra-op thread in a Node process: use what the user asked for, else every core.
  const fromEnv = Number.parseInt(process.env.OMP_NUM_THREADS ?? '', 10);
  n.setNumThreads(fromEnv > 0 ? fromEnv : availableParallelism());
  return n;
}

export const native: Native = load();
