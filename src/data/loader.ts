// Multi-crop batches for training: a permutation of the dataset per epoch (drop_last), each sample's crops drawn
// from the generator of (seed, epoch, index). Image files are decoded by worker threads (workers.ts); crops and
// colors are libtorch ops (augment.ts, crops.ts), with the same results for in-memory datasets and files. In-memory
// batches are made one ahead by a worker thread (crop_worker.ts), or here when asked for (prefetch: false).
import type { Tensor } from '../torch/tensor.js';
import { fromBytes, tensor } from '../torch/creation.js';
import { tidy } from '../torch/scope.js';
import { getNumThreads } from '../torch/runtime.js';
import { Rng } from './rng.js';
import type { MultiCropConfig } from './multicrop.js';
import { normalizeChannels_ } from './augment.js';
import { inMemoryCrops, multiCropBatches } from './crops.js';
import type { Dataset, TensorDataset } from './datasets.js';
import { loadEvalImages } from './image.js';
import { CropWorker, DecodePool, type CropBytes, type DecodedSample } from './workers.js';
import type { RGB } from './decode.js';

export interface Batch {
  /** One tensor per crop, crops in order (B x C x size x size, normalized). */
  crops: Tensor[];
  /** Dataset indices of the samples. */
  indices: Int32Array;
  /** Seconds the trainer waited for this batch. */
  waitSeconds: number;
}

export interface LoaderOptions {
  batchSize: number;
  seed: number;
  crops: MultiCropConfig;
  /** Decode workers for image files (0: one per core). */
  workers?: number;
  /** Corrupt image files: skipped with a warning (default), or fatal. */
  corruptImages?: 'skip' | 'fail';
  onSkip?: (file: string, reason: string) => void;
  /** Drop the last partial batch of an epoch (default true, as the pretraining's DataLoader); false keeps it, as the evaluations' do. */
  dropLast?: boolean;
  /**
   * Several processes: this one's share of each epoch's order, as torch's DistributedSampler (drop_last) gives
   * it: positions rank, rank + worldSize, ... of the first worldSize x floor(n / worldSize).
   */
  rank?: number;
  worldSize?: number;
  /**
   * In-memory datasets: the next batch's crops are made in a worker thread while the current one trains (default
   * true); false makes each batch when it is asked for, on this thread. The same values either way.
   */
  prefetch?: boolean;
}

/** The order of samples in an epoch (a seeded permutation). */
export function epochOrder(n: number, seed: number, epoch: number): Int32Array {
  return new Rng(seed, epoch, 0x5eed).permutation(n);
}

/** The images of samples `indices` (B x C x H x W uint8). */
const imagesOf = (ds: TensorDataset, indices: Int32Array): Tensor =>
  tidy(() => ds.images.indexSelect(0, tensor(Array.from(indices), { dtype: 'int64' })));

/**
 * A decoded image (height x width x 3 bytes) as 1 x 3 x height x width floats in [0, 1], left in the bytes' channels-
 * last order (converting is then one contiguous pass; the crops are resized from it as fast as from planes).
 */
export function imageTensor(image: RGB): Tensor {
  return tidy(() => fromBytes(image.data, [1, image.height, image.width, 3], 'uint8').float().div_(255).permute(0, 3, 1, 2));
}

export class MultiCropLoader {
  readonly itersPerEpoch: number;
  readonly #pool: DecodePool | null;
  #cropWorker: CropWorker | null = null;
  /** Files found corrupt so far (skipped from then on). */
  readonly badFiles = new Set<string>();

  constructor(
    readonly dataset: Dataset,
    readonly o: LoaderOptions,
  ) {
    const share = Math.floor(dataset.length / (o.worldSize ?? 1));
    this.itersPerEpoch = (o.dropLast ?? true) ? Math.floor(share / o.batchSize) : Math.ceil(share / o.batchSize);
    if (this.itersPerEpoch < 1) {
      throw new Error(
        `the dataset has ${dataset.length} samples, fewer than one batch of ${o.batchSize}${(o.worldSize ?? 1) > 1 ? ` for each of ${o.worldSize} processes` : ''}`,
      );
    }
    this.#pool = dataset.kind === 'files' ? new DecodePool(o.workers ?? 0) : null;
  }

  /**
   * Batches of `epoch` from iteration `start` on. `augmentEpoch` keys the crops' random draws (default: the
   * epoch's own); another value gives the same order with fresh augmentations.
   */
  async *batches(epoch: number, start = 0, augmentEpoch = epoch): AsyncGenerator<Batch> {
    const order = this.#share(epochOrder(this.dataset.length, this.o.seed, epoch));
    if (this.dataset.kind === 'files') yield* this.#files(augmentEpoch, order, start);
    else if (this.o.prefetch ?? true) yield* this.#prefetched(this.dataset, augmentEpoch, order, start);
    else {
      for (let it = start; it < this.itersPerEpoch; it++) {
        const t0 = performance.now();
        const indices = this.#batchIndices(order, it);
        const crops = this.#inMemory(this.dataset, augmentEpoch, indices);
        await new Promise(setImmediate); // let signals (Ctrl-C) through between iterations
        yield { crops, indices, waitSeconds: (performance.now() - t0) / 1000 };
      }
    }
  }

  #batchIndices(order: Int32Array, it: number): Int32Array {
    return order.subarray(it * this.o.batchSize, (it + 1) * this.o.batchSize);
  }

  #share(order: Int32Array): Int32Array {
    const w = this.o.worldSize ?? 1;
    if (w === 1) return order;
    const share = Math.floor(order.length / w);
    return Int32Array.from({ length: share }, (_, i) => order[(this.o.rank ?? 0) + i * w]);
  }

  #inMemory(ds: TensorDataset, epoch: number, indices: Int32Array): Tensor[] {
    return tidy(() => inMemoryCrops(imagesOf(ds, indices), indices, this.o.seed, epoch, this.o.crops));
  }

  /**
   * In-memory batches whose crops the worker makes one batch ahead: batch it + 1 while the consumer trains on
   * batch it. Waiting for the worker's reply lets signals through, as the synchronous path's setImmediate does.
   * A consumer that stops early waits for the batch in flight (it is dropped as bytes, never made tensors), so
   * that nothing runs on behind it.
   */
  async *#prefetched(ds: TensorDataset, epoch: number, order: Int32Array, start: number): AsyncGenerator<Batch> {
    const worker = (this.#cropWorker ??= this.#startCropWorker(ds));
    const ask = (it: number) => {
      const indices = this.#batchIndices(order, it);
      return worker.crops(
        epoch,
        indices,
        tidy(() => imagesOf(ds, indices).toBytes()),
      );
    };
    let next: Promise<CropBytes> | null = start < this.itersPerEpoch ? ask(start) : null;
    try {
      for (let it = start; it < this.itersPerEpoch; it++) {
        const t0 = performance.now();
        const bytes = await next!;
        next = it + 1 < this.itersPerEpoch ? ask(it + 1) : null;
        const crops = bytes.buffers.map((b, k) => fromBytes(new Uint8Array(b), bytes.shapes[k], 'float32'));
        yield { crops, indices: this.#batchIndices(order, it), waitSeconds: (performance.now() - t0) / 1000 };
      }
    } finally {
      await next?.catch(() => {}); // made for nobody: its failure, if any, concerns no one
    }
  }

  #startCropWorker(ds: TensorDataset): CropWorker {
    getNumThreads(); // fixes this thread's count first: the worker's setNumThreads(1) changes the default of threads yet to start
    return new CropWorker({ seed: this.o.seed, crops: this.o.crops, imageShape: ds.images.shape.slice(1) });
  }

  /**
   * Image files: workers decode ahead of the trainer (two batches in flight). A file that fails to
   * decode is reported, remembered, and replaced by the next file of the epoch's order, so every batch is full.
   */
  async *#files(augmentEpoch: number, order: Int32Array, start: number): AsyncGenerator<Batch> {
    const ds = this.dataset as Extract<Dataset, { kind: 'files' }>;
    const pool = this.#pool!;
    const bs = this.o.batchSize;
    // Replacements come from past the end of the batches the epoch uses (drop_last leaves those unused), then
    // from the start of the epoch's order again.
    let spare = Math.min(this.itersPerEpoch * bs, order.length);
    const take = (): number | null => {
      for (let tries = 0; tries < order.length; tries++) {
        const i = order[spare++ % order.length];
        if (!this.badFiles.has(ds.files[i])) return i;
      }
      return null;
    };
    const decode = (index: number): Promise<DecodedSample | null> =>
      pool.decode(ds.files[index], index, this.o.seed, augmentEpoch, this.o.crops).then(
        (s) => s,
        (e: Error) => {
          this.badFiles.add(ds.files[index]);
          if (this.o.corruptImages === 'fail') throw new Error(`${ds.files[index]}: ${e.message} (data.corrupt_images: fail)`);
          this.o.onSkip?.(ds.files[index], e.message);
          return null;
        },
      );
    const batchAt = async (it: number): Promise<DecodedSample[]> => {
      const wanted = Array.from(order.subarray(it * bs, (it + 1) * bs)).map((i) => (this.badFiles.has(ds.files[i]) ? take() : i));
      const got = await Promise.all(wanted.map((i) => (i === null ? null : decode(i))));
      const samples = got.filter((s): s is DecodedSample => s !== null);
      while (samples.length < wanted.length) {
        const i = take();
        if (i === null) throw new Error(`no readable image left to fill a batch (${this.badFiles.size} skipped)`);
        const s = await decode(i);
        if (s) samples.push(s);
      }
      return samples;
    };
    const ahead: Promise<DecodedSample[]>[] = [];
    for (let it = start; it < Math.min(start + 2, this.itersPerEpoch); it++) ahead.push(batchAt(it));
    for (let it = start; it < this.itersPerEpoch; it++) {
      const t0 = performance.now();
      const samples = await ahead.shift()!;
      if (it + 2 < this.itersPerEpoch) ahead.push(batchAt(it + 2));
      const crops = tidy(() =>
        multiCropBatches(
          samples.map((s) => imageTensor(s.image)),
          samples.map((s) => s.params),
          this.o.crops,
        ),
      );
      yield { crops, indices: Int32Array.from(samples, (s) => s.index), waitSeconds: (performance.now() - t0) / 1000 };
    }
  }

  close(): void {
    this.#pool?.close();
    this.#cropWorker?.close();
    this.#cropWorker = null;
  }
}

/** Labelled images, a batch at a time. */
export interface LabelledBatch {
  /** B x C x H x W, normalized. */
  images: Tensor;
  /** B int64. */
  labels: Tensor;
}

/**
 * A dataset in order under the evaluation transform: image files resized (shorter side `resize`, default 256) and
 * center-cropped (`crop`, 224), in-memory images as they are; normalized. Files that fail to decode are left out.
 * Each batch is freed once the consumer moves on.
 */
export async function* evalBatches(
  ds: Dataset,
  o: { batch: number; mean: number[]; std: number[]; device?: string; resize?: number; crop?: number; range?: [number, number] },
): AsyncGenerator<LabelledBatch> {
  const device = o.device ?? 'cpu';
  const [from, to] = o.range ?? [0, ds.length];
  for (let i = from; i < to; i += o.batch) {
    const n = Math.min(o.batch, to - i);
    let b: LabelledBatch;
    if (ds.kind === 'tensor') {
      b = tidy(() => ({
        images: normalizeChannels_(ds.images.narrow(0, i, n).float().div_(255), o.mean, o.std).to({ device }),
        labels: tensor(Array.from(ds.labels.subarray(i, i + n)), { dtype: 'int64', device }),
      }));
    } else {
      const files = ds.files.slice(i, i + n);
      const { images: cpu, ok } = await loadEvalImages(files, { resize: o.resize, crop: o.crop, mean: o.mean, std: o.std });
      const images = device === 'cpu' ? cpu : tidy(() => cpu.to({ device }));
      if (images !== cpu) cpu.dispose();
      b = {
        images,
        labels: tensor(
          ok.map((f) => ds.labels[ds.files.indexOf(f, i)]),
          { dtype: 'int64', device },
        ),
      };
    }
    try {
      if (b.labels.shape[0]) yield b;
    } finally {
      b.images.dispose();
      b.labels.dispose();
    }
  }
}
