// The prototype gallery as static files, for the browser example (examples/browser/): the sample `swav serve`
// shows (src/serve/gallery.ts) written where a page with no server of its own can read it. gallery.json says how
// the exported model's input is made from an image and, for each sampled training image, its prototype and
// thumbnail; features.f32 holds their L2-normalized trunk features; images/ROW.png the thumbnails.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tidy } from '../torch/scope.js';
import { EVAL_CROP, EVAL_RESIZE } from '../data/image.js';
import type { Dataset } from '../data/datasets.js';
import type { ResNet } from '../models/resnet.js';
import type { Config } from '../train/config.js';
import { sampleOf, thumbnail } from '../serve/gallery.js';

export interface BrowserGallery {
  /** The ONNX model's path, relative to gallery.json. */
  model: string;
  /**
   * How an image becomes the model's input: its shorter side resized to `resize`, a center crop of height x width,
   * `channels` 3 (RGB) or 1 (gray), then (pixel / 255 - mean) / std per channel, NCHW float32.
   */
  input: { channels: number; resize: number; height: number; width: number; mean: number[]; std: number[] };
  /** The file of the sampled images' features: rows x dim float32, little-endian, each row L2-normalized. */
  features: { file: string; rows: number; dim: number };
  /** The sampled images in the rows' order: thumbnail, index in the training data, prototype picked. */
  images: { file: string; index: number; prototype: number }[];
}

/** The input the training data's evaluation transform makes: image files resized and cropped, in-memory images as they are. */
function inputOf(dataset: Dataset, config: Config): BrowserGallery['input'] {
  const { mean, std } = config.crops;
  if (dataset.kind === 'files') return { channels: 3, resize: EVAL_RESIZE, height: EVAL_CROP, width: EVAL_CROP, mean, std };
  const [, channels, height, width] = dataset.images.shape;
  return { channels, resize: Math.min(height, width), height, width, mean, std };
}

/**
 * Writes `model`'s gallery of its training data (`config`'s) into `dir`, for the ONNX model at `modelPath`
 * (relative to `dir`, with '/'); returns what was written.
 */
export async function writeGallery(dir: string, modelPath: string, model: ResNet, config: Config): Promise<BrowserGallery> {
  const { dataset, picks, images, features } = await sampleOf('export', model, config);
  try {
    mkdirSync(join(dir, 'images'), { recursive: true });
    const gallery: BrowserGallery = {
      model: modelPath,
      input: inputOf(dataset, config),
      features: { file: 'features.f32', rows: features.shape[0], dim: features.shape[1] },
      images: images.map((index, row) => ({ file: `images/${row}.png`, index, prototype: picks[row] })),
    };
    writeFileSync(
      join(dir, gallery.features.file),
      tidy(() => features.cpu().float().contiguous().toBytes()),
    );
    for (const [row, image] of gallery.images.entries()) writeFileSync(join(dir, image.file), await thumbnail(dataset, images[row]));
    writeFileSync(join(dir, 'gallery.json'), `${JSON.stringify(gallery, null, 1)}\n`);
    return gallery;
  } finally {
    features.dispose();
    if (dataset.kind === 'tensor') dataset.images.dispose();
  }
}
