// One SwAV training iteration, as main_swav.py's train() runs it: learning rate for this iteration, prototypes
// normalized, multi-crop forward, codes from Sinkhorn (with the queue), swapped-prediction loss, backward,
// prototype gradients dropped while frozen, LARC + SGD step.
import { Tensor, handles } from '../torch/tensor.js';
import { native } from '../torch/native.js';
import { autocast } from '../torch/autograd.js';
import { tidy } from '../torch/scope.js';
import type { ResNet } from '../models/resnet.js';
import type { LARC } from '../optim/larc.js';
import type { SGD } from '../optim/sgd.js';
import { normalizePrototypes, swavLoss, type SwAVQueue } from '../methods/swav.js';

export interface SwAVHyper {
  nmbCrops: number[];
  cropsForAssign: number[];
  temperature: number;
  epsilon: number;
  sinkhornIterations: number;
  freezePrototypesNiters: number;
  stableSinkhorn?: boolean;
}

export interface StepContext {
  model: ResNet;
  optimizer: LARC | SGD;
  hyper: SwAVHyper;
  /** Autocast dtype for the forward, or null for float32. */
  amp: 'bfloat16' | 'float16' | null;
  deviceType: 'cpu' | 'cuda';
}

export interface StepResult {
  loss: number;
  /** Prototype scores of the first assigned crop (kept for statistics; the caller disposes them). */
  scores: Tensor;
}

const prototypeParams = new WeakMap<ResNet, Tensor[]>();
/** The prototypes' parameters (cached: looked up once per model, not every step). */
function prototypesOf(model: ResNet): Tensor[] {
  let ps = prototypeParams.get(model);
  if (!ps) prototypeParams.set(model, (ps = [...model.namedParameters()].filter(([n]) => n.includes('prototypes')).map(([, p]) => p)));
  return ps;
}

function prototypeWeight(model: ResNet): Tensor {
  const p = model.prototypes;
  if (p === null || 'heads' in p) throw new Error('SwAV training needs one prototype head (nmb_prototypes: a number)');
  return p.weight;
}

export type Amp = 'fp32' | 'bf16' | 'fp16';
/** The autocast dtype of each precision name (none for fp32). */
export const AUTOCAST_DTYPE = { fp32: null, bf16: 'bfloat16', fp16: 'float16' } as const;

export function swavStep(ctx: StepContext, crops: Tensor[], lr: number, iteration: number, queue: SwAVQueue | null): StepResult {
  const { model, optimizer, hyper } = ctx;
  for (const g of optimizer.paramGroups) g.lr = lr;
  normalizePrototypes(model);
  return tidy(() => {
    const forward = () => model.forwardCrops(crops);
    const { embedding, output } = ctx.amp ? autocast({ deviceType: ctx.deviceType, dtype: ctx.amp }, forward) : forward();
    const scores = output as Tensor;
    const bs = crops[0].shape[0];
    const queueScores = queue?.step(embedding.detach().float(), prototypeWeight(model), hyper.cropsForAssign, bs);
    const loss = swavLoss(scores, {
      batchSize: bs, nmbCrops: hyper.nmbCrops, cropsForAssign: hyper.cropsForAssign, temperature: hyper.temperature,
      epsilon: hyper.epsilon, sinkhornIterations: hyper.sinkhornIterations, stableSinkhorn: hyper.stableSinkhorn,
      queueScores,
    });
    optimizer.zeroGrad();
    loss.backward();
    if (iteration < hyper.freezePrototypesNiters) native.clearGrads(handles(prototypesOf(model)));
    optimizer.step();
    return { loss: loss.item(), scores: scores.narrow(0, bs * hyper.cropsForAssign[0], bs).detach() };
  });
}
