// SwAV's multi-crop parameters (src/multicropdataset.py): per crop, RandomResizedCrop(size, scale, ratio 3/4-4/3),
// a horizontal flip (p 0.5), ColorJitter(0.8, 0.8, 0.8, 0.2) with p 0.8 in a random order, grayscale (p 0.2),
// Gaussian blur (p 0.5, radius U[0.1, 2]), then normalization (std 0.228 for red). Parameters are drawn here, as
// torchvision draws them; pixels are transformed by augment.ts (in memory) or the decode workers (files).
import type { Rng } from './rng.js';

export interface MultiCropConfig {
  nmbCrops: number[];
  sizeCrops: number[];
  minScaleCrops: number[];
  maxScaleCrops: number[];
  ratio: [number, number];
  flipP: number;
  jitterP: number;
  /** brightness, contrast, saturation, hue strengths. */
  jitter: [number, number, number, number];
  grayscaleP: number;
  blurP: number;
  blurRadius: [number, number];
  mean: number[];
  std: number[];
}

export const REFERENCE_MULTICROP: MultiCropConfig = {
  nmbCrops: [2, 6],
  sizeCrops: [224, 96],
  minScaleCrops: [0.14, 0.05],
  maxScaleCrops: [1, 0.14],
  ratio: [3 / 4, 4 / 3],
  flipP: 0.5,
  jitterP: 0.8,
  jitter: [0.8, 0.8, 0.8, 0.2],
  grayscaleP: 0.2,
  blurP: 0.5,
  blurRadius: [0.1, 2.0],
  mean: [0.485, 0.456, 0.406],
  std: [0.228, 0.224, 0.225],
};

export interface CropBox {
  top: number;
  left: number;
  height: number;
  width: number;
}

export interface ColorParams {
  /** null when the jitter is not applied; else the op order (0 brightness, 1 contrast, 2 saturation, 3 hue). */
  jitter: { order: number[]; brightness: number; contrast: number; saturation: number; hue: number } | null;
  grayscale: boolean;
  /** Blur radius (Gaussian sigma), or null. */
  blur: number | null;
}

export interface CropParams extends CropBox, ColorParams {
  size: number;
  flip: boolean;
}

/** torchvision's RandomResizedCrop.get_params: 10 tries at a random area and aspect, else a centered crop. */
export function sampleCropBox(rng: Rng, height: number, width: number, scale: [number, number], ratio: [number, number]): CropBox {
  const area = height * width;
  const logRatio = [Math.log(ratio[0]), Math.log(ratio[1])];
  for (let i = 0; i < 10; i++) {
    const target = area * rng.uniform(scale[0], scale[1]);
    const aspect = Math.exp(rng.uniform(logRatio[0], logRatio[1]));
    const w = Math.round(Math.sqrt(target * aspect));
    const h = Math.round(Math.sqrt(target / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      return { top: rng.int(0, height - h + 1), left: rng.int(0, width - w + 1), height: h, width: w };
    }
  }
  const inRatio = width / height;
  let w = width;
  let h = height;
  if (inRatio < Math.min(...ratio)) h = Math.round(w / Math.min(...ratio));
  else if (inRatio > Math.max(...ratio)) w = Math.round(h * Math.max(...ratio));
  return { top: Math.floor((height - h) / 2), left: Math.floor((width - w) / 2), height: h, width: w };
}

function sampleColor(rng: Rng, c: MultiCropConfig): ColorParams {
  let jitter: ColorParams['jitter'] = null;
  if (rng.random() < c.jitterP) {
    const order = Array.from(rng.permutation(4));
    const [b, ct, s, h] = c.jitter;
    jitter = {
      order,
      brightness: rng.uniform(Math.max(0, 1 - b), 1 + b),
      contrast: rng.uniform(Math.max(0, 1 - ct), 1 + ct),
      saturation: rng.uniform(Math.max(0, 1 - s), 1 + s),
      hue: rng.uniform(-h, h),
    };
  }
  const grayscale = rng.random() < c.grayscaleP;
  const blur = rng.random() <= c.blurP ? rng.uniform(c.blurRadius[0], c.blurRadius[1]) : null;
  return { jitter, grayscale, blur };
}

/** Every crop's parameters for one image of height x width, from the generator of (seed, epoch, index). */
export function sampleCrops(rng: Rng, height: number, width: number, c: MultiCropConfig): CropParams[] {
  const out: CropParams[] = [];
  c.nmbCrops.forEach((n, g) => {
    for (let k = 0; k < n; k++) {
      const box = sampleCropBox(rng, height, width, [c.minScaleCrops[g], c.maxScaleCrops[g]], c.ratio);
      const flip = rng.random() < c.flipP;
      out.push({ ...box, size: c.sizeCrops[g], flip, ...sampleColor(rng, c) });
    }
  });
  return out;
}

/** One RandomResizedCrop(size) (scale 0.08-1) + horizontal flip and nothing else: the evaluations' train transform. */
export function randomResizedCropConfig(size: number, mean: number[], std: number[]): MultiCropConfig {
  return {
    nmbCrops: [1],
    sizeCrops: [size],
    minScaleCrops: [0.08],
    maxScaleCrops: [1],
    ratio: [3 / 4, 4 / 3],
    flipP: 0.5,
    jitterP: 0,
    jitter: [0, 0, 0, 0],
    grayscaleP: 0,
    blurP: 0,
    blurRadius: [0.1, 2],
    mean,
    std,
  };
}
