// The crops of a batch, from its images and the per-sample draws of (seed, epoch, index): one place for the
// loader's own thread and for the worker that prepares in-memory batches ahead (crop_worker.ts), so that both
// give the same values.
import type { Tensor } from '../torch/tensor.js';
import { empty } from '../torch/creation.js';
import { tidy } from '../torch/scope.js';
import { Rng } from './rng.js';
import { sampleCrops, type CropParams, type MultiCropConfig } from './multicrop.js';
import { augmentInto_, cropResize, normalizeChannels_, resizedCropInto } from './augment.js';

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
      ? augmentInto_(empty([images.length, images[0].shape[1], size, size]), crops, (i, row) =>
          resizedCropInto(images[i], crops[i], crops[i].flip, row),
        )
      : augmentInto_(
          cropResize(
            images,
            crops,
            size,
            crops.map((p) => p.flip),
          ),
          crops,
          null,
        );
    return normalizeChannels_(batch, c.mean, c.std);
  });
}

/** The crops of in-memory samples `indices`, whose images are `images` (B x C x H x W uint8), drawn for `epoch`. */
export function inMemoryCrops(images: Tensor, indices: Int32Array, seed: number, epoch: number, c: MultiCropConfig): Tensor[] {
  return tidy(() => {
    const [, , H, W] = images.shape;
    const params = Array.from(indices, (i) => sampleParams(seed, epoch, i, H, W, c));
    return multiCropBatches(images.float().div_(255), params, c);
  });
}
