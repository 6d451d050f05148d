// The prototype gallery: the last checkpoint's model on a sample of the training data (its first `sample` images),
// each image assigned a prototype by Sinkhorn-Knopp codes as in training; the most used prototypes, with the
// images that pick them. Computed on request and kept until the checkpoint changes.
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

const cache = new Map<string, { mtimeMs: number; gallery: Gallery; dataset: Dataset }>();

/** The run's gallery, recomputed only when its checkpoint is newer than the one it came from. */
export async function galleryOf(run: Run): Promise<{ gallery: Gallery; dataset: Dataset }> {
  const { mtimeMs } = statSync(join(run.dir, CHECKPOINT));
  const hit = cache.get(run.dir);
  if (hit && hit.mtimeMs === mtimeMs) return hit;
  const { model, config } = await loadWeights('serve', run.dir);
  try {
    if (!config) throw new Error(`serve: ${run.dir}'s checkpoint holds no training config`);
    const dataset = openDataset({ type: config.data.type, path: config.data.path!, split: config.data.split });
    const picks = await prototypePicks(model.eval(), config, dataset);
    const entry = { mtimeMs, dataset, gallery: { epoch: checkpointEpoch(run), sampled: picks.length, prototypes: mostUsed(picks) } };
    cache.set(run.dir, entry);
    return entry;
  } finally {
    model.dispose();
  }
}

const checkpointEpoch = (run: Run) => torch.tidy(() => Number(torch.load(join(run.dir, CHECKPOINT)).epoch));

/** Each sampled image's prototype (the argmax of its code), in image order. */
async function prototypePicks(model: ResNet, c: Config, ds: Dataset): Promise<number[]> {
  const rows: torch.Tensor[] = [];
  const opts = { batch: BATCH, mean: c.crops.mean, std: c.crops.std, device: c.run.device };
  try {
    // one range per batch: a file that fails to decode is dropped from its batch, which must not shift the others
    for (let i = 0; i < Math.min(SAMPLE, ds.length); i += BATCH) {
      for await (const b of evalBatches(ds, { ...opts, range: [i, Math.min(i + BATCH, SAMPLE, ds.length)] })) {
        rows.push(torch.noGrad(() => torch.tidy(() => scoresOf(model, b.images))));
      }
    }
    if (!rows.length) return [];
    // SwAV's own Sinkhorn settings; the defaults for the other methods' prototypes
    const o = c.method === 'swav' ? { epsilon: c.swav.epsilon, iterations: c.swav.sinkhorn_iterations } : {};
    return torch.tidy(() => sinkhorn(torch.cat(rows), o).argmax(1).tolist() as number[]);
  } finally {
    rows.forEach((r) => r.dispose());
  }
}

function scoresOf(model: ResNet, images: torch.Tensor): torch.Tensor {
  const { output } = model.forwardHead(model.forwardBackbone(images));
  const scores = Array.isArray(output) ? output[0] : output;
  if (!scores) throw new Error('serve: this model has no prototypes (model.nmb_prototypes)');
  return scores;
}

function mostUsed(picks: number[]): Gallery['prototypes'] {
  const byPrototype = new Map<number, number[]>();
  picks.forEach((k, i) => byPrototype.set(k, [...(byPrototype.get(k) ?? []), i]));
  return [...byPrototype.entries()].sort((a, b) => b[1].length - a[1].length).slice(0, TOP)
    .map(([prototype, images]) => ({ prototype, count: images.length, images: images.slice(0, PER_PROTOTYPE) }));
}

/** One training image as a PNG thumbnail; `index` must be one the gallery shows. */
export async function thumbnail(dataset: Dataset, index: number): Promise<Buffer> {
  if (dataset.kind === 'files') return sharp(dataset.files[index]).resize(96, 96, { fit: 'cover' }).png().toBuffer();
  const [, channels, height, width] = dataset.images.shape;
  const pixels = torch.tidy(() => dataset.images.narrow(0, index, 1).squeeze(0).permute([1, 2, 0]).contiguous().toTypedArray());
  return sharp(Buffer.from(pixels.buffer, pixels.byteOffset, pixels.byteLength), { raw: { width, height, channels: channels as 1 | 3 } })
    .resize(Math.max(48, width), null, { kernel: 'nearest' }).png().toBuffer();
}
