// A pool of worker threads that decode image files (decode.ts), so that decoding runs beside the training step
// instead of before it.
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

type Pending = { resolve: (s: DecodedSample) => void; reject: (e: Error) => void };

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
