// What the methods' iterations share: the autocast forward of the multi-crop batch, and the optimizer step with
// the prototypes left out while they are frozen (main_swav.py and main_deepclusterv2.py set their grads to None).
import { type Tensor, handles } from '../torch/tensor.js';
import { native } from '../torch/native.js';
import { autocast, noGrad } from '../torch/autograd.js';
import { normalize } from '../torch/functional.js';
import { tidy } from '../torch/scope.js';
import type { HeadOutput, ResNet } from '../models/resnet.js';
import type { LARC } from '../optim/larc.js';
import type { SGD } from '../optim/sgd.js';

export type Amp = 'fp32' | 'bf16' | 'fp16';
/** The autocast dtype of each precision name (none for fp32). */
export const AUTOCAST_DTYPE = { fp32: null, bf16: 'bfloat16', fp16: 'float16' } as const;

export interface ForwardContext {
  model: ResNet;
  /** Autocast dtype for the forward, or null for float32. */
  amp: 'bfloat16' | 'float16' | null;
  deviceType: 'cpu' | 'cuda';
}

/** The model on a list of crops, under autocast when asked. */
export function forwardCrops(ctx: ForwardContext, crops: Tensor[]): HeadOutput {
  const forward = () => ctx.model.forwardCrops(crops);
  return ctx.amp ? autocast({ deviceType: ctx.deviceType, dtype: ctx.amp }, forward) : forward();
}

const prototypeParams = new WeakMap<ResNet, Tensor[]>();
/** The prototypes' parameters (cached: looked up once per model, not every step). */
export function prototypesOf(model: ResNet): Tensor[] {
  let ps = prototypeParams.get(model);
  if (!ps) prototypeParams.set(model, (ps = [...model.namedParameters()].filter(([n]) => n.includes('prototypes')).map(([, p]) => p)));
  return ps;
}

/** The weight of each prototype head (one for a single Linear). */
export function prototypeHeads(model: ResNet): Tensor[] {
  const p = model.prototypes;
  if (p === null) return [];
  return 'heads' in p ? p.heads.map((h) => h.weight) : [p.weight];
}

/** L2-normalizes every prototype (each row of each head's weight) in place, before a step, as main_swav.py. */
export function normalizePrototypes(model: ResNet): void {
  noGrad(() =>
    tidy(() => {
      for (const w of prototypeHeads(model)) w.copy_(normalize(w, 2, 1));
    }),
  );
}

/**
 * Backward of `loss`, then one step of the optimizer at learning rate `lr`; the prototypes get no update (their
 * gradients dropped, so no weight decay either) while `iteration` < `freezeNiters`.
 */
export function optimizerStep(
  model: ResNet,
  optimizer: LARC | SGD,
  loss: Tensor,
  lr: number,
  iteration: number,
  freezeNiters: number,
  syncGradients?: () => void,
): void {
  for (const g of optimizer.paramGroups) g.lr = lr;
  optimizer.zeroGrad();
  loss.backward();
  syncGradients?.();
  if (iteration < freezeNiters) native.clearGrads(handles(prototypesOf(model)));
  optimizer.step();
}
