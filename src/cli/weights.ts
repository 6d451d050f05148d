// What --weights names, as a model: a run directory or one of our training checkpoints (its config says what it
// is), a checkpoint of another kind (with --arch), or a zoo name (downloaded into the cache).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as torch from '../torch/index.js';
import type { Config } from '../train/config.js';
import { buildModel, CHECKPOINT } from '../train/trainer.js';
import { findModel, modelFromFile } from '../hub/index.js';
import type { Architecture, ResNet } from '../models/resnet.js';
import { UsageError } from './options.js';
import { resolveWeights } from './extract.js';

export interface LoadedWeights {
  model: ResNet;
  /** The training config of one of our checkpoints, else null. */
  config: Config | null;
  /** The file read. */
  path: string;
}

/** The model `weights` names; `what` is the command, for the messages. */
export async function loadWeights(what: string, weights: string, arch?: Architecture): Promise<LoadedWeights> {
  if (!existsSync(weights) && !findModel(weights)) {
    throw new UsageError(`${what}: --weights ${weights} is neither a run directory, a file nor a zoo name (swav hub list)`);
  }
  const runCheckpoint = existsSync(join(weights, CHECKPOINT)) ? join(weights, CHECKPOINT) : null;
  const path = runCheckpoint ?? (existsSync(weights) ? weights : await resolveWeights(weights));
  const ck = torch.load(path);
  try {
    if (typeof ck?.config === 'string') {
      const config = JSON.parse(ck.config) as Config;
      const model = buildModel(config);
      torch.tidy(() => model.loadStateDict(ck.state_dict));
      return { model, config, path };
    }
    if (!arch) throw new UsageError(`${what}: --arch is needed for weights that are not a swav training checkpoint`);
    return { model: modelFromFile(arch, path), config: null, path };
  } finally {
    disposeTensors(ck);
  }
}

/** Every tensor inside a loaded object (maps, arrays, plain objects), disposed. */
export function disposeTensors(v: unknown): void {
  if (v instanceof torch.Tensor) v.dispose();
  else if (v instanceof Map) for (const x of v.values()) disposeTensors(x);
  else if (Array.isArray(v)) v.forEach(disposeTensors);
  else if (v && typeof v === 'object') Object.values(v).forEach(disposeTensors);
}
