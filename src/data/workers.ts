// Worker threads, so that data preparation runs beside the training step instead of before it: a pool that decodes
// image files (decode.ts), and one thread that makes in-memory batches' crops (crop_worker.ts).
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import type { CropParams, MultiCropConfig } from './multicrop.js';
import type { RGB } from './decode.js';

export interface DecodedSample {
  index: number;
  params: CropParams[];
  image: RGB;
}

export interface DecodeRequest {
  id: number;
  file: string;
  index: number;
  seed: number;
  epoch: number;
  crops: MultiCropConfig;
}

type Pending<T = DecodedSample> = { resolve: (s: T) => void; reject: (e: Error) => void };

export class DecodePool {
  readonly #workers: Worker[] = [];
  readonly #pending = new Map<number, Pending>();
  readonly #load: number[] = [];
  #next = 0;

  constructor(size = 0) {
    const n = size > 0 ? size : availableParallelism();
    for (let w = 0; w < n; w++) {
      const worker = new Worker(new URL('./decode_worker.js', import.meta.url));
      worker.on('message', (m: { id: number; error?: string } & Partial<DecodedSample>) => {
        const p = this.#pending.get(m.id);
        if (!p) return;
        this.#pending.delete(m.id);
        if (--this.#load[w] === 0) worker.unref(); // an idle worker does not keep the process alive
        if (m.error !== undefined) p.reject(new Error(m.error));
        else p.resolve({ index: m.index!, params: m.params!, image: m.image! });
      });
      worker.on('error', (e) => {
        for (const p of this.#pending.values()) p.reject(e);
        this.#pending.clear();
      });
      worker.unref();
      this.#workers.push(worker);
      this.#load.push(0);
    }
  }

  /** Decodes `file` and draws the crop parameters of sample `index` in `epoch`. */
  decode(file: string, index: number, seed: number, epoch: number, crops: MultiCropConfig): Promise<DecodedSample> {
    const id = this.#next++;
    const w = this.#load.indexOf(Math.min(...this.#load));
    if (this.#load[w]++ === 0) this.#workers[w].ref(); // a busy one does, until it answers
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#workers[w].postMessage({ id, file, index, seed, epoch, crops } satisfies DecodeRequest);
    });
  }

  close(): void {
    for (const w of this.#workers) void w.terminate();
  }
}

export interface CropWorkerInit {
  seed: number;
  crops: MultiCropConfig;
  /** C x H x W of the dataset's images */
  imageShape: number[];
}

export interface CropRequest {
  id: number;
  epoch: number;
  indices: Int32Array;
  /** The samples' images, B x C x H x W uint8 */
  images: Uint8Array;
}

/** A batch's crops as the worker made them: per crop position, its float32 bytes and shape. */
export interface CropBytes {
  buffers: ArrayBuffer[];
  shapes: number[][];
}

/** One worker thread that makes the crops of in-memory batches (crop_worker.ts), in the order asked. */
export class CropWorker {
  readonly #worker: Worker;
  readonly #pending = new Map<number, Pending<CropBytes>>();
  #next = 0;

  constructor(init: CropWorkerInit) {
    this.#worker = new Worker(new URL('./crop_worker.js', import.meta.url), { workerData: init });
    this.#worker.on('message', (m: { id: number; error?: string } & Partial<CropBytes>) => {
      const p = this.#pending.get(m.id);
      if (!p) return;
      this.#pending.delete(m.id);
      if (this.#pending.size === 0) this.#worker.unref(); // idle, it does not keep the process alive
      if (m.error !== undefined) p.reject(new Error(m.error));
      else p.resolve({ buffers: m.buffers!, shapes: m.shapes! });
    });
    this.#worker.on('error', (e) => {
      for (const p of this.#pending.values()) p.reject(e);
      this.#pending.clear();
    });
    this.#worker.unref();
  }

  /** The crops of samples `indices` in `epoch`, from their images' bytes (handed over to the worker). */
  crops(epoch: number, indices: Int32Array, images: Uint8Array): Promise<CropBytes> {
    const id = this.#next++;
    if (this.#pending.size === 0) this.#worker.ref();
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      // a copy of the indices alone (a view would send its whole buffer, the epoch's order)
      this.#worker.postMessage({ id, epoch, indices: indices.slice(), images } satisfies CropRequest, [images.buffer as ArrayBuffer]);
    });
  }

  /** Stops the worker; what is still asked fails. */
  close(): void {
    for (const p of this.#pending.values()) p.reject(new Error('the crop worker was closed'));
    this.#pending.clear();
    void this.#worker.terminate();
  }
}
