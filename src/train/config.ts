// The training configuration: YAML, grouped, with the reference scripts' argument names and defaults (main_swav.py,
// main_deepclusterv2.py; SeLa-v2 has no released script). One zod schema says everything (each method's own section
// is written in its module): each key's type, range, default and
// description; the Config type is inferred from it, and configReference() (`swav train --help`) is written from it.
// `method` picks the method, and with it the one method section allowed beside the shared ones. Every key is checked:
// an unknown or ill-typed one is an error that names its path.
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { DATASET_TYPES } from '../data/datasets.js';
import { architectures, type Architecture } from '../models/resnet.js';
import { list, section } from '../methods/schema.js';
import { swavSection as swav } from '../methods/swav.js';
import { deepclusterv2Section as deepclusterv2 } from '../methods/deepclusterv2.js';
import { selav2Section as selav2 } from '../methods/selav2.js';

export class ConfigError extends Error {}

const data = section('the training data', {
  type: z
    .enum(DATASET_TYPES)
    .default('folder')
    .describe('folder (class subfolders or flat), filelist, fashion-mnist, mnist, idx, cifar10, cifar100, stl10'),
  path: z.string().nullable().default(null).describe('where the data is (required: here or with --data PATH)'),
  split: z.string().default('train').describe('the training split (stl10: unlabeled for pretraining)'),
  eval_train_split: z.string().default('train').describe('kNN memory bank split'),
  eval_split: z.string().default('test').describe('kNN evaluation split'),
  workers: z.int().min(0).default(0).describe('decode workers for image files (0: one per core)'),
  corrupt_images: z.enum(['skip', 'fail']).default('skip').describe('a corrupt image is skipped with a warning, or ends the run'),
  prefetch: z
    .boolean()
    .default(true)
    .describe(
      "in-memory datasets: the next batch's crops are made in a worker thread while the current batch trains (false: each when it is needed)",
    ),
});

const crops = section('multi-crop augmentation', {
  nmb_crops: list(z.int().min(1)).default([2]).describe('crops per resolution group'),
  size_crops: list(z.int().min(1)).default([224]).describe('crop size of each group'),
  min_scale_crops: list(z.number().min(0).max(1)).default([0.14]).describe('RandomResizedCrop scale, lower bound, per group'),
  max_scale_crops: list(z.number().min(0).max(1)).default([1]).describe('RandomResizedCrop scale, upper bound, per group'),
  flip_p: z.number().min(0).max(1).default(0.5).describe('horizontal flip probability'),
  jitter_p: z.number().min(0).max(1).default(0.8).describe('color jitter probability'),
  jitter_strength: z.number().min(0).default(1.0).describe('s of ColorJitter(0.8s, 0.8s, 0.8s, 0.2s)'),
  grayscale_p: z.number().min(0).max(1).default(0.2).describe('random grayscale probability'),
  blur_p: z.number().min(0).max(1).default(0.5).describe('Gaussian blur probability'),
  blur_radius: list(z.number().min(0)).default([0.1, 2.0]).describe('Gaussian blur radius range [min, max]'),
  mean: list(z.number()).default([0.485, 0.456, 0.406]).describe('normalization mean per channel'),
  std: list(z.number()).default([0.228, 0.224, 0.225]).describe('normalization std per channel (SwAV: 0.228 for red)'),
});

/** The model section; only nmb_prototypes' default depends on the method. */
const model = (prototypes: number | number[]) =>
  section('the network: trunk, projection head, prototypes', {
    arch: z
      .enum(Object.keys(architectures) as [Architecture, ...Architecture[]])
      .default('resnet50')
      .describe('trunk architecture'),
    stem: z
      .enum(['imagenet', 'small'])
      .default('imagenet')
      .describe('imagenet: 7x7/2 conv + max-pool; small: 3x3/1 conv (28-32 px images)'),
    stem_stride: z.int().min(1).default(1).describe("stride of the small stem's conv (2: every stage at half resolution)"),
    width: z.int().min(1).nullable().default(null).describe('channels after the stem (null: 64, or 64 x widen)'),
    in_channels: z.int().min(1).default(3).describe('input channels (1 for grayscale data)'),
    hidden_mlp: z.int().min(0).default(2048).describe('projection head hidden width (0: one Linear)'),
    feat_dim: z.int().min(1).default(128).describe('projection output size'),
    nmb_prototypes: z
      .union([z.int().min(1), z.array(z.int().min(1)).min(1)], { error: 'must be an integer or a list of integers' })
      .default(prototypes)
      .describe('prototypes of each head: a number (one head), or a list (one head per number; deepclusterv2, selav2)'),
    sync_bn: z.boolean().default(false).describe('several processes: BatchNorm statistics over the group (SyncBatchNorm), not per process'),
    sync_bn_group_size: z.int().min(0).default(0).describe('processes per SyncBatchNorm group (0: the whole world)'),
  });

const optim = section('the optimizer and its schedule', {
  epochs: z
    .union([z.int().min(1), z.literal('auto')], { error: "must be a positive integer or 'auto'" })
    .default(100)
    .describe(
      'training epochs; auto: as many as fit in run.budget_minutes, measured on the first iterations (the decision is kept in the checkpoint)',
    ),
  batch_size: z.int().min(2).default(64).describe('samples per iteration'),
  base_lr: z.number().min(0).default(4.8).describe('learning rate after warmup'),
  final_lr: z.number().min(0).default(0).describe('learning rate at the end of the cosine'),
  warmup_epochs: z.int().min(0).default(10).describe('linear warmup epochs'),
  start_warmup: z.number().min(0).default(0).describe('learning rate at the start of warmup'),
  wd: z.number().min(0).default(1e-6).describe('weight decay'),
  momentum: z.number().min(0).default(0.9).describe('SGD momentum'),
  larc: z.boolean().default(true).describe('wrap SGD in LARC (trust 0.001, no clipping) as SwAV does'),
  trust_coefficient: z.number().min(0).default(0.001).describe('LARC trust coefficient'),
});

const run = section('where, on what and for how long; the evaluation', {
  out: z.string().default('runs/swav').describe('run directory (checkpoints, metrics.jsonl); training resumes from it'),
  device: z.string().default('cpu').describe("'cpu', 'cuda' or 'cuda:N'"),
  amp: z
    .enum(['auto', 'fp32', 'bf16', 'fp16'])
    .default('auto')
    .describe('autocast precision of the forward; auto: bf16 on a CPU with native bf16, else fp32'),
  channels_last: z.boolean().default(true).describe('channels_last layout for the trunk'),
  threads: z.int().min(0).default(0).describe('libtorch threads (0: OMP_NUM_THREADS, else the cores / processes on this machine)'),
  dist_backend: z
    .enum(['auto', 'gloo', 'nccl'])
    .default('auto')
    .describe('several processes (swav launch, torchrun, srun): the c10d backend; auto: gloo (the addon does not build NCCL yet)'),
  dist_timeout: z.number().min(1).default(1800).describe('seconds a collective may wait for the other processes'),
  seed: z.int().min(0).default(31).describe('random seed'),
  log_every: z.int().min(1).default(20).describe('iterations between metrics lines'),
  budget_minutes: z
    .number()
    .min(0)
    .default(0)
    .describe(
      'with optim.epochs: auto, the minutes the whole schedule is fitted into (setup and preparation included, the evaluation after it not)',
    ),
  max_minutes: z.number().min(0).default(0).describe('stop training (checkpoint, then evaluate) after this long; 0: no limit'),
  stop_after_epochs: z
    .int()
    .min(0)
    .default(0)
    .describe('stop (with a checkpoint) after this many epochs of this invocation; run again to go on'),
  tensorboard: z
    .boolean()
    .default(true)
    .describe("TensorBoard event files in the run directory (the metrics as scalars, the prototype usage, the first batch's crops)"),
  knn_eval: z.boolean().default(false).describe('evaluate with kNN on the eval split after training'),
  knn_every: z.int().min(0).default(0).describe('also evaluate with kNN every this many epochs during training (0: never)'),
  knn_k: z.int().min(1).default(200).describe('kNN neighbours'),
  knn_temperature: z.number().min(0).default(0.1).describe('kNN vote temperature'),
  linear_eval: z
    .boolean()
    .default(false)
    .describe('after the final kNN (run.knn_eval), a linear probe on the same cached features: swav eval linear --cached-features'),
  linear_epochs: z.int().min(1).default(100).describe('epochs of that probe'),
});

const METHOD_DOC = 'the training method; its options are in the section of its name, and only that method section is allowed';
const heads = [3000, 3000, 3000];

/** One object schema per method: the shared sections and that method's own. */
const branches = {
  swav: z.strictObject({
    method: z.literal('swav').default('swav').describe(METHOD_DOC),
    data,
    crops,
    model: model(3000),
    swav,
    optim,
    run,
  }),
  deepclusterv2: z.strictObject({ method: z.literal('deepclusterv2'), data, crops, model: model(heads), deepclusterv2, optim, run }),
  selav2: z.strictObject({ method: z.literal('selav2'), data, crops, model: model(heads), selav2, optim, run }),
};

/** The whole configuration, its method told by `method` (swav when not given). */
export const configSchema = z.discriminatedUnion('method', [branches.swav, branches.deepclusterv2, branches.selav2]);

/** The validated configuration: narrowing on `c.method` gives that method's section (`c.swav`, `c.deepclusterv2`, `c.selav2`). */
export type Config = z.output<typeof configSchema>;
export type MethodName = Config['method'];
export type ConfigOf<M extends MethodName> = Extract<Config, { method: M }>;
export const METHOD_NAMES = ['swav', 'deepclusterv2', 'selav2'] as const satisfies readonly MethodName[];

const branchOf = (m: MethodName) => branches[m];
const methodLabel: Record<MethodName, string> = { swav: 'SwAV', deepclusterv2: 'DeepCluster-v2', selav2: 'SeLa-v2' };

/** The options of the configured method: its section (c.swav, c.deepclusterv2 or c.selav2). */
export function methodOptions(
  c: Config,
): ConfigOf<'swav'>['swav'] | ConfigOf<'deepclusterv2'>['deepclusterv2'] | ConfigOf<'selav2'>['selav2'] {
  switch (c.method) {
    case 'swav':
      return c.swav;
    case 'deepclusterv2':
      return c.deepclusterv2;
    case 'selav2':
      return c.selav2;
  }
}

function closest(word: string, options: string[]): string | null {
  const dist = (a: string, b: string) => {
    const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array(b.length).fill(0)]);
    for (let j = 1; j <= b.length; j++) d[0][j] = j;
    for (let i = 1; i <= a.length; i++) {
      for (let j = 1; j <= b.length; j++)
        d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    return d[a.length][b.length];
  };
  const prefix = options.find((o) => word.startsWith(o) || o.startsWith(word));
  if (prefix) return prefix;
  const best = options.map((o) => [o, dist(word, o)] as const).sort((x, y) => x[1] - y[1])[0];
  return best && best[1] <= Math.max(2, word.length / 3) ? best[0] : null;
}

// ---- reading the schema ----

/** The schema under the wrappers (default, nullable, the preprocess of lists and sections). */
function bare(s: z.ZodType): z.ZodType {
  for (;;) {
    if (s instanceof z.ZodDefault || s instanceof z.ZodNullable || s instanceof z.ZodOptional) s = s.unwrap() as z.ZodType;
    else if (s instanceof z.ZodPipe) s = s.out as z.ZodType;
    else return s;
  }
}

/** The schema of the value at `path`, if the schema has one. */
function schemaAt(s: z.ZodType, path: readonly PropertyKey[]): z.ZodType | undefined {
  s = bare(s);
  if (!path.length) return s;
  const [p, ...rest] = path;
  if (s instanceof z.ZodObject && typeof p === 'string') return p in s.shape ? schemaAt(s.shape[p] as z.ZodType, rest) : undefined;
  if (s instanceof z.ZodArray && typeof p === 'number') return schemaAt(s.element as z.ZodType, rest);
  if (s instanceof z.ZodUnion) {
    for (const o of s.options) {
      const r = schemaAt(o as z.ZodType, path);
      if (r) return r;
    }
  }
  return undefined;
}

const keysOf = (branch: z.ZodType, sec: string): string[] => {
  const s = schemaAt(branch, [sec]);
  return s instanceof z.ZodObject ? Object.keys(s.shape) : [];
};

// ---- zod issues as our messages ----

/** A value from the file in a message: as JSON, cut short. */
function shown(v: unknown): string {
  if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
  let s: string | undefined;
  try {
    s = JSON.stringify(v);
  } catch {
    // YAML's only way to a value JSON cannot write: an alias inside its own anchor
    return 'a value that contains itself (an alias inside its own anchor)';
  }
  if (s === undefined) return String(v);
  return s.length > 80 ? `${s.slice(0, 76)} ...` : s;
}
const pathText = (path: readonly PropertyKey[]) =>
  path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i ? `.${String(p)}` : String(p))).join('');
const kind: Record<string, string> = {
  number: 'a number',
  int: 'an integer',
  string: 'a string',
  boolean: 'true or false',
  array: 'a list of numbers',
  object: 'a mapping',
};

function unknownKey(path: readonly PropertyKey[], key: string, method: MethodName): string {
  const branch = branchOf(method);
  const sections = Object.keys(branch.shape).filter((s) => s !== 'method');
  if (!path.length) {
    if ((METHOD_NAMES as readonly string[]).includes(key)) {
      return `${key}: options of method ${key}, but method is ${method} (set method: ${key}, or move them to the ${method} section)`;
    }
    const hint = closest(key, ['method', ...sections, ...METHOD_NAMES.filter((m) => m !== method)]);
    return `${key}: unknown section${hint ? ` (did you mean '${hint}'?)` : ''}; sections: ${sections.join(', ')} (and the key method)`;
  }
  const sec = String(path[0]);
  const keys = keysOf(branch, sec);
  const where = `${pathText(path)}.${key}`;
  const otherMethods = METHOD_NAMES.filter((m) => m !== method && keysOf(branchOf(m), m).includes(key)).sort();
  const elsewhere = sections.filter((s) => s !== sec && keysOf(branch, s).includes(key));
  const near = closest(key, keys);
  let hint = '';
  if (sec === method && otherMethods.length) hint = ` (${key} is an option of ${otherMethods.join(', ')})`;
  else if (near) hint = ` (did you mean '${sec}.${near}'?)`;
  else if (elsewhere.length) hint = ` (did you mean '${elsewhere[0]}.${key}'?)`;
  else if (otherMethods.length) hint = ` (${key} is an option of ${otherMethods.join(', ')})`;
  return `${where}: unknown key${hint}; keys of ${sec}: ${keys.join(', ')}`;
}

function issueMessage(issue: z.core.$ZodIssue, method: MethodName): string {
  const where = pathText(issue.path);
  const got = `got ${shown(issue.input)}`;
  switch (issue.code) {
    case 'unrecognized_keys':
      return unknownKey(issue.path, issue.keys[0], method);
    case 'invalid_type': {
      if (issue.input === null) return `${where}: must not be empty`;
      const s = schemaAt(branchOf(method), issue.path);
      const expected: string = s instanceof z.ZodNumber && s.isInt ? 'int' : issue.expected; // z.int() expects a 'number' first
      if (expected === 'object') return `${where}: must be a mapping`;
      return `${where}: must be ${kind[expected] ?? expected}, ${got}`;
    }
    case 'too_small':
      if (issue.origin === 'array') return `${where}: must be a list of numbers, ${got}`;
      return `${where}: must be ${issue.inclusive === false ? 'more than' : 'at least'} ${issue.minimum}, ${got}`;
    case 'too_big':
      if (issue.origin === 'array') return `${where}: must have at most ${issue.maximum} values, ${got}`;
      return `${where}: must be ${issue.inclusive === false ? 'less than' : 'at most'} ${issue.maximum}, ${got}`;
    case 'invalid_value':
      return `${where}: must be one of ${issue.values.map((v) => String(v)).join(', ')}, ${got}`;
    case 'invalid_union': {
      if (issue.input === null) return `${where}: must not be empty`;
      // the option whose type matched (its issues are not a type mismatch of the whole value) says what is wrong inside
      const mismatch = (e: z.core.$ZodIssue) => e.path.length === 0 && (e.code === 'invalid_type' || e.code === 'invalid_value');
      const inside = issue.errors.find((e) => e.length && !mismatch(e[0]));
      if (inside) return issueMessage({ ...inside[0], path: [...issue.path, ...inside[0].path] } as z.core.$ZodIssue, method);
      return `${where}: ${issue.message}, ${got}`;
    }
    default:
      return `${where}: ${issue.message}`;
  }
}

/** The issue a reader should see first: unknown sections, then section by section (unknown keys first), in schema order. */
function firstIssue(issues: readonly z.core.$ZodIssue[], method: MethodName): z.core.$ZodIssue {
  const order = Object.keys(branchOf(method).shape);
  const rank = (i: z.core.$ZodIssue) => [i.path.length ? order.indexOf(String(i.path[0])) : -1, i.code === 'unrecognized_keys' ? 0 : 1];
  return issues
    .map((issue, n) => ({ issue, key: [...rank(issue), n] }))
    .sort((a, b) => a.key[0] - b.key[0] || a.key[1] - b.key[1] || a.key[2] - b.key[2])[0].issue;
}

/** Validates a parsed config object, filling defaults; errors name the offending key's path. */
export function validateConfig(raw: unknown, source = 'config'): Config {
  const top: unknown = raw ?? {};
  if (typeof top !== 'object' || Array.isArray(top)) throw new ConfigError(`${source}: the top level must be a mapping of sections`);
  const given = (top as Record<string, unknown>).method;
  if (given !== undefined && !(METHOD_NAMES as readonly unknown[]).includes(given)) {
    throw new ConfigError(`method: must be one of ${METHOD_NAMES.join(', ')}, got ${shown(given)}`);
  }
  const method = (given ?? 'swav') as MethodName;
  const parsed = configSchema.safeParse(top, { reportInput: true });
  if (!parsed.success) throw new ConfigError(issueMessage(firstIssue(parsed.error.issues, method), method));
  const c = parsed.data;
  const groups = c.crops.nmb_crops.length;
  for (const k of ['size_crops', 'min_scale_crops', 'max_scale_crops'] as const) {
    if (c.crops[k].length !== groups)
      throw new ConfigError(`crops.${k}: needs one value per group of crops.nmb_crops (${groups}), got ${c.crops[k].length}`);
  }
  c.crops.min_scale_crops.forEach((m, i) => {
    if (m > c.crops.max_scale_crops[i]) throw new ConfigError(`crops.min_scale_crops[${i}]: ${m} exceeds crops.max_scale_crops[${i}]`);
  });
  const total = c.crops.nmb_crops.reduce((a, b) => a + b, 0);
  if (total < 2) throw new ConfigError(`crops.nmb_crops: ${methodLabel[c.method]} needs at least 2 crops`);
  for (const [i, a] of methodOptions(c).crops_for_assign.entries()) {
    if (a >= total) throw new ConfigError(`${c.method}.crops_for_assign[${i}]: crop ${a} does not exist (${total} crops)`);
  }
  if (c.method === 'swav' && Array.isArray(c.model.nmb_prototypes)) {
    throw new ConfigError(`model.nmb_prototypes: SwAV trains one prototype head: give a number, got ${shown(c.model.nmb_prototypes)}`);
  }
  if (c.crops.blur_radius.length !== 2) throw new ConfigError('crops.blur_radius: needs [min, max]');
  if (c.optim.epochs === 'auto') {
    if (!(c.run.budget_minutes > 0))
      throw new ConfigError(
        'optim.epochs: auto fits the schedule into run.budget_minutes: set run.budget_minutes (e.g. 10), or give optim.epochs a number',
      );
  } else if (c.optim.warmup_epochs > c.optim.epochs) {
    throw new ConfigError(`optim.warmup_epochs: ${c.optim.warmup_epochs} exceeds optim.epochs`);
  }
  if (!c.data.path) throw new ConfigError('data.path: where is the training data? (set it in the config, or pass --data PATH)');
  return c;
}

/** key=value overrides (dotted paths, YAML values): optim.epochs=2 crops.nmb_crops=[2,4] method=selav2. */
export function applyOverrides(raw: Record<string, any>, overrides: string[]): Record<string, any> {
  for (const o of overrides) {
    const eq = o.indexOf('=');
    if (eq < 0) throw new ConfigError(`override '${o}': expected section.key=value`);
    const path = o.slice(0, eq).split('.');
    const value = parseYaml(o.slice(eq + 1));
    if (path.length === 1 && path[0] === 'method') {
      raw.method = value;
      continue;
    }
    if (path.length !== 2) throw new ConfigError(`override '${o}': expected section.key=value`);
    const [s, k] = path;
    raw[s] = raw[s] ?? {};
    if (typeof raw[s] !== 'object' || Array.isArray(raw[s])) throw new ConfigError(`override '${o}': ${s}: must be a mapping`);
    raw[s][k] = value;
  }
  return raw;
}

export function loadConfig(path: string, overrides: string[] = []): Config {
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(path, 'utf8'));
  } catch (e) {
    // the yaml package's message runs on with the offending lines and a caret: its first line says where
    throw new ConfigError(`${path}: ${(e as Error).message.split('\n')[0].replace(/:$/, '')} (not valid YAML)`);
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

// ---- the reference, from the schema ----

const valueText = (v: unknown): string => (Array.isArray(v) ? `[${v.map(valueText).join(', ')}]` : typeof v === 'string' ? v : String(v));

function typeText(s: z.ZodType): string {
  if (s instanceof z.ZodDefault || s instanceof z.ZodOptional) return typeText(s.unwrap() as z.ZodType);
  if (s instanceof z.ZodNullable) return `${typeText(s.unwrap() as z.ZodType)}, or null`;
  if (s instanceof z.ZodPipe) return typeText(s.out as z.ZodType);
  if (s instanceof z.ZodNumber) {
    const finite = (x: number | null) => x !== null && Number.isFinite(x) && Math.abs(x) < Number.MAX_SAFE_INTEGER;
    const [lo, hi] = [s.minValue, s.maxValue];
    const range = finite(lo) && finite(hi) ? ` in [${lo}, ${hi}]` : finite(lo) ? ` >= ${lo}` : finite(hi) ? ` <= ${hi}` : '';
    return `${s.isInt ? 'integer' : 'number'}${range}`;
  }
  if (s instanceof z.ZodArray) {
    const item = typeText(s.element as z.ZodType);
    return /^(number|integer)$/.test(item) ? `list of ${item}s` : `list of (${item})`;
  }
  if (s instanceof z.ZodUnion) return s.options.map((o) => typeText(o as z.ZodType)).join(', or ');
  if (s instanceof z.ZodEnum) return s.options.join(' | ');
  if (s instanceof z.ZodLiteral) return s.values.size > 1 ? [...s.values].map(String).join(' | ') : String(s.value);
  if (s instanceof z.ZodBoolean) return 'true | false';
  if (s instanceof z.ZodString) return 'string';
  return s.type;
}

/** The schema of a key as written in its section (with its default and description). */
const fieldOf = (m: MethodName, sec: string, key: string) =>
  (bare((branchOf(m).shape as Record<string, z.ZodType>)[sec]) as z.ZodObject).shape[key] as z.ZodType;

function defaultOf(s: z.ZodType): unknown {
  while (!(s instanceof z.ZodDefault)) {
    if (s instanceof z.ZodPipe) s = s.in as z.ZodType;
    else return undefined;
  }
  return s.def.defaultValue;
}

/** Every section and key of the configuration, with its type, default and description (plain text). */
export function configReference(): string {
  const out: string[] = [
    'configuration (YAML): the top-level key method, then sections of keys; every key is optional, with the default shown.',
    'A list of numbers may be given as one number (a one-element list). On the command line: section.key=value, method=NAME.',
    '',
    `method: ${METHOD_NAMES.join(' | ')} (default: ${valueText(defaultOf(branchOf('swav').shape.method))})`,
    `    ${branchOf('swav').shape.method.description}`,
  ];
  const field = (path: string, s: z.ZodType, def: string) => {
    out.push(`  ${path}: ${typeText(s)} (default: ${def})`, `      ${s.description ?? ''}`);
  };
  for (const name of Object.keys(branchOf('swav').shape)) {
    if (name === 'method') continue;
    if (name === 'swav') {
      // the method sections, each in its place
      for (const m of METHOD_NAMES) {
        const sec = (branchOf(m).shape as Record<string, z.ZodType>)[m];
        out.push('', `${m} (method: ${m} only): ${sec.description}`);
        for (const [key, s] of Object.entries((bare(sec) as z.ZodObject).shape))
          field(`${m}.${key}`, s as z.ZodType, valueText(defaultOf(s as z.ZodType)));
      }
      continue;
    }
    const sec = (branchOf('swav').shape as Record<string, z.ZodType>)[name];
    out.push('', `${name}: ${sec.description}`);
    for (const [key, s] of Object.entries((bare(sec) as z.ZodObject).shape)) {
      // a default that depends on the method is given per method
      const defaults = METHOD_NAMES.map((m) => valueText(defaultOf(fieldOf(m, name, key))));
      const def = defaults.every((d) => d === defaults[0])
        ? defaults[0]
        : [...new Set(defaults)].map((d) => `${d} (${METHOD_NAMES.filter((_, i) => defaults[i] === d).join(', ')})`).join('; ');
      field(`${name}.${key}`, s as z.ZodType, def);
    }
  }
  return `${out.join('\n')}\n`;
}
