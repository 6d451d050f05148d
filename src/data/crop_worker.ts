// Worker thread: the crops of in-memory batches (crops.ts, as the loader's own thread makes them) on a libtorch
// thread of its own, while the main thread trains on the previous batch. Replies with each crop position's
// float32 bytes (transferred, not copied).
import { parentPort, workerData } from 'node:worker_threads';
import { fromBytes } from '../torch/creation.js';
import { setNumThreads } from '../torch/runtime.js';
import { tidy } from '../torch/scope.js';
import { inMemoryCrops } from './crops.js';
import type { CropRequest, CropWorkerInit } from './workers.js';

const init = workerData as CropWorkerInit;
setNumThreads(1); // one thread beside the training step: its own intra-op threads keep the cores

parentPort!.on('message', (req: CropRequest) => {
  try {
    const shape = [req.indices.length, ...init.imageShape];
    const crops = tidy(() =>
      inMemoryCrops(fromBytes(req.images, shape, 'uint8'), req.indices, init.seed, req.epoch, init.crops).map((t) => ({
        buffer: t.toBytes().buffer as ArrayBuffer,
        shape: t.shape,
      })),
    );
    const buffers = crops.map((c) => c.buffer);
    parentPort!.postMessage({ id: req.id, buffers, shapes: crops.map((c) => c.shape) }, buffers);
  } catch (e) {
    parentPort!.postMessage({ id: req.id, error: (e as Error).message });
  }
});
