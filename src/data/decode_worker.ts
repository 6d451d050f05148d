// Worker thread: decodes one image file and draws its crops' parameters; replies with the RGB pixels (transferred,
// not copied). The crops are cut from them in one place for all datasets (augment.ts cropResize).
import { parentPort } from 'node:worker_threads';
import sharp from 'sharp';
import { Rng } from './rng.js';
import { sampleCrops } from './multicrop.js';
import type { DecodeRequest } from './workers.js';

sharp.concurrency(1); // one libvips thread per worker: the workers are the parallelism

parentPort!.on('message', async (req: DecodeRequest) => {
  try {
    const { data, info } = await sharp(req.file, { failOn: 'error' }).rotate().removeAlpha().toColourspace('srgb')
      .raw().toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels`);
    const params = sampleCrops(new Rng(req.seed, req.epoch, req.index), info.height, info.width, req.crops);
    // a copy of our own, so that it can be transferred (sharp's buffers may be external memory)
    const image = { data: new Uint8Array(data), height: info.height, width: info.width };
    parentPort!.postMessage({ id: req.id, index: req.index, params, image }, [image.data.buffer as ArrayBuffer]);
  } catch (e) {
    parentPort!.postMessage({ id: req.id, error: (e as Error).message });
  }
});
