// The pixel side of multi-crop, batched as libtorch ops: crop + resize (+ flip) of in-memory images through
// an affine sampling grid, color jitter in each sample's own order, grayscale, Gaussian blur, normalization.
// Images are float in [0, 1]; 1-channel images skip saturation, hue and grayscale (identities on gray).
import { Tensor, call, run, wrap } from '../torch/tensor.js';
import { tensor, arange } from '../torch/creation.js';
import { tidy } from '../torch/scope.js';
import { gridSample, stack, where, conv2d } from '../torch/functional.js';
import type { ColorParams, CropBox } from './multicrop.js';

/**
 * Crops `boxes` out of `images` (B x C x H x W) and resizes each to size x size, bilinear, exactly as cropping
 * then resizing does (torchvision's resized_crop, without antialiasing): pixel centers half-pixel aligned,
 * samples clamped inside the crop. Mirrored where `flips` says.
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

const gray = (x: Tensor) => tidy(() => {
  const [r, g, b] = x.unbind(1);
  return r.mul(0.2989).add(g.mul(0.587)).add(b.mul(0.114)).unsqueeze(1); // torchvision's tensor weights
});

const blend = (a: Tensor, b: Tensor, ratio: Tensor) => a.mul(ratio).add_(b.mul(ratio.neg().add(1))).clamp_(0, 1);

function rgbToHsv(x: Tensor): Tensor {
  return tidy(() => {
    const [r, g, b] = x.unbind(1);
    const maxc = x.amax(1);
    const minc = x.amin(1);
    const eqc = maxc.eq(minc);
    const cr = maxc.sub(minc);
    const ones = maxc.mul(0).add(1);
    const s = cr.div(where(eqc, ones, maxc));
    const crDiv = where(eqc, ones, cr);
    const rc = maxc.sub(r).div(crDiv);
    const gc = maxc.sub(g).div(crDiv);
    const bc = maxc.sub(b).div(crDiv);
    const isR = maxc.eq(r);
    const isG = maxc.eq(g).logicalAnd(isR.logicalNot());
    const isB = isG.logicalNot().logicalAnd(isR.logicalNot());
    const h = bc.sub(gc).mul(isR).add(rc.sub(bc).add(2).mul(isG)).add(gc.sub(rc).add(4).mul(isB));
    const hue = h.div(6).add(1).remainder(1);
    return stack([hue, s, maxc], 1);
  });
}

function hsvToRgb(x: Tensor): Tensor {
  return tidy(() => {
    const [h, s, v] = x.unbind(1);
    const i = h.mul(6).floor();
    const f = h.mul(6).sub(i);
    const sector = i.remainder(6).long();
    const p = v.mul(s.neg().add(1)).clamp(0, 1);
    const q = v.mul(s.mul(f).neg().add(1)).clamp(0, 1);
    const t = v.mul(s.mul(f.neg().add(1)).neg().add(1)).clamp(0, 1);
    const pick = (vals: Tensor[]) => stack(vals, 1).gather(1, sector.unsqueeze(1)).squeeze(1);
    return stack([pick([v, q, p, p, t, v]), pick([t, v, v, q, p, p]), pick([p, p, t, v, v, q])], 1);
  });
}

/** brightness, contrast, saturation (factor per row, shaped B x 1 x 1 x 1) and hue (shift per row, B). */
const OPS: ((x: Tensor, f: Tensor) => Tensor)[] = [
  (x, f) => x.mul(f).clamp_(0, 1),
  (x, f) => tidy(() => blend(x, (x.shape[1] === 3 ? gray(x) : x).mean([1, 2, 3], true), f)),
  (x, f) => tidy(() => blend(x, gray(x), f)),
  (x, f) => tidy(() => {
    const [h, s, v] = rgbToHsv(x).unbind(1);
    return hsvToRgb(stack([h.add(f.view(-1, 1, 1)).remainder(1), s, v], 1));
  }),
];

/** Replaces rows `idx` of x by fn(those rows): in place when `inPlace` (x is a temporary of our own). */
function onRows(x: Tensor, idx: number[], fn: (rows: Tensor, index: Tensor) => Tensor, inPlace = false): Tensor {
  if (!idx.length) return x;
  return tidy(() => {
    const index = tensor(idx, { dtype: 'int64' });
    const rows = fn(x.indexSelect(0, index), index);
    if (!inPlace) return wrap(call('index_copy', x.h, 0, index.h, rows.h));
    run('index_copy_', x.h, 0, index.h, rows.h);
    return x;
  });
}

/** Separable Gaussian blur of each row with its own sigma (edges replicated), as PIL's GaussianBlur(radius). */
function gaussianBlur(x: Tensor, sigmas: number[]): Tensor {
  return tidy(() => {
    const [B, C, H, W] = x.shape;
    const half = Math.ceil(3 * Math.max(...sigmas));
    const k = 2 * half + 1;
    const pos = arange(-half, half + 1, 1, { dtype: 'float32' }).view(1, k);
    const s = tensor(sigmas).view(B, 1);
    const w = pos.square().div(s.square().mul(-2)).exp();
    const kern = w.div(w.sum(1, true)).repeatInterleave(C, 0); // (B*C) x k
    const flat = x.reshape(1, B * C, H, W);
    const padded = wrap(call('replication_pad2d', flat.h, [half, half, half, half]));
    const rows = conv2d(padded, kern.view(B * C, 1, k, 1), null, { groups: B * C });
    const both = conv2d(rows, kern.view(B * C, 1, 1, k), null, { groups: B * C });
    return both.view(B, C, H, W);
  });
}

/**
 * Color jitter (each sample's order), grayscale and blur, as the parameters say. At each of the four positions of
 * the order, each op runs once, on the rows that have it there (the whole batch when all do): no identity passes.
 */
export function colorAugment(x: Tensor, params: ColorParams[]): Tensor {
  return tidy(() => {
    const rgb = x.shape[1] === 3;
    // Each step's result replaces the last one, which is freed at once: a batch of 224 px crops is ~10 MB a
    // tensor, and keeping every intermediate to the end of the scope costs hundreds of MB of fresh pages.
    let out = x;
    const owned = () => out !== x;
    const replace = (next: Tensor) => {
      if (next !== out && owned()) out.dispose();
      out = next;
    };
    const amount = (p: ColorParams, op: number) => [p.jitter!.brightness, p.jitter!.contrast, p.jitter!.saturation, p.jitter!.hue][op];
    for (let slot = 0; slot < 4; slot++) {
      for (let op = 0; op < 4; op++) {
        if (!rgb && op >= 2) continue; // saturation and hue leave gray images unchanged
        // (a zero hue shift is skipped: the HSV round trip is not an exact identity)
        const rows = params.flatMap((p, i) => (p.jitter !== null && p.jitter.order[slot] === op && !(op === 3 && p.jitter.hue === 0) ? [i] : []));
        if (!rows.length) continue;
        const amounts = tensor(rows.map((i) => amount(params[i], op)));
        const apply = (r: Tensor) => OPS[op](r, op < 3 ? amounts.view(-1, 1, 1, 1) : amounts);
        replace(rows.length === params.length ? apply(out) : onRows(out, rows, apply, owned()));
      }
    }
    if (rgb) replace(onRows(out, params.flatMap((p, i) => (p.grayscale ? [i] : [])), (r) => gray(r).expand(-1, 3, -1, -1), owned()));
    const blurred = params.flatMap((p, i) => (p.blur !== null ? [i] : []));
    replace(onRows(out, blurred, (r) => gaussianBlur(r, blurred.map((i) => params[i].blur!)), owned()));
    return out === x ? x.clone() : out;
  });
}

/** (x - mean) / std per channel (1-channel images use the first entries). */
export function normalizeChannels(x: Tensor, mean: number[], std: number[]): Tensor {
  return tidy(() => {
    const C = x.shape[1];
    return x.sub(tensor(mean.slice(0, C)).view(1, C, 1, 1)).div(tensor(std.slice(0, C)).view(1, C, 1, 1));
  });
}
