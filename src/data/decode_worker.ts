// Worker thread: decodes one image file and draws its crops' parameters; replies with the RGB pixels (transferred,
// not copied). The crops are cut from them in one place for all datasets (augment.ts resizedCropInto).
import { parentPort } from 'node:worker_threads';
import sharp from 'sharp';
import { Rng } from './rng.js';
import { sampleCrops } from './multicrop.js';
import { decodeRGB } from './decode.js';
import type { DecodeRequest } from './workers.js';

sharp.concurrency(1); // one libvips thread per worker: the workers are the parallelism

parentPort!.on('message', async (req: DecodeRequest) => {
  try {
    const image = await decodeRGB(req.file);
    const params = sampleCrops(new Rng(req.seed, req.epoch, req.index), image.height, image.width, req.crops);
    parentPort!.postMessage({ id: req.id, index: req.index, params, image }, [image.data.buffer as ArrayBuffer]);
  } catch (e) {
    parentPort!.postMessage({ id: req.id, error: (e as Error).message });
  }
});
