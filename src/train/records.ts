// A run's records, written once for both readers: metrics.jsonl (a JSON object per line, with its time) and, with
// run.tensorboard, TensorBoard's event file (the same values as scalars, the prototype usage as a histogram per
// epoch, a grid of the first batch's crops as an image). Rank 0 alone writes.
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/tensor.js';
import { EventWriter } from './tensorboard.js';

export type Record_ = Record<string, unknown>;

/** The scalars of each record type, and the record's step for TensorBoard. */
const SCALARS: Record<string, { step: string; keys: string[] }> = {
  train: { step: 'iteration', keys: ['loss', 'lr', 'samples_per_s', 'data_wait_s', 'prototype_entropy', 'grad_sync_s'] },
  epoch: { step: 'epoch', keys: ['loss', 'seconds', 'skipped_images'] },
  schedule: { step: 'epochs', keys: ['epochs', 'seconds_per_iteration'] },
};

export class RunRecords {
  readonly #file: string;
  readonly #tb: EventWriter | null;
  #pending: Promise<void> = Promise.resolve();

  constructor(dir: string, o: { tensorboard: boolean }) {
    this.#file = join(dir, 'metrics.jsonl');
    this.#tb = o.tensorboard ? new EventWriter(dir) : null;
  }

  /** Appends `m` to metrics.jsonl and its values to the event file. */
  record(m: Record_): void {
    const time = new Date();
    appendFileSync(this.#file, `${JSON.stringify({ ...m, time: time.toISOString() })}\n`);
    if (this.#tb) this.#events(m, time.getTime() / 1000);
  }

  /** A grid of `crops` (one row per sample, crops side by side, un-normalized) as the image `tag`. */
  crops(tag: string, crops: Tensor[], mean: number[], std: number[], step: number): void {
    if (!this.#tb) return;
    const grid = cropGrid(crops, mean, std);
    const tb = this.#tb;
    this.#pending = this.#pending
      .then(async () => {
        const png = await sharp(grid.pixels, { raw: { width: grid.width, height: grid.height, channels: grid.channels as 1 | 3 } })
          .png()
          .toBuffer();
        tb.image(tag, png, grid, step);
      })
      .catch(() => {}); // a picture is not worth failing a run for
  }

  async close(): Promise<void> {
    await this.#pending;
    this.#tb?.close();
  }

  #events(m: Record_, wallTime: number): void {
    const tb = this.#tb!;
    const type = String(m.type);
    const spec = SCALARS[type];
    if (spec) {
      const step = Number(m[spec.step] ?? 0);
      for (const k of spec.keys) if (typeof m[k] === 'number') tb.scalar(`${type}/${k}`, m[k] as number, step, wallTime);
      if (type === 'epoch' && Array.isArray(m.prototype_usage))
        tb.histogram('epoch/prototype_usage', { counts: m.prototype_usage as number[] }, step, wallTime);
    } else if (type === 'eval' && typeof m.value === 'number') {
      tb.scalar(`eval/${String(m.metric)}`, m.value, Number(m.epoch ?? 0), wallTime);
    }
  }
}

/** Up to 8 samples' crops, each scaled to the largest size, side by side: uint8 HWC pixels. */
function cropGrid(crops: Tensor[], mean: number[], std: number[]): { pixels: Buffer; height: number; width: number; channels: number } {
  return torch.tidy(() => {
    const rows = Math.min(8, crops[0].shape[0]);
    const size = Math.max(...crops.map((c) => c.shape[2]));
    const channels = crops[0].shape[1];
    const m = torch.tensor(mean).view(1, -1, 1, 1);
    const s = torch.tensor(std).view(1, -1, 1, 1);
    const tiles = crops.map((c) =>
      torch
        .interpolate(c.narrow(0, 0, rows).float().cpu().contiguous(), [size, size])
        .mul(s)
        .add(m),
    );
    const grid = torch.cat(tiles, 3).clamp(0, 1).mul(255).round().to({ dtype: 'uint8' }); // rows x C x size x (size * crops)
    const hwc = grid
      .permute(0, 2, 3, 1)
      .contiguous()
      .view(rows * size, size * crops.length, channels);
    return { pixels: Buffer.from(hwc.toBytes()), height: rows * size, width: size * crops.length, channels };
  });
}
