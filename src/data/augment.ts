// The pixel side of multi-crop as libtorch ops, one crop at a time: crop + resize (+ flip) into its row of the
// batch, then color jitter in the crop's own order, grayscale, Gaussian blur, all in place on that row. Rows of
// a batch are contiguous views, so no op gathers or scatters rows, and a crop's intermediates are small enough
// to stay in cache (in this libtorch an in-place pass over a cached crop costs a tenth of a pass that allocates).
// Images are float in [0, 1]; 1-channel images skip saturation, hue and grayscale (identities on gray).
import { Tensor, run } from '../torch/tensor.js';
import { empty, tensor } from '../torch/creation.js';
import { tidy } from '../torch/scope.js';
import { cat } from '../torch/functional.js';
import type { ColorParams, CropBox } from './multicrop.js';

/**
 * Writes `box` of `image` (1 x C x H x W), resized to dst's size, bilinear, into `dst` (1 x C x S x S): exactly
 * torchvision's resized_crop on tensors (no antialiasing: pixel centers half-pixel aligned, samples clamped
 * inside the crop). Mirrored when `flip`.
 */
export function resizedCropInto(image: Tensor, box: CropBox, flip: boolean, dst: Tensor): void {
  tidy(() => {
    const region = image.narrow(2, box.top, box.height).narrow(3, box.left, box.width);
    run('upsample_bilinear2d.out', region.h, dst.shape.slice(2), false, null, null, dst.h);
    if (flip) dst.copy_(dst.flip(3)); // (every later op commutes with a flip)
  });
}

/** Crops `boxes` out of `images` (B x C x H x W), one per row, each resized to size x size and mirrored where `flips` says. */
export function cropResize(images: Tensor, boxes: CropBox[], size: number, flips: boolean[]): Tensor {
  const out = empty([images.shape[0], images.shape[1], size, size]);
  tidy(() => boxes.forEach((b, i) => resizedCropInto(images.narrow(0, i, 1), b, flips[i], out.narrow(0, i, 1))));
  return out;
}

/** torchvision's rgb_to_grayscale weights */
const GRAY = [0.2989, 0.587, 0.114];

/** The constant tensors the color ops broadcast, made once per batch rather than once per crop. */
export interface ColorConstants {
  /** torchvision's rgb_to_grayscale weights, 1 x 3 x 1 x 1 */
  gray: Tensor;
  /** per channel: the center, sign and base of its hue ramp */
  rampCenter: Tensor;
  rampSign: Tensor;
  rampBase: Tensor;
}

export function colorConstants(): ColorConstants {
  const t = (v: number[]) => tensor(v).view(1, 3, 1, 1);
  return { gray: t(GRAY), rampCenter: t([3, 2, 4]), rampSign: t([1, -1, -1]), rampBase: t([-1, 2, 2]) };
}

// torchvision's rgb_to_grayscale, on the channel planes (a third of the memory traffic of a weighted channel sum)
const gray = (x: Tensor) => x.narrow(1, 0, 1).mul(GRAY[0]).add_(x.narrow(1, 1, 1), GRAY[1]).add_(x.narrow(1, 2, 1), GRAY[2]);

/** x <- clamp(x * f + other * (1 - f), 0, 1), torchvision's blend; `other` is consumed. */
const blend_ = (x: Tensor, other: Tensor, f: number) => x.mul_(f).add_(other.mul_(1 - f)).clamp_(0, 1);

/**
 * Hue shift in place, as torchvision's RGB -> HSV -> RGB round trip: with max, min and the hue in sixths h6,
 * each channel is min + (max - min) * clamp(ramp_c(h6), 0, 1), the ramps being |h6 - 3| - 1, 2 - |h6 - 2| and
 * 2 - |h6 - 4| (the same pieces as HSV's p, q, t, v, in a third of the ops).
 */
function hue_(x: Tensor, shift: number, k: ColorConstants): void {
  tidy(() => {
    // (libtorch 1.13's max-with-indices and argmax over channels, and where(), are several times slower than
    // amax, comparisons into float masks and fused multiply-adds)
    const [r, g, b] = [0, 1, 2].map((c) => x.narrow(1, c, 1));
    const max = x.amax(1, true);
    const min = x.amin(1, true);
    const range = max.sub(min);
    const inverse = range.clampMin(1e-30); // gray pixels (range 0) differ by 0: hue 0
    run('reciprocal_', inverse.h);
    const isMax = (channel: Tensor) => {
      const mask = empty(max.shape);
      run('eq.Tensor_out', channel.h, max.h, mask.h);
      return mask;
    };
    // the hue if channel c were the largest, 2c + (next - the one after) / range; the largest's is blue's,
    // unless green is the largest, unless red is (torchvision's order on ties)
    const hueIf = (next: Tensor, after: Tensor, offset: number) => next.sub(after).mul_(inverse).add_(offset);
    const h6 = hueIf(r, g, 4);
    h6.addcmul_(hueIf(b, r, 2).sub_(h6), isMax(g));
    h6.addcmul_(hueIf(g, b, 0).sub_(h6), isMax(r));
    h6.add_(6 * shift);
    const turns = h6.div(6); // wrapped into [0, 6]: 6 and 0 give the same ramps
    run('floor_', turns.h);
    h6.sub_(turns, 6);
    // x <- min + range * clamp(base + sign * |h6 - center|, 0, 1), in six passes
    run('sub.out', h6.expandAs(x).h, k.rampCenter.h, 1, x.h);
    run('abs_', x.h);
    x.mul_(k.rampSign).add_(k.rampBase).clamp_(0, 1);
    run('addcmul.out', min.h, x.h, range.h, 1, x.h);
  });
}

/** brightness, contrast, saturation (factors) and hue (shift), in place on one crop. */
const OPS: ((x: Tensor, f: number, k: ColorConstants) => void)[] = [
  (x, f) => { x.mul_(f).clamp_(0, 1); },
  (x, f, k) => tidy(() => { blend_(x, x.shape[1] === 3 ? x.mean([0, 2, 3], true).mul_(k.gray).sum() : x.mean(), f); }),
  (x, f) => tidy(() => { blend_(x, gray(x), f); }),
  hue_,
];

/** The weights w (centered) applied along `dim` of x, past the edges the edge's value: one fused multiply-add per tap. */
function filterAlong(x: Tensor, dim: number, w: number[]): Tensor {
  const n = x.shape[dim];
  const half = (w.length - 1) / 2;
  const edge = (at: number) => x.narrow(dim, at, 1).expand(x.shape.map((s, i) => (i === dim ? half : s)));
  const padded = cat([edge(0), x, edge(n - 1)], dim); // (a copy, several times faster than replication_pad2d)
  const out = padded.narrow(dim, 0, n).mul(w[0]);
  for (let j = 1; j < w.length; j++) out.add_(padded.narrow(dim, j, n), w[j]);
  return out;
}

/**
 * Separable Gaussian blur in place (edges replicated), as PIL's GaussianBlur(radius): sigma = radius, 3 sigma
 * wide. As weighted sums of shifted views: for these small kernels on one crop, several times faster than
 * libtorch's depthwise convolution.
 */
function gaussianBlur_(x: Tensor, sigma: number): void {
  tidy(() => {
    const half = Math.ceil(3 * sigma);
    const w = Array.from({ length: 2 * half + 1 }, (_, i) => Math.exp(-((i - half) ** 2) / (2 * sigma * sigma)));
    const sum = w.reduce((a, b) => a + b, 0);
    const normalized = w.map((v) => v / sum);
    x.copy_(filterAlong(filterAlong(x, 2, normalized), 3, normalized));
  });
}

/** Color jitter (in the crop's own order), grayscale and blur of one crop (1 x C x S x S), in place. */
export function colorAugmentCrop_(x: Tensor, p: ColorParams, k: ColorConstants): void {
  const rgb = x.shape[1] === 3;
  if (p.jitter !== null) {
    const j = p.jitter;
    const amounts = [j.brightness, j.contrast, j.saturation, j.hue];
    for (const op of j.order) {
      // saturation and hue leave gray images unchanged; a zero hue shift is skipped (the round trip is not exact)
      if ((!rgb && op >= 2) || (op === 3 && j.hue === 0)) continue;
      OPS[op](x, amounts[op], k);
    }
  }
  if (rgb && p.grayscale) tidy(() => { x.copy_(gray(x).expandAs(x)); });
  if (p.blur !== null) gaussianBlur_(x, p.blur);
}

/** Color jitter, grayscale and blur of each row of x as its parameters say (a new tensor). */
export function colorAugment(x: Tensor, params: ColorParams[]): Tensor {
  const out = x.clone();
  tidy(() => {
    const k = colorConstants();
    params.forEach((p, i) => colorAugmentCrop_(out.narrow(0, i, 1), p, k));
  });
  return out;
}

/** x <- (x - mean) / std per channel, in place (1-channel images use the first entries). */
export function normalizeChannels_(x: Tensor, mean: number[], std: number[]): Tensor {
  tidy(() => {
    const C = x.shape[1];
    x.sub_(tensor(mean.slice(0, C)).view(1, C, 1, 1)).div_(tensor(std.slice(0, C)).view(1, C, 1, 1));
  });
  return x;
}
