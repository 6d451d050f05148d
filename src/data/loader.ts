// Multi-crop batches for training: a permutation of the dataset per epoch (drop_last), each sample's crops drawn
// from the generator of (seed, epoch, index). Image files are decoded by worker threads (workers.ts); crops and
// colors are libtorch ops here (augment.ts), with the same results for in-memory datasets and files.
import type { Tensor } from '../torch/tensor.js';
import { empty, fromBytes, tensor } from '../torch/creation.js';
import { tidy } from '../torch/scope.js';
import { Rng } from './rng.js';
import { sampleCrops, type CropParams, type MultiCropConfig } from './multicrop.js';
import { augmentInto_, cropResize, normalizeChannels_, resizedCropInto } from './augment.js';
import type { Dataset, TensorDataset } from './datasets.js';
import { loadEvalImages } from './image.js';
import { DecodePool, type DecodedSample } from './workers.js';
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
}

/** The order of samples in an epoch (a seeded permutation). */
export function epochOrder(n: number, seed: number, epoch: number): Int32Array {
  return new Rng(seed, epoch, 0x5eed).permutation(n);
}

/** The crop parameters of sample `index` in `epoch`. */
export function sampleParams(seed: number, epoch: number, index: number, height: number, width: number, c: MultiCropConfig): CropParams[] {
  return sampleCrops(new Rng(seed, epoch, index), height, width, c);
}

/**
 * One batch per crop position, colored, blurred and normalized. `images` are an in-memory batch (B x C x H x W
 * floats in [0, 1]: each position's crops cut by one grid_sample), or decoded files of their own sizes (one
 * 1 x C x H x W each: every crop resized into its row of the batch and augmented while it is in cache).
 */
export function multiCropBatches(images: Tensor | Tensor[], params: CropParams[][], c: MultiCropConfig): Tensor[] {
  return params[0].map(({ size }, k) => {
    const crops = params.map((p) => p[k]);
    const batch = Array.isArray(images)
      ? augmentInto_(empty([images.length, images[0].shape[1], size, size]), crops, (i, row) => resizedCropInto(images[i], crops[i], crops[i].flip, row))
      : augmentInto_(cropResize(images, crops, size, crops.map((p) => p.flip)), crops, null);
    return normalizeChannels_(batch, c.mean, c.std);
  });
}

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
  /** Files found corrupt so far (skipped from then on). */
  readonly badFiles = new Set<string>();

  constructor(readonly dataset: Dataset, readonly o: LoaderOptions) {
    const share = Math.floor(dataset.length / (o.worldSize ?? 1));
    this.itersPerEpoch = (o.dropLast ?? true) ? Math.floor(share / o.batchSize) : Math.ceil(share / o.batchSize);
    if (this.itersPerEpoch < 1) {
      throw new Error(`the dataset has ${dataset.length} samples, fewer than one batch of ${o.batchSize}${(o.worldSize ?? 1) > 1 ? ` for each of ${o.worldSize} processes` : ''}`);
    }
    this.#pool = dataset.kind === 'files' ? new DecodePool(o.workers ?? 0) : null;
  }

  /**
   * Batches of `epoch` from iteration `start` on. `augmentEpoch` keys the crops' random draws (default: the
   * epoch's own); another value gives the same order with fresh augmentations.
   */
  async *batches(epoch: number, start = 0, augmentEpoch = epoch): AsyncGenerator<Batch> {
    const order = this.#share(epochOrder(this.dataset.length, this.o.seed, epoch));
    if (this.dataset.kind === 'tensor') {
      for (let it = start; it < this.itersPerEpoch; it++) {
        const t0 = performance.now();
        const indices = order.subarray(it * this.o.batchSize, (it + 1) * this.o.batchSize);
        const crops = this.#inMemory(this.dataset, augmentEpoch, indices);
        await new Promise(setImmediate); // let signals (Ctrl-C) through between iterations
        yield { crops, indices, waitSeconds: (performance.now() - t0) / 1000 };
      }
      return;
    }
    yield* this.#files(augmentEpoch, order, start);
  }

  #share(order: Int32Array): Int32Array {
    const w = this.o.worldSize ?? 1;
    if (w === 1) return order;
    const share = Math.floor(order.length / w);
    return Int32Array.from({ length: share }, (_, i) => order[(this.o.rank ?? 0) + i * w]);
  }

  #inMemory(ds: TensorDataset, epoch: number, indices: Int32Array): Tensor[] {
    return tidy(() => {
      const [, , H, W] = ds.images.shape;
      const params = Array.from(indices, (i) => sampleParams(this.o.seed, epoch, i, H, W, this.o.crops));
      const images = ds.images.indexSelect(0, tensor(Array.from(indices), { dtype: 'int64' })).float().div_(255);
      return multiCropBatches(images, params, this.o.crops);
    });
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
      pool.decode(ds.files[index], index, this.o.seed, augmentEpoch, this.o.crops).then((s) => s, (e: Error) => {
        this.badFiles.add(ds.files[index]);
        if (this.o.corruptImages === 'fail') throw new Error(`${ds.files[index]}: ${e.message} (data.corrupt_images: fail)`);
        this.o.onSkip?.(ds.files[index], e.message);
        return null;
      });
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
      const crops = tidy(() => multiCropBatches(samples.map((s) => imageTensor(s.image)), samples.map((s) => s.params), this.o.crops));
      yield { crops, indices: Int32Array.from(samples, (s) => s.index), waitSeconds: (performance.now() - t0) / 1000 };
    }
  }

  close(): void {
    this.#pool?.close();
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
export async function* evalBatches(ds: Dataset, o: { batch: number; mean: number[]; std: number[]; device?: string; resize?: number; crop?: number;
  range?: [number, number] }): AsyncGenerator<LabelledBatch> {
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
      b = { images, labels: tensor(ok.map((f) => ds.labels[ds.files.indexOf(f, i)]), { dtype: 'int64', device }) };
    }
    try {
      if (b.labels.shape[0]) yield b;
    } finally {
      b.images.dispose();
      b.labels.dispose();
    }
  }
}
