// Image files in and out of tensors: listing, the evaluation transform (sharp / libvips), stacking.
import { readdirSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fromBytes, tensor, zeros } from '../torch/creation.js';
import { tidy } from '../torch/scope.js';
import type { Tensor } from '../torch/tensor.js';
import { sharpRGB, type RGB } from './decode.js';

export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.webp', '.bmp', '.tif', '.tiff', '.gif'];

/** Image files under `dir`, recursively, sorted (as torchvision's ImageFolder orders them). */
export function listImages(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d).sort()) {
      const p = join(d, e);
      if (statSync(p).isDirectory()) walk(p);
      else if (IMAGE_EXTENSIONS.includes(extname(e).toLowerCase())) out.push(p);
    }
  };
  walk(dir);
  return out;
}

/** The evaluation transform's sizes for image files: torchvision's Resize(256) + CenterCrop(224). */
export const EVAL_RESIZE = 256;
export const EVAL_CROP = 224;

/**
 * The evaluation transform: shorter side resized to `resize` (bilinear), center crop `crop`, as torchvision's
 * Resize(256) + CenterCrop(224); 8-bit RGB, HWC.
 */
export async function resizeCenterCrop(path: string, resize = EVAL_RESIZE, crop = EVAL_CROP): Promise<RGB> {
  const img = sharpRGB(path);
  const meta = await img.metadata();
  let w = meta.autoOrient?.width ?? meta.width ?? 0;
  let h = meta.autoOrient?.height ?? meta.height ?? 0;
  if (!w || !h) throw new Error(`${path}: cannot read the image size`);
  // torchvision: the shorter side becomes `resize`, the longer int(resize * long / short)
  [w, h] = w <= h ? [resize, Math.floor((resize * h) / w)] : [Math.floor((resize * w) / h), resize];
  if (w < crop || h < crop) throw new Error(`${path}: resize ${resize} is smaller than the crop ${crop}`);
  const { data } = await img
    .resize(w, h, { kernel: 'linear', fit: 'fill' })
    .extract({ left: Math.round((w - crop) / 2), top: Math.round((h - crop) / 2), width: crop, height: crop })
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: crop, height: crop };
}

/** HWC uint8 images of one size -> an N x 3 x H x W uint8 tensor. */
export function stackRGB(images: RGB[]): Tensor {
  const { width, height } = images[0];
  const all = new Uint8Array(images.length * width * height * 3);
  images.forEach((im, i) => all.set(im.data, i * width * height * 3));
  const nhwc = fromBytes(all, [images.length, height, width, 3], 'uint8');
  try {
    return nhwc.permute(0, 3, 1, 2).contiguous();
  } finally {
    nhwc.dispose();
  }
}

/** SwAV's normalization (std 0.228, not 0.229, for the red channel). */
export const MEAN = [0.485, 0.456, 0.406];
export const STD = [0.228, 0.224, 0.225];

/**
 * Evaluation images: decoded, resized (shorter side `resize`), center-cropped to `crop`, normalized; files that
 * fail to decode are skipped and reported.
 */
export async function loadEvalImages(
  files: string[],
  o: { resize?: number; crop?: number; mean?: number[]; std?: number[] } = {},
): Promise<{ images: Tensor; ok: string[]; skipped: string[] }> {
  const crop = o.crop ?? EVAL_CROP;
  const decoded = await Promise.all(
    files.map((f) =>
      resizeCenterCrop(f, o.resize ?? EVAL_RESIZE, crop).then(
        (im) => ({ f, im }),
        (e: Error) => ({ f, e }),
      ),
    ),
  );
  const ok = decoded.filter((d): d is { f: string; im: RGB } => 'im' in d);
  const skipped = decoded.flatMap((d) => ('e' in d ? [`${d.f}: ${d.e.message}`] : []));
  if (!ok.length) return { images: zeros([0, 3, crop, crop]), ok: [], skipped };
  const images = tidy(() => {
    const mean = tensor(o.mean ?? MEAN).view(1, 3, 1, 1);
    const std = tensor(o.std ?? STD).view(1, 3, 1, 1);
    return stackRGB(ok.map((d) => d.im))
      .float()
      .div(255)
      .sub(mean)
      .div(std);
  });
  return { images, ok: ok.map((d) => d.f), skipped };
}
