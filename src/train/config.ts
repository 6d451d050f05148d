// The training configuration: YAML, grouped, with main_swav.py's argument names and defaults. Every key is
// checked against the schema: an unknown or ill-typed one is an error that names its path.
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { DATASET_TYPES } from '../data/datasets.js';
import { architectures } from '../models/resnet.js';

export class ConfigError extends Error {}

type Scalar = 'int' | 'number' | 'string' | 'bool';
type FieldType = Scalar | 'int[]' | 'number[]' | { enum: readonly string[] };
interface Field { type: FieldType; default: unknown; nullable?: boolean; min?: number; max?: number; doc: string }
type Section = Record<string, Field>;

const f = (type: FieldType, def: unknown, doc: string, extra: Partial<Field> = {}): Field => ({ type, default: def, doc, ...extra });

export const SCHEMA = {
  data: {
    type: f({ enum: DATASET_TYPES }, 'folder', 'folder (class subfolders or flat), filelist, fashion-mnist, mnist, idx, cifar10, cifar100, stl10'),
    path: f('string', null, 'where the data is', { nullable: true }),
    split: f('string', 'train', 'the training split (stl10: unlabeled for pretraining)'),
    eval_train_split: f('string', 'train', 'kNN memory bank split'),
    eval_split: f('string', 'test', 'kNN evaluation split'),
    workers: f('int', 0, 'decode workers for image files (0: one per core)', { min: 0 }),
    corrupt_images: f({ enum: ['skip', 'fail'] }, 'skip', 'a corrupt image is skipped with a warning, or ends the run'),
  },
  crops: {
    nmb_crops: f('int[]', [2], 'crops per resolution group', { min: 1 }),
    size_crops: f('int[]', [224], 'crop size of each group', { min: 1 }),
    min_scale_crops: f('number[]', [0.14], 'RandomResizedCrop scale, lower bound, per group', { min: 0, max: 1 }),
    max_scale_crops: f('number[]', [1], 'RandomResizedCrop scale, upper bound, per group', { min: 0, max: 1 }),
    flip_p: f('number', 0.5, 'horizontal flip probability', { min: 0, max: 1 }),
    jitter_p: f('number', 0.8, 'color jitter probability', { min: 0, max: 1 }),
    jitter_strength: f('number', 1.0, 's of ColorJitter(0.8s, 0.8s, 0.8s, 0.2s)', { min: 0 }),
    grayscale_p: f('number', 0.2, 'random grayscale probability', { min: 0, max: 1 }),
    blur_p: f('number', 0.5, 'Gaussian blur probability', { min: 0, max: 1 }),
    blur_radius: f('number[]', [0.1, 2.0], 'Gaussian blur radius range', { min: 0 }),
    mean: f('number[]', [0.485, 0.456, 0.406], 'normalization mean per channel'),
    std: f('number[]', [0.228, 0.224, 0.225], 'normalization std per channel (SwAV: 0.228 for red)'),
  },
  model: {
    arch: f({ enum: Object.keys(architectures) }, 'resnet50', 'trunk architecture'),
    stem: f({ enum: ['imagenet', 'small'] }, 'imagenet', 'imagenet: 7x7/2 conv + max-pool; small: 3x3/1 conv (28-32 px images)'),
    stem_stride: f('int', 1, "stride of the small stem's conv (2: every stage at half resolution)", { min: 1 }),
    width: f('int', null, 'channels after the stem (default 64, or 64 x widen)', { nullable: true, min: 1 }),
    in_channels: f('int', 3, 'input channels (1 for grayscale data)', { min: 1 }),
    hidden_mlp: f('int', 2048, 'projection head hidden width (0: one Linear)', { min: 0 }),
    feat_dim: f('int', 128, 'projection output size', { min: 1 }),
    nmb_prototypes: f('int', 3000, 'number of prototypes', { min: 1 }),
  },
  swav: {
    crops_for_assign: f('int[]', [0, 1], 'crops whose codes are computed', { min: 0 }),
    temperature: f('number', 0.1, 'softmax temperature', { min: 0 }),
    epsilon: f('number', 0.05, 'Sinkhorn regularization', { min: 0 }),
    sinkhorn_iterations: f('int', 3, 'Sinkhorn iterations', { min: 1 }),
    queue_length: f('int', 0, 'queue length (0: none), rounded down to a multiple of the batch', { min: 0 }),
    epoch_queue_starts: f('int', 15, 'epoch from which the queue is used', { min: 0 }),
    freeze_prototypes_niters: f('int', 313, 'iterations during which the prototypes are not updated', { min: 0 }),
    stable_sinkhorn: f('bool', false, 'subtract the max score before exp (for float16 scores)'),
  },
  optim: {
    epochs: f('int', 100, 'training epochs', { min: 1 }),
    batch_size: f('int', 64, 'samples per iteration', { min: 2 }),
    base_lr: f('number', 4.8, 'learning rate after warmup', { min: 0 }),
    final_lr: f('number', 0, 'learning rate at the end of the cosine', { min: 0 }),
    warmup_epochs: f('int', 10, 'linear warmup epochs', { min: 0 }),
    start_warmup: f('number', 0, 'learning rate at the start of warmup', { min: 0 }),
    wd: f('number', 1e-6, 'weight decay', { min: 0 }),
    momentum: f('number', 0.9, 'SGD momentum', { min: 0 }),
    larc: f('bool', true, 'wrap SGD in LARC (trust 0.001, no clipping) as SwAV does'),
    trust_coefficient: f('number', 0.001, 'LARC trust coefficient', { min: 0 }),
  },
  run: {
    out: f('string', 'runs/swav', 'run directory (checkpoints, metrics.jsonl); training resumes from it'),
    device: f('string', 'cpu', "'cpu', 'cuda' or 'cuda:N'"),
    amp: f({ enum: ['auto', 'fp32', 'bf16', 'fp16'] }, 'auto', "autocast precision of the forward; auto: bf16 on a CPU with native bf16, else fp32"),
    channels_last: f('bool', true, 'channels_last layout for the trunk'),
    threads: f('int', 0, 'libtorch threads (0: OMP_NUM_THREADS, else every core)', { min: 0 }),
    seed: f('int', 31, 'random seed', { min: 0 }),
    log_every: f('int', 20, 'iterations between metrics lines', { min: 1 }),
    max_minutes: f('number', 0, 'stop training (checkpoint, then evaluate) after this long; 0: no limit', { min: 0 }),
    stop_after_epochs: f('int', 0, 'stop (with a checkpoint) after this many epochs of this invocation; run again to go on', { min: 0 }),
    knn_eval: f('bool', false, 'evaluate with kNN on the eval split after training'),
    knn_every: f('int', 0, 'also evaluate with kNN every this many epochs during training (0: never)', { min: 0 }),
    knn_k: f('int', 200, 'kNN neighbours', { min: 1 }),
    knn_temperature: f('number', 0.1, 'kNN vote temperature', { min: 0 }),
  },
} satisfies Record<string, Section>;

/** The validated configuration (see SCHEMA for every key's meaning and default). */
export interface Config {
  data: { type: (typeof DATASET_TYPES)[number]; path: string | null; split: string; eval_train_split: string; eval_split: string;
    workers: number; corrupt_images: 'skip' | 'fail' };
  crops: { nmb_crops: number[]; size_crops: number[]; min_scale_crops: number[]; max_scale_crops: number[]; flip_p: number;
    jitter_p: number; jitter_strength: number; grayscale_p: number; blur_p: number; blur_radius: number[]; mean: number[]; std: number[] };
  model: { arch: keyof typeof architectures; stem: 'imagenet' | 'small'; stem_stride: number; width: number | null; in_channels: number;
    hidden_mlp: number; feat_dim: number; nmb_prototypes: number };
  swav: { crops_for_assign: number[]; temperature: number; epsilon: number; sinkhorn_iterations: number; queue_length: number;
    epoch_queue_starts: number; freeze_prototypes_niters: number; stable_sinkhorn: boolean };
  optim: { epochs: number; batch_size: number; base_lr: number; final_lr: number; warmup_epochs: number; start_warmup: number;
    wd: number; momentum: number; larc: boolean; trust_coefficient: number };
  run: { out: string; device: string; amp: 'auto' | 'fp32' | 'bf16' | 'fp16'; channels_last: boolean; threads: number; seed: number;
    log_every: number; max_minutes: number; stop_after_epochs: number; knn_eval: boolean; knn_every: number; knn_k: number; knn_temperature: number };
}

function closest(word: string, options: string[]): string | null {
  const dist = (a: string, b: string) => {
    const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array(b.length).fill(0)]);
    for (let j = 1; j <= b.length; j++) d[0][j] = j;
    for (let i = 1; i <= a.length; i++) {
      for (let j = 1; j <= b.length; j++) d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    return d[a.length][b.length];
  };
  const prefix = options.find((o) => word.startsWith(o) || o.startsWith(word));
  if (prefix) return prefix;
  const best = options.map((o) => [o, dist(word, o)] as const).sort((x, y) => x[1] - y[1])[0];
  return best && best[1] <= Math.max(2, word.length / 3) ? best[0] : null;
}

function checkField(path: string, field: Field, v: unknown): unknown {
  if (v === null) {
    if (field.nullable) return null;
    throw new ConfigError(`${path}: must not be empty`);
  }
  const t = field.type;
  const range = (n: number) => {
    if (field.min !== undefined && n < field.min) throw new ConfigError(`${path}: must be at least ${field.min}, got ${n}`);
    if (field.max !== undefined && n > field.max) throw new ConfigError(`${path}: must be at most ${field.max}, got ${n}`);
    return n;
  };
  const shown = JSON.stringify(v);
  if (typeof t === 'object') {
    if (typeof v !== 'string' || !t.enum.includes(v)) throw new ConfigError(`${path}: must be one of ${t.enum.join(', ')}, got ${shown}`);
    return v;
  }
  switch (t) {
    case 'int':
      if (typeof v !== 'number' || !Number.isInteger(v)) throw new ConfigError(`${path}: must be an integer, got ${shown}`);
      return range(v);
    case 'number':
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new ConfigError(`${path}: must be a number, got ${shown}`);
      return range(v);
    case 'string':
      if (typeof v !== 'string') throw new ConfigError(`${path}: must be a string, got ${shown}`);
      return v;
    case 'bool':
      if (typeof v !== 'boolean') throw new ConfigError(`${path}: must be true or false, got ${shown}`);
      return v;
    case 'int[]': case 'number[]': {
      const list = typeof v === 'number' ? [v] : v;
      if (!Array.isArray(list) || !list.length) throw new ConfigError(`${path}: must be a list of numbers, got ${shown}`);
      return list.map((x, i) => checkField(`${path}[${i}]`, { ...field, type: t === 'int[]' ? 'int' : 'number' }, x));
    }
  }
}

/** Validates a parsed config object, filling defaults; errors name the offending key's path. */
export function validateConfig(raw: unknown, source = 'config'): Config {
  if (raw === null || raw === undefined) raw = {};
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError(`${source}: the top level must be a mapping of sections`);
  const sections = Object.keys(SCHEMA);
  for (const key of Object.keys(raw as object)) {
    if (!sections.includes(key)) {
      const hint = closest(key, sections);
      throw new ConfigError(`${key}: unknown section${hint ? ` (did you mean '${hint}'?)` : ''}; sections: ${sections.join(', ')}`);
    }
  }
  const out: Record<string, Record<string, unknown>> = {};
  for (const [name, section] of Object.entries(SCHEMA) as [string, Section][]) {
    const given = (raw as Record<string, unknown>)[name] ?? {};
    if (typeof given !== 'object' || Array.isArray(given)) throw new ConfigError(`${name}: must be a mapping`);
    for (const key of Object.keys(given as object)) {
      if (!(key in section)) {
        const hint = closest(key, Object.keys(section));
        throw new ConfigError(`${name}.${key}: unknown key${hint ? ` (did you mean '${name}.${hint}'?)` : ''}; ` +
          `keys of ${name}: ${Object.keys(section).join(', ')}`);
      }
    }
    out[name] = {};
    for (const [key, field] of Object.entries(section)) {
      const v = (given as Record<string, unknown>)[key];
      out[name][key] = v === undefined ? structuredClone(field.default) : checkField(`${name}.${key}`, field, v);
    }
  }
  const c = out as unknown as Config;
  const groups = c.crops.nmb_crops.length;
  for (const k of ['size_crops', 'min_scale_crops', 'max_scale_crops'] as const) {
    if (c.crops[k].length !== groups) throw new ConfigError(`crops.${k}: needs one value per group of crops.nmb_crops (${groups}), got ${c.crops[k].length}`);
  }
  c.crops.min_scale_crops.forEach((m, i) => {
    if (m > c.crops.max_scale_crops[i]) throw new ConfigError(`crops.min_scale_crops[${i}]: ${m} exceeds crops.max_scale_crops[${i}]`);
  });
  const total = c.crops.nmb_crops.reduce((a, b) => a + b, 0);
  if (total < 2) throw new ConfigError('crops.nmb_crops: SwAV needs at least 2 crops');
  for (const [i, a] of c.swav.crops_for_assign.entries()) {
    if (a >= total) throw new ConfigError(`swav.crops_for_assign[${i}]: crop ${a} does not exist (${total} crops)`);
  }
  if (c.crops.blur_radius.length !== 2) throw new ConfigError('crops.blur_radius: needs [min, max]');
  if (c.optim.warmup_epochs > c.optim.epochs) throw new ConfigError(`optim.warmup_epochs: ${c.optim.warmup_epochs} exceeds optim.epochs`);
  if (!c.data.path) throw new ConfigError('data.path: where is the training data? (set it in the config, or pass --data PATH)');
  return c;
}

/** key=value overrides (dotted paths, YAML values): optim.epochs=2 crops.nmb_crops=[2,4]. */
export function applyOverrides(raw: Record<string, any>, overrides: string[]): Record<string, any> {
  for (const o of overrides) {
    const eq = o.indexOf('=');
    if (eq < 0) throw new ConfigError(`override '${o}': expected section.key=value`);
    const path = o.slice(0, eq).split('.');
    if (path.length !== 2) throw new ConfigError(`override '${o}': expected section.key=value`);
    const [s, k] = path;
    raw[s] = raw[s] ?? {};
    raw[s][k] = parseYaml(o.slice(eq + 1));
  }
  return raw;
}

export function loadConfig(path: string, overrides: string[] = []): Config {
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new ConfigError(`${path}: ${(e as Error).message}`);
  }
  raw = raw ?? {};
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError(`${path}: the top level must be a mapping of sections`);
  try {
    return validateConfig(applyOverrides(raw as Record<string, any>, overrides), path);
  } catch (e) {
    if (e instanceof ConfigError) throw new ConfigError(`${path}: ${e.message}`);
    throw e;
  }
}
