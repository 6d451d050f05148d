// From whatever a checkpoint holds to the names our models use: the state dict found inside training
// checkpoints and VISSL's nested ones, DDP's "module." and VISSL's trunk prefixes removed, trunk / projection
// head / prototypes separated, and the architecture read off the shapes.
import { Tensor } from '../torch/tensor.js';
import type { Architecture, ResNetOptions } from '../models/resnet.js';

export type Named = Map<string, Tensor>;

const isTensorDict = (v: unknown): v is Record<string, unknown> =>
  v !== null &&
  typeof v === 'object' &&
  !(v instanceof Tensor) &&
  !Array.isArray(v) &&
  Object.values(v as object).some((x) => x instanceof Tensor);

const entriesOf = (v: unknown): [string, unknown][] =>
  v instanceof Map ? [...v].map(([k, x]) => [String(k), x]) : Object.entries(v as object);

/**
 * The model weights inside a loaded checkpoint: a flat state dict as is; {state_dict | model | teacher: ...}
 * training checkpoints; VISSL's classy_state_dict.base_model.model.{trunk, heads}. Only tensors are kept.
 */
export function findStateDict(obj: unknown): Named {
  if (obj === null || typeof obj !== 'object') throw new Error('the checkpoint holds no tensors');
  const o = obj as Record<string, any>;
  const vissl = o.classy_state_dict?.base_model?.model;
  if (vissl && typeof vissl === 'object') {
    const out: Named = new Map();
    for (const [part, dict] of entriesOf(vissl)) {
      for (const [k, v] of entriesOf(dict)) if (v instanceof Tensor) out.set(`${part}.${k}`, v);
    }
    return out;
  }
  for (const key of ['state_dict', 'model', 'model_state_dict', 'teacher', 'student']) {
    if (isTensorDict(o[key])) return findStateDict(o[key]);
  }
  const out: Named = new Map();
  for (const [k, v] of entriesOf(obj)) if (v instanceof Tensor) out.set(k, v);
  if (!out.size)
    throw new Error(
      `the checkpoint holds no tensors at its top level (keys: ${entriesOf(obj)
        .map(([k]) => k)
        .slice(0, 8)
        .join(', ')})`,
    );
  return out;
}

/** Removes `prefix` from the keys that start with it. */
export function stripPrefix(sd: Named, prefix: string): Named {
  return new Map([...sd].map(([k, v]) => [k.startsWith(prefix) ? k.slice(prefix.length) : k, v]));
}

/**
 * Our (torchvision / SwAV) names: "module." (DDP) removed; VISSL's trunk prefixes removed and its SwAV head
 * (heads.0.projection_head.*, heads.0.prototypesN.*) renamed as SwAV names it.
 */
export function canonicalize(sd: Named): Named {
  let out = stripPrefix(sd, 'module.');
  for (const p of ['trunk.base_model._feature_blocks.', 'trunk._feature_blocks.', '_feature_blocks.', 'trunk.']) out = stripPrefix(out, p);
  const heads = [...out.keys()].filter((k) => /^heads\.0\.prototypes\d+\./.test(k));
  const single = new Set(heads.map((k) => k.split('.')[2])).size === 1;
  return new Map(
    [...out].map(([k, v]) => {
      if (k.startsWith('heads.0.projection_head.')) return [k.slice('heads.0.'.length), v];
      const m = /^heads\.0\.(prototypes\d+)\.(.*)$/.exec(k);
      if (m) return [single ? `prototypes.${m[2]}` : `prototypes.${m[1]}.${m[2]}`, v];
      return [k, v];
    }),
  );
}

/** The trunk's weights, the projection head's and the prototypes', apart (other keys, such as fc, dropped). */
export function splitSwAV(sd: Named): { trunk: Named; projectionHead: Named; prototypes: Named } {
  const trunk: Named = new Map();
  const projectionHead: Named = new Map();
  const prototypes: Named = new Map();
  for (const [k, v] of sd) {
    if (k.startsWith('projection_head.')) projectionHead.set(k, v);
    else if (k.startsWith('prototypes.')) prototypes.set(k, v);
    else if (!k.startsWith('fc.')) trunk.set(k, v);
  }
  return { trunk, projectionHead, prototypes };
}

/** The head options (hiddenMlp, outputDim, nmbPrototypes) that fit the head weights found. */
export function headOptions(sd: Named): Pick<ResNetOptions, 'hiddenMlp' | 'outputDim' | 'nmbPrototypes' | 'normalize'> {
  const o: Pick<ResNetOptions, 'hiddenMlp' | 'outputDim' | 'nmbPrototypes' | 'normalize'> = {};
  const last = sd.get('projection_head.3.weight');
  if (last) {
    o.hiddenMlp = last.shape[1];
    o.outputDim = last.shape[0];
  } else if (sd.get('projection_head.weight')) {
    o.outputDim = sd.get('projection_head.weight')!.shape[0];
  }
  if (o.outputDim) o.normalize = true;
  const single = sd.get('prototypes.weight');
  if (single) o.nmbPrototypes = single.shape[0];
  const multi = [...sd.keys()]
    .filter((k) => /^prototypes\.prototypes\d+\.weight$/.test(k))
    .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  if (multi.length) o.nmbPrototypes = multi.map((k) => sd.get(k)!.shape[0]);
  return o;
}

/** Which ResNet a trunk state dict belongs to, read off its shapes (or null when it is none of ours). */
export function inferArchitecture(sd: Named): Architecture | null {
  const conv1 = sd.get('conv1.weight');
  if (conv1?.ndim !== 4) return null;
  const bottleneck = sd.has('layer1.0.conv3.weight');
  const blocks = [1, 2, 3, 4].map(
    (l) => new Set([...sd.keys()].filter((k) => k.startsWith(`layer${l}.`)).map((k) => k.split('.')[1])).size,
  );
  const layout = blocks.join(',');
  if (!bottleneck) return layout === '2,2,2,2' ? 'resnet18' : layout === '3,4,6,3' ? 'resnet34' : null;
  if (layout !== '3,4,6,3') return null;
  const widen = conv1.shape[0] / 64;
  return ({ 1: 'resnet50', 2: 'resnet50w2', 4: 'resnet50w4', 5: 'resnet50w5' } as Record<number, Architecture>)[widen] ?? null;
}
