// DistributedDataParallel's gradient synchronization (native/ddp.cc): construction broadcasts rank 0's parameters
// and buffers; during backward each bucket of gradients starts its all-reduce as soon as it is complete;
// finishGradSync() waits for them and leaves every gradient averaged over the group, before the optimizer step.
// A parameter without gradient on some rank counts as zeros there; one without gradient on every rank keeps its
// .grad as it was (see native/ddp.cc). Build it after moving the model (Module.to replaces the parameters' tensors).
import { native, type NativeDist, type ReducerHandle } from '../torch/native.js';
import type { Tensor } from '../torch/tensor.js';
import type { C10dGroup } from './c10d.js';

export interface DdpOptions {
  /** Bucket size cap (torch's bucket_cap_mb), default 25. */
  bucketCapMb?: number;
  /** The first bucket's cap, so that the first all-reduce starts early: default 1, as torch's. */
  firstBucketMb?: number;
}

const MB = 1024 * 1024;

export class DistributedDataParallel {
  #h: ReducerHandle | null;
  readonly #buffers: Tensor[];

  constructor(
    readonly group: C10dGroup,
    parameters: Tensor[],
    buffers: Tensor[] = [],
    o: DdpOptions = {},
  ) {
    this.#buffers = buffers;
    const d = native as NativeDist;
    this.#h = d.ddpCreate(
      group.handle,
      parameters.map((p) => p.h),
      buffers.map((b) => b.h),
      Math.round((o.bucketCapMb ?? 25) * MB),
      Math.round((o.firstBucketMb ?? 1) * MB),
    );
  }

  get #handle(): ReducerHandle {
    if (this.#h === null) throw new Error('DistributedDataParallel used after dispose()');
    return this.#h;
  }

  /** After backward, before the optimizer step: every gradient averaged over the group. */
  finishGradSync(): void {
    (native as NativeDist).ddpFinish(this.#handle);
  }

  /** Rank 0's buffers to every rank (torch's broadcast_buffers does it before each forward). */
  broadcastBuffers(): void {
    this.group.broadcastCoalesced_(this.#buffers, 0);
  }

  /** Each bucket's parameter indices, in all-reduce order. */
  get buckets(): number[][] {
    return (native as NativeDist).ddpBuckets(this.#handle);
  }

  /** How many buckets have started their all-reduce since the last finishGradSync (during backward: the overlap). */
  get launchedBuckets(): number {
    return (native as NativeDist).ddpLaunched(this.#handle);
  }

  /** Removes the gradient hooks and frees the buckets. */
  dispose(): void {
    if (this.#h !== null) (native as NativeDist).ddpDispose(this.#h);
    this.#h = null;
  }
}
