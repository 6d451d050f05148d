// The prototype gallery: the last checkpoint's model on a sample of the training data (its first SAMPLE images),
// each image assigned a prototype by Sinkhorn-Knopp codes as in training; the most used prototypes, with the
// images that pick them; and each sampled image's nearest neighbours among the others by the trunk's features.
// Computed on request and kept until the checkpoint changes; `swav export --gallery` writes the same sample as files
// for the browser example (src/export/gallery.ts).
import { statSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import * as torch from '../torch/index.js';
import { openDataset, type Dataset } from '../data/datasets.js';
import { evalBatches } from '../data/loader.js';
import { sinkhorn } from '../methods/swav.js';
import type { ResNet } from '../models/resnet.js';
import type { Config } from '../train/config.js';
import { CHECKPOINT } from '../train/trainer.js';
import { loadWeights } from '../cli/weights.js';
import type { Run } from './runs.js';

export interface Gallery {
  epoch: number;
  sampled: number;
  prototypes: { prototype: number; count: number; images: number[] }[];
}

const SAMPLE = 512;
const TOP = 8;
const PER_PROTOTYPE = 8;
const BATCH = 64;

/** A model's view of the sampled training images. */
export interface Sample {
  dataset: Dataset;
  /** Each sampled image's prototype. */
  picks: number[];
  /** Each sampled image's index in the dataset (the gallery, neighbours and map name images by their row here). */
  images: number[];
  /** The sampled images' trunk features, L2-normalized (sampled x D), for the neighbours and the map. */
  features: torch.Tensor;
}

export interface GalleryEntry extends Sample {
  mtimeMs: number;
  gallery: Gallery;
}

const cache = new Map<string, GalleryEntry>();
const pending = new Map<string, Promise<GalleryEntry>>();

/**
 * The run's gallery, recomputed when its checkpoint is newer than the one it came from (one computation at a
 * time per run: a second request waits for the first's).
 */
export function galleryOf(run: Run): Promise<GalleryEntry> {
  const { mtimeMs } = statSync(join(run.dir, CHECKPOINT));
  const hit = cache.get(run.dir);
  if (hit && hit.mtimeMs === mtimeMs) return Promise.resolve(hit);
  if (!pending.has(run.dir))
    pending.set(
      run.dir,
      compute(run, mtimeMs).finally(() => pending.delete(run.dir)),
    );
  return pending.get(run.dir)!;
}

/**
 * The gallery last computed, as it is: its thumbnails, neighbours and map must not recompute it (while the run
 * trains, the checkpoint changes every epoch).
 */
export const lastGallery = (run: Run): GalleryEntry | undefined => cache.get(run.dir);

async function compute(run: Run, mtimeMs: number): Promise<GalleryEntry> {
  const { model, config } = await loadWeights('serve', run.dir);
  try {
    if (!config) throw new Error(`serve: ${run.dir}'s checkpoint holds no training config`);
    const sample = await sampleOf('serve', model, config);
    const entry = {
      mtimeMs,
      ...sample,
      gallery: { epoch: checkpointEpoch(run), sampled: sample.picks.length, prototypes: mostUsed(sample.picks) },
    };
    cache.get(run.dir)?.features.dispose();
    cache.set(run.dir, entry);
    return entry;
  } finally {
    model.dispose();
  }
}

/** The `k` sampled images nearest to sampled image `index` by cosine similarity of their features, nearest first. */
export function neighbours(entry: GalleryEntry, index: number, k = 8): { image: number; similarity: number }[] {
  return torch.tidy(() => {
    const sims = entry.features.matmul(entry.features.select(0, index));
    const { values, indices } = sims.topk(Math.min(k + 1, sims.shape[0]));
    const [vs, is] = [values.tolist() as number[], indices.tolist() as number[]];
    return is
      .map((image, j) => ({ image, similarity: vs[j] }))
      .filter((n) => n.image !== index)
      .slice(0, k);
  });
}

const checkpointEpoch = (run: Run) => torch.tidy(() => Number(torch.load(join(run.dir, CHECKPOINT)).epoch));

/**
 * `model`'s view of the first SAMPLE images of its training data (`config`'s): each one's prototype (the argmax of
 * its code), dataset index and normalized trunk features. `what` is the command, for the messages.
 */
export async function sampleOf(what: string, model: ResNet, config: Config): Promise<Sample> {
  const dataset = openDataset({ type: config.data.type, path: config.data.path!, split: config.data.split });
  return { dataset, ...(await sampled(what, model.eval(), config, dataset)) };
}

async function sampled(what: string, model: ResNet, c: Config, ds: Dataset): Promise<Omit<Sample, 'dataset'>> {
  const rows: torch.Tensor[] = [];
  const feats: torch.Tensor[] = [];
  const images: number[] = [];
  const opts = { batch: BATCH, mean: c.crops.mean, std: c.crops.std, device: c.run.device };
  try {
    // one range per batch, and a batch missing a file that failed to decode is left out: which row is which
    // image stays known
    for (let i = 0; i < Math.min(SAMPLE, ds.length); i += BATCH) {
      const end = Math.min(i + BATCH, SAMPLE, ds.length);
      for await (const b of evalBatches(ds, { ...opts, range: [i, end] })) {
        if (b.images.shape[0] !== end - i) continue;
        images.push(...Array.from({ length: end - i }, (_, j) => i + j));
        const f = torch.noGrad(() => model.forwardBackbone(b.images));
        try {
          feats.push(torch.tidy(() => torch.normalize(f, 2, 1)));
          rows.push(torch.noGrad(() => torch.tidy(() => scoresOf(what, model, f))));
        } finally {
          f.dispose();
        }
      }
    }
    if (!rows.length) throw new Error(`${what}: no training image of ${ds.name} could be read`);
    // SwAV's own Sinkhorn settings; the defaults for the other methods' prototypes
    const o = c.method === 'swav' ? { epsilon: c.swav.epsilon, iterations: c.swav.sinkhorn_iterations } : {};
    const picks = torch.tidy(() => sinkhorn(torch.cat(rows), o).argmax(1).tolist() as number[]);
    return { picks, images, features: torch.cat(feats) };
  } finally {
    [...rows, ...feats].forEach((r) => r.dispose());
  }
}

/** Prototype scores of trunk features (the features themselves are the caller's). */
function scoresOf(what: string, model: ResNet, features: torch.Tensor): torch.Tensor {
  const { output } = model.forwardHead(features);
  const scores = Array.isArray(output) ? output[0] : output;
  if (!scores) throw new Error(`${what}: this model has no prototypes (model.nmb_prototypes)`);
  return scores;
}

function mostUsed(picks: number[]): Gallery['prototypes'] {
  const byPrototype = new Map<number, number[]>();
  picks.forEach((k, i) => byPrototype.set(k, [...(byPrototype.get(k) ?? []), i]));
  return [...byPrototype.entries()]
    .sort((a, b) => b[1].length - a[1].length)
    .slice(0, TOP)
    .map(([prototype, images]) => ({ prototype, count: images.length, images: images.slice(0, PER_PROTOTYPE) }));
}

/** One training image as a PNG thumbnail; `index` is its index in the dataset. */
export async function thumbnail(dataset: Dataset, index: number): Promise<Buffer> {
  if (dataset.kind === 'files') return sharp(dataset.files[index]).resize(96, 96, { fit: 'cover' }).png().toBuffer();
  const [, channels, height, width] = dataset.images.shape;
  const pixels = torch.tidy(() => dataset.images.narrow(0, index, 1).squeeze(0).permute([1, 2, 0]).contiguous().toTypedArray());
  return sharp(Buffer.from(pixels.buffer, pixels.byteOffset, pixels.byteLength), { raw: { width, height, channels: channels as 1 | 3 } })
    .resize(Math.max(48, width), null, { kernel: 'nearest' })
    .png()
    .toBuffer();
}
