// Worker thread: decodes one image file once, draws its crops' parameters, and cuts each crop (crop, resize
// with a linear kernel, flip) from the decoded pixels. Replies with the crops' bytes (transferred, not copied).
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
    const raw = { raw: { width: info.width, height: info.height, channels: 3 as const } };
    const crops = await Promise.all(params.map(async (p) => {
      let img = sharp(data, raw).extract({ left: p.left, top: p.top, width: p.width, height: p.height })
        .resize(p.size, p.size, { kernel: 'linear', fit: 'fill' });
      if (p.flip) img = img.flop();
      // a copy of our own, so that it can be transferred (sharp's buffers may be external memory)
      return { data: new Uint8Array(await img.raw().toBuffer()), size: p.size };
    }));
    parentPort!.postMessage({ id: req.id, index: req.index, params, crops }, crops.map((c) => c.data.buffer as ArrayBuffer));
  } catch (e) {
    parentPort!.postMessage({ id: req.id, error: (e as Error).message });
  }
});
