// The pixel side of multi-crop as libtorch ops: crop + resize (+ flip), color jitter in each crop's own order,
// grayscale, Gaussian blur. Large crops go one at a time, resized straight into their row of the batch and then
// changed in place while they are in cache (a batch row is a contiguous view: nothing gathers or scatters rows,
// and in this libtorch an in-place pass over a cached crop costs a tenth of one that allocates). Small crops go
// as a batch, each op once over all rows (there the calls cost more than the pixels). Both give the same values.
// Images are float in [0, 1]; 1-channel images skip saturation, hue and grayscale (identities on gray).
import { type Tensor, run } from '../torch/tensor.js';
import { empty, tensor } from '../torch/creation.js';
import { cat, gridSample, stack } from '../torch/functional.js';
import { tidy } from '../torch/scope.js';
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

/**
 * Crops `boxes` out of `images` (B x C x H x W, one image per box) and resizes each to size x size, as
 * resizedCropInto does, all in one grid_sample: for in-memory datasets, whose images share one size and are
 * small, one call instead of a few per crop.
 */
export function cropResize(images: Tensor, boxes: CropBox[], size: number, flips: boolean[]): Tensor {
  return tidy(() => {
    const [B, , H, W] = images.shape;
    // grid_sample coordinates (align_corners false) of each output column / row, per sample
    const xs = new Float32Array(B * size);
    const ys = new Float32Array(B * size);
    boxes.forEach((b, i) => {
      for (let k = 0; k < size; k++) {
        const sx = Math.min(Math.max(((k + 0.5) * b.width) / size - 0.5, 0), b.width - 1);
        const sy = Math.min(Math.max(((k + 0.5) * b.height) / size - 0.5, 0), b.height - 1);
        xs[i * size + (flips[i] ? size - 1 - k : k)] = (2 * (b.left + sx) + 1) / W - 1;
        ys[i * size + k] = (2 * (b.top + sy) + 1) / H - 1;
      }
    });
    const gx = tensor(xs).view(B, 1, size).expand(B, size, size);
    const gy = tensor(ys).view(B, size, 1).expand(B, size, size);
    return gridSample(images, stack([gx, gy], 3), 'bilinear', 'border', false);
  });
}

/** torchvision's rgb_to_grayscale weights */
const GRAY = [0.2989, 0.587, 0.114];

/** The constant tensors the color ops broadcast, made once per batch rather than once per crop. */
interface ColorConstants {
  /** torchvision's rgb_to_grayscale weights, 1 x 3 x 1 x 1 */
  gray: Tensor;
  /** per channel: the center, sign and base of its hue ramp */
  rampCenter: Tensor;
  rampSign: Tensor;
  rampBase: Tensor;
}

function colorConstants(): ColorConstants {
  const t = (v: number[]) => tensor(v).view(1, 3, 1, 1);
  return { gray: t(GRAY), rampCenter: t([3, 2, 4]), rampSign: t([1, -1, -1]), rampBase: t([-1, 2, 2]) };
}

// torchvision's rgb_to_grayscale, on the channel planes (a third of the memory traffic of a weighted channel sum)
const gray = (x: Tensor) =>
  x
    .narrow(1, 0, 1)
    .mul(GRAY[0])
    .add_(x.narrow(1, 1, 1), GRAY[1])
    .add_(x.narrow(1, 2, 1), GRAY[2]);

/** An op's amount: one number for one crop, or a column (n x 1 x 1 x 1) of per-row amounts for n rows. */
type Amount = number | Tensor;
const column = (values: number[]) => tensor(values).view(-1, 1, 1, 1);

/** x <- clamp(x * f + other * (1 - f), 0, 1), torchvision's blend; `other` is consumed. */
function blend_(x: Tensor, other: Tensor, f: Amount): void {
  if (typeof f === 'number')
    run('add.out', other.mul_(1 - f).h, x.h, f, x.h); // (one pass: other + f * x)
  else x.mul_(f).add_(other.mul_(f.neg().add_(1)));
  x.clamp_(0, 1);
}

/** x <- `by` on the rows where mask (n x 1 x 1 x 1 of 0 and 1) is 1, exactly (x * (1 - m) + by * m); `by` is consumed. */
const select_ = (x: Tensor, by: Tensor, mask: Tensor) => x.mul_(mask.neg().add_(1)).add_(by.mul_(mask));

/**
 * Hue shift in place, as torchvision's RGB -> HSV -> RGB round trip: with max, min and the hue in sixths h6,
 * each channel is min + (max - min) * clamp(ramp_c(h6), 0, 1), the ramps being |h6 - 3| - 1, 2 - |h6 - 2| and
 * 2 - |h6 - 4| (the same pieces as HSV's p, q, t, v, in a third of the ops). `shift` is in turns, per row.
 */
function hue_(x: Tensor, shift: Amount, k: ColorConstants): void {
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
    if (typeof shift === 'number') h6.add_(6 * shift);
    else h6.add_(shift, 6);
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

/** brightness, contrast, saturation (factors) and hue (shift), in place, each row by its own amount. */
const OPS: ((x: Tensor, amount: Amount, k: ColorConstants) => void)[] = [
  (x, f) => {
    x.mul_(f).clamp_(0, 1);
  },
  (x, f, k) =>
    tidy(() => {
      blend_(x, x.shape[1] === 3 ? x.mean([2, 3], true).mul_(k.gray).sum(1, true) : x.mean([1, 2, 3], true), f);
    }),
  (x, f) =>
    tidy(() => {
      blend_(x, gray(x), f);
    }),
  hue_,
];
/** The amount that leaves a row as it is (for hue a shift of 0, but its round trip is not exact: rows are masked). */
const IDENTITY = [1, 1, 1, 0];

type Jitter = NonNullable<ColorParams['jitter']>;
const amountOf = (j: Jitter, op: number) => [j.brightness, j.contrast, j.saturation, j.hue][op];
/** Whether op runs on a crop: saturation and hue leave gray images unchanged; a zero hue shift is skipped. */
const runs = (j: Jitter, op: number, rgb: boolean) => (rgb || op < 2) && !(op === 3 && j.hue === 0);

/** The weights (centered taps, each a number or a column of per-row weights) applied along `dim` of x, past the edges the edge's value. */
function filterAlong(x: Tensor, dim: number, w: Amount[]): Tensor {
  const n = x.shape[dim];
  const half = (w.length - 1) / 2;
  const edge = (at: number) => x.narrow(dim, at, 1).expand(x.shape.map((s, i) => (i === dim ? half : s)));
  const padded = cat([edge(0), x, edge(n - 1)], dim); // (a copy, several times faster than replication_pad2d)
  const out = padded.narrow(dim, 0, n).mul(w[0]);
  for (let j = 1; j < w.length; j++) {
    const tap = padded.narrow(dim, j, n);
    const wj = w[j];
    if (typeof wj === 'number') out.add_(tap, wj);
    else out.addcmul_(tap, wj);
  }
  return out;
}

/**
 * Separable Gaussian blur in place (edges replicated), as PIL's GaussianBlur(radius): sigma = radius, 3 sigma
 * wide, each row with its own (null: none). As weighted sums of shifted views: one fused multiply-add per tap,
 * several times faster than libtorch's depthwise convolution for these small kernels.
 */
function gaussianBlur_(x: Tensor, sigmas: (number | null)[]): void {
  tidy(() => {
    const half = Math.max(...sigmas.map((s) => (s === null ? 0 : Math.ceil(3 * s))));
    // per tap, each row's weight: zero past the row's own 3 sigma, 1 at the center for a row without blur
    const taps = Array.from({ length: 2 * half + 1 }, () => new Array<number>(sigmas.length).fill(0));
    sigmas.forEach((s, row) => {
      const own = s === null ? 0 : Math.ceil(3 * s);
      const g = Array.from({ length: 2 * own + 1 }, (_, i) => (s === null ? 1 : Math.exp(-((i - own) ** 2) / (2 * s * s))));
      const sum = g.reduce((a, b) => a + b, 0);
      g.forEach((v, i) => {
        taps[half - own + i][row] = v / sum;
      });
    });
    const w = taps.map((t) => (t.length === 1 ? t[0] : column(t)));
    x.copy_(filterAlong(filterAlong(x, 2, w), 3, w));
  });
}

/** Color jitter (in the crop's own order), grayscale and blur of one crop (1 x C x S x S), in place. */
function colorAugmentCrop_(x: Tensor, p: ColorParams, k: ColorConstants): void {
  const rgb = x.shape[1] === 3;
  if (p.jitter !== null) {
    for (const op of p.jitter.order) if (runs(p.jitter, op, rgb)) OPS[op](x, amountOf(p.jitter, op), k);
  }
  if (rgb && p.grayscale)
    tidy(() => {
      x.copy_(gray(x));
    });
  if (p.blur !== null) gaussianBlur_(x, [p.blur]);
}

/**
 * The same for every row of a batch at once: each op runs on the whole batch at each position of the order,
 * rows without it there left exactly as they are. Four times the arithmetic of cropwise, in a hundredth of the
 * calls: the faster schedule for small crops, where calls cost more than pixels.
 */
function colorAugmentRows_(x: Tensor, params: ColorParams[], k: ColorConstants): void {
  const rgb = x.shape[1] === 3;
  for (let slot = 0; slot < 4; slot++) {
    for (let op = 0; op < 4; op++) {
      const has = params.map((p) => p.jitter !== null && p.jitter.order[slot] === op && runs(p.jitter, op, rgb));
      if (!has.includes(true)) continue;
      const amounts = params.map((p, i) => (has[i] ? amountOf(p.jitter!, op) : IDENTITY[op]));
      tidy(() => {
        if (op !== 3 || !has.includes(false)) OPS[op](x, column(amounts), k);
        else {
          const hued = x.clone();
          OPS[op](hued, column(amounts), k);
          select_(x, hued, column(has.map(Number)));
        }
      });
    }
  }
  if (rgb && params.some((p) => p.grayscale))
    tidy(() => {
      select_(x, gray(x), column(params.map((p) => Number(p.grayscale))));
    });
  if (params.some((p) => p.blur !== null))
    gaussianBlur_(
      x,
      params.map((p) => p.blur),
    );
}

/**
 * How the color ops are laid out: 'rows' runs each op on the whole batch (colorAugmentRows_), 'crops' on one crop
 * at a time (colorAugmentCrop_). Same results; by default crops up to 48 x 48 go by rows.
 */
export type Schedule = 'rows' | 'crops';
const scheduleFor = (x: Tensor): Schedule => (x.shape[2] * x.shape[3] <= 48 * 48 ? 'rows' : 'crops');

/**
 * Colors, grays and blurs each row of `batch` (n x C x S x S) as params[i] says, in place; when given, cut(i, row)
 * first writes row i. Large crops are augmented right after their cut, while they are in cache; small ones together.
 */
export function augmentInto_(
  batch: Tensor,
  params: ColorParams[],
  cut: ((i: number, row: Tensor) => void) | null,
  schedule = scheduleFor(batch),
): Tensor {
  tidy(() => {
    const k = colorConstants();
    if (schedule === 'rows') {
      if (cut) params.forEach((_, i) => cut(i, batch.narrow(0, i, 1)));
      colorAugmentRows_(batch, params, k);
    } else {
      params.forEach((p, i) => {
        const row = batch.narrow(0, i, 1);
        cut?.(i, row);
        colorAugmentCrop_(row, p, k);
      });
    }
  });
  return batch;
}

/** Color jitter, grayscale and blur of each row of x as its parameters say (a new tensor). */
export function colorAugment(x: Tensor, params: ColorParams[], schedule = scheduleFor(x)): Tensor {
  return augmentInto_(x.clone(), params, null, schedule);
}

/** x <- (x - mean) / std per channel, in place (1-channel images use the first entries). */
export function normalizeChannels_(x: Tensor, mean: number[], std: number[]): Tensor {
  tidy(() => {
    const C = x.shape[1];
    x.sub_(tensor(mean.slice(0, C)).view(1, C, 1, 1)).div_(tensor(std.slice(0, C)).view(1, C, 1, 1));
  });
  return x;
}
