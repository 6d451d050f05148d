// SeLa-v2, as its authors describe it (facebookresearch/swav issue 59): DeepCluster-v2's pipeline (memory bank,
// several heads, the loss over all crops) with each head's labels from Sinkhorn-Knopp instead of k-means, and the
// prototypes learned by SGD rather than set to centroids. No training code was released; the choices left open
// are ours and written here:
// - labels = argmax over prototypes of SwAV's Sinkhorn-Knopp codes (equipartition over the whole bank) of the
//   bank's scores against the head's prototypes;
// - prototypes are L2-normalized before each iteration and before labelling, as SwAV does with prototypes that
//   SGD trains;
// - by default they are frozen for the first epoch's iterations (selav2.freeze_prototypes_niters: null), while
//   the labels come from random prototypes.
import type { Tensor } from '../torch/tensor.js';
import { noGrad } from '../torch/autograd.js';
import { tidy } from '../torch/scope.js';
import { sinkhorn } from './swav.js';
import { createClusteringMethod } from './deepclusterv2.js';
import type { ProcessGroup } from '../dist/group.js';
import type { MethodContext, TrainingMethod } from './method.js';
import { z } from 'zod';
import { list, section } from './schema.js';

export interface AssignOptions {
  /** Entropic regularization (default 0.05). */
  epsilon?: number;
  /** Sinkhorn-Knopp iterations (default 3). */
  iterations?: number;
  /** The processes whose banks share the equipartition (default: this one alone). */
  group?: ProcessGroup;
}

/** Labels (N int64) of N x K bank scores: argmax of their Sinkhorn-Knopp codes. */
export function assign(bankScores: Tensor, o: AssignOptions = {}): Tensor {
  if (bankScores.ndim !== 2) throw new Error(`selav2.assign: scores must be N x K, got [${bankScores.shape}]`);
  return noGrad(() => tidy(() => sinkhorn(bankScores, { epsilon: o.epsilon, iterations: o.iterations, group: o.group }).argmax(1)));
}

/** The selav2 section of the configuration. */
export const selav2Section = section('SeLa-v2 (no released script): DeepCluster-v2 with Sinkhorn-Knopp labels, prototypes learned by SGD', {
  crops_for_assign: list(z.int().min(0)).default([0, 1]).describe('crops whose codes are computed'),
  temperature: z.number().min(0).default(0.1).describe('softmax temperature'),
  epsilon: z.number().min(0).default(0.05).describe('Sinkhorn-Knopp regularization of the label assignment'),
  sinkhorn_iterations: z.int().min(1).default(3).describe('Sinkhorn iterations'),
  freeze_prototypes_niters: z
    .int()
    .min(0)
    .nullable()
    .default(null)
    .describe("iterations during which the prototypes are not updated; null: the first epoch's"),
});
export type SeLaV2Section = z.output<typeof selav2Section>;

export function createSeLaV2(s: SeLaV2Section, ctx: MethodContext): TrainingMethod {
  return createClusteringMethod(
    {
      cropsForAssign: s.crops_for_assign,
      temperature: s.temperature,
      freezePrototypesNiters: s.freeze_prototypes_niters ?? ctx.itersPerEpoch,
      normalizePrototypes: true,
    },
    (bank, prototypes, group) =>
      tidy(() => assign(bank.mm(prototypes.t()), { epsilon: s.epsilon, iterations: s.sinkhorn_iterations, group })),
    ctx,
  );
}
