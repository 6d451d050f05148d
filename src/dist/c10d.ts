// torch.distributed over the addon's c10d (native/dist.cc): a process group of Gloo (CPU) or NCCL (a CUDA build)
// whose collectives return work handles, with synchronous forms that wait for them. Every wait is bounded by the
// group's timeout; a failure (a peer gone, a timeout) is an Error naming the operation and the rank.
import { native, type GroupHandle, type JoinSpec, type NativeDist, type WorkHandle } from '../torch/native.js';
import { type Tensor, wrap } from '../torch/tensor.js';
import type { ProcessGroup, SyncBatchNormGroup } from './group.js';

export type ReduceOp = 'sum' | 'avg' | 'max' | 'min' | 'product';

export interface InitOptions {
  backend?: 'gloo' | 'nccl';
  /** Default: the environment's RANK and WORLD_SIZE, as torch.distributed's env:// init. */
  rank?: number;
  worldSize?: number;
  /** Where rank 0 serves the TCPStore. Default: MASTER_ADDR and MASTER_PORT, else 127.0.0.1 and 29500. */
  masterAddr?: string;
  masterPort?: number;
  /** A file all ranks share, for a FileStore instead of the TCPStore (torch's file:// init). */
  storePath?: string;
  /** For joining and for every collective. Default 1800, as PyTorch's. */
  timeoutSeconds?: number;
  /**
   * Gloo's device: a network interface (default GLOO_SOCKET_IFNAME), else this host's address; without either, the
   * loopback address when masterAddr is a loopback one, else the address this host's name resolves to.
   */
  interface?: string;
  hostname?: string;
}

function dist(): NativeDist {
  if (!native.distInit) {
    throw new Error(
      "swav: the native addon was built without c10d (Gloo's headers were missing: install libgloo-dev and run `npm run setup`)",
    );
  }
  return native as NativeDist;
}

/** The backends this build of the addon has: Gloo where libgloo-dev's headers were found, NCCL in a CUDA build. */
export function availableBackends(): ('gloo' | 'nccl')[] {
  return native.distBackends
    ? native
        .distBackends()
        .split(', ')
        .filter((b): b is 'gloo' | 'nccl' => b === 'gloo' || b === 'nccl')
    : [];
}

const isLoopback = (addr: string) => addr === 'localhost' || addr === '::1' || addr.startsWith('127.');

function envInt(name: string): number | undefined {
  const v = process.env[name];
  return v === undefined || v === '' ? undefined : Number.parseInt(v, 10);
}

/** A launched collective: wait() resolves to its result (the tensor written), waitSync() blocks for it. */
export class Work<T> {
  constructor(
    readonly handle: WorkHandle,
    readonly result: T,
  ) {}
  isCompleted(): boolean {
    return dist().distIsCompleted(this.handle);
  }
  /** Waits on a libuv thread: the event loop keeps running. */
  async wait(): Promise<T> {
    await dist().distWaitAsync(this.handle);
    return this.result;
  }
  waitSync(): T {
    dist().distWait(this.handle);
    return this.result;
  }
}

/** torch.distributed.init_process_group: rank 0 serves the store, every rank joins; resolves once all have. */
export async function initProcessGroup(o: InitOptions = {}): Promise<C10dGroup> {
  const rank = o.rank ?? envInt('RANK') ?? 0;
  const worldSize = o.worldSize ?? envInt('WORLD_SIZE') ?? 1;
  const host = o.masterAddr ?? process.env.MASTER_ADDR ?? '127.0.0.1';
  const port = o.masterPort ?? envInt('MASTER_PORT') ?? 29500;
  const iface = o.interface ?? (process.env.GLOO_SOCKET_IFNAME || undefined);
  const spec: JoinSpec = {
    backend: o.backend ?? 'gloo',
    rank,
    worldSize,
    timeoutMs: Math.round((o.timeoutSeconds ?? 1800) * 1000),
    interface: iface,
    hostname: o.hostname ?? (iface === undefined && isLoopback(host) ? '127.0.0.1' : undefined),
  };
  const h = await dist().distInit(o.storePath !== undefined ? { ...spec, storePath: o.storePath } : { ...spec, host, port });
  return new C10dGroup(h, rank, worldSize, spec);
}

export class C10dGroup implements ProcessGroup, SyncBatchNormGroup {
  constructor(
    readonly handle: GroupHandle,
    readonly rank: number,
    readonly worldSize: number,
    readonly spec: JoinSpec,
  ) {}

  allReduceAsync(t: Tensor, op: ReduceOp = 'sum'): Work<Tensor> {
    return new Work(dist().distAllReduce(this.handle, t.h, op), t);
  }
  /** Reduces `t` over the group, in place; returns `t`. */
  allReduce_(t: Tensor, op: ReduceOp = 'sum'): Tensor {
    return this.allReduceAsync(t, op).waitSync();
  }
  allReduceSum_(t: Tensor): Tensor {
    return this.allReduce_(t, 'sum');
  }

  broadcastAsync(t: Tensor, src: number): Work<Tensor> {
    return new Work(dist().distBroadcast(this.handle, t.h, src), t);
  }
  broadcast_(t: Tensor, src: number): Tensor {
    return this.broadcastAsync(t, src).waitSync();
  }

  /** Every rank's `t` (equal shapes) concatenated along dim 0 in rank order; the tensor is filled once done. */
  allGatherAsync(t: Tensor): Work<Tensor> {
    const [out, w] = dist().distAllGather(this.handle, t.h);
    return new Work(w, wrap(out));
  }
  allGather(t: Tensor): Tensor {
    return this.allGatherAsync(t).waitSync();
  }

  /**
   * `t` holds worldSize equal chunks along dim 0; this rank gets its chunk reduced over the group. (Over Gloo an
   * all-reduce of a copy: the result is a view that keeps the whole copy alive.)
   */
  reduceScatterAsync(t: Tensor, op: ReduceOp = 'sum'): Work<Tensor> {
    const [out, w] = dist().distReduceScatter(this.handle, t.h, op);
    return new Work(w, wrap(out));
  }
  reduceScatter(t: Tensor, op: ReduceOp = 'sum'): Tensor {
    return this.reduceScatterAsync(t, op).waitSync();
  }

  barrierAsync(): Work<void> {
    return new Work(dist().distBarrier(this.handle), undefined);
  }
  barrier(): void {
    this.barrierAsync().waitSync();
  }

  /** Broadcasts many tensors at once from `src` (flattened per dtype), in place. */
  broadcastCoalesced_(ts: Tensor[], src = 0): void {
    dist().distBroadcastCoalesced(
      this.handle,
      ts.map((t) => t.h),
      src,
    );
  }

  /**
   * torch.distributed.new_group: every rank of this group calls it with the same `ranks`; the members get a group
   * of their own (ranks renumbered in that order), the others null.
   */
  async newGroup(ranks: number[]): Promise<C10dGroup | null> {
    const h = await dist().distNewGroup(this.handle, ranks, this.spec);
    return h === null ? null : new C10dGroup(h, ranks.indexOf(this.rank), ranks.length, this.spec);
  }

  /**
   * Groups of `size` consecutive ranks (SwAV's syncbn_process_group_size); returns the one this rank is in.
   * Every rank must call it.
   */
  async subgroups(size: number): Promise<C10dGroup> {
    if (!(size >= 1) || this.worldSize % size !== 0) throw new Error(`subgroups: ${size} does not divide the world size ${this.worldSize}`);
    let mine: C10dGroup | null = null;
    for (let first = 0; first < this.worldSize; first += size) {
      const g = await this.newGroup(Array.from({ length: size }, (_, i) => first + i));
      mine ??= g;
    }
    return mine!;
  }

  /** SyncBatchNorm in training mode over this group (native/sync_batch_norm.cc). */
  batchNorm(
    x: Tensor,
    weight: Tensor | null,
    bias: Tensor | null,
    runningMean: Tensor | null,
    runningVar: Tensor | null,
    momentum: number,
    eps: number,
  ): Tensor {
    return wrap(
      dist().syncBatchNorm(
        x.h,
        weight?.h ?? null,
        bias?.h ?? null,
        runningMean?.h ?? null,
        runningVar?.h ?? null,
        momentum,
        eps,
        this.handle,
      ),
    );
  }

  /** Waits for queued work, then closes the connections (and, on rank 0, the store). */
  destroy(): void {
    dist().distDestroy(this.handle);
  }
}
