// LARC (layer-wise adaptive rate clipping) as SwAV uses it from apex: each parameter's gradient is scaled by
// trust * ||p|| / (||g|| + wd * ||p|| + eps), weight decay folded into the gradient first, then the wrapped
// SGD steps with weight decay 0. Parameters whose ||p|| or ||g|| is zero are left to plain SGD.
import { call, run, handles, wrap } from '../torch/tensor.js';
import { stack } from '../torch/functional.js';
import { tidy } from '../torch/scope.js';
import { noGrad } from '../torch/autograd.js';
import { type SGD, withGrads } from './sgd.js';

export interface LARCOptions {
  trustCoefficient?: number;
  clip?: boolean;
  eps?: number;
}

/** Whether `sgd` steps fused, for every parameter (on the CPU). */
function SGDFused(sgd: SGD): boolean {
  return (
    (sgd.constructor as unknown as { fused: boolean }).fused && sgd.paramGroups.every((g) => g.params.every((p) => p.device === 'cpu'))
  );
}

export class LARC {
  readonly trustCoefficient: number;
  readonly clip: boolean;
  readonly eps: number;

  constructor(
    readonly optim: SGD,
    o: LARCOptions = {},
  ) {
    this.trustCoefficient = o.trustCoefficient ?? 0.02;
    this.clip = o.clip ?? true;
    this.eps = o.eps ?? 1e-8;
  }

  get paramGroups() {
    return this.optim.paramGroups;
  }

  step(): void {
    if (this.#stepFused()) return;
    const decays = this.optim.paramGroups.map((g) => g.weightDecay);
    noGrad(() =>
      tidy(() => {
        for (const group of this.optim.paramGroups) {
          const { params, grads } = withGrads(group.params);
          if (!params.length) continue;
          const wd = group.weightDecay;
          group.weightDecay = 0;
          const pNorm = stack((call('_foreach_norm.Scalar', handles(params), 2) as any[]).map(wrap));
          const gNorm = stack((call('_foreach_norm.Scalar', handles(grads), 2) as any[]).map(wrap));
          // The same fp32 arithmetic, in the same order, as apex's per-parameter expression.
          const ratio = pNorm.mul(this.trustCoefficient).div(gNorm.add(pNorm.mul(wd)).add(this.eps));
          const rates = Array.from(ratio.toTypedArray() as Float32Array);
          const valid = Array.from(pNorm.ne(0).logicalAnd(gNorm.ne(0)).toTypedArray() as Uint8Array);
          const idx = valid.flatMap((v, i) => (v ? [i] : []));
          if (!idx.length) continue;
          const vp = handles(idx.map((i) => params[i]));
          const vg = handles(idx.map((i) => grads[i]));
          const scale = idx.map((i) => (this.clip ? Math.min(rates[i] / group.lr, 1) : rates[i]));
          if (wd !== 0) run('_foreach_add_.List', vg, vp, wd);
          run('_foreach_mul_.ScalarList', vg, scale);
        }
      }),
    );
    try {
      this.optim.step();
    } finally {
      this.optim.paramGroups.forEach((g, i) => {
        g.weightDecay = decays[i];
      });
    }
  }

  /**
   * The same step through SGD's fused update (SGD.fused): the norms as above, then each parameter's weight decay,
   * scale, momentum and update in one pass (the gradients are left as they are); parameters LARC leaves alone get
   * plain SGD without weight decay, as above. False when the fused update does not apply.
   */
  #stepFused(): boolean {
    const sgd = this.optim;
    if (!SGDFused(sgd)) return false;
    return noGrad(() =>
      tidy(() => {
        for (const group of sgd.paramGroups) {
          const { params, grads } = withGrads(group.params);
          if (!params.length) continue;
          const wd = group.weightDecay;
          const pNorm = stack((call('_foreach_norm.Scalar', handles(params), 2) as any[]).map(wrap));
          const gNorm = stack((call('_foreach_norm.Scalar', handles(grads), 2) as any[]).map(wrap));
          const ratio = pNorm.mul(this.trustCoefficient).div(gNorm.add(pNorm.mul(wd)).add(this.eps));
          const rates = Array.from(ratio.toTypedArray() as Float32Array);
          const valid = Array.from(pNorm.ne(0).logicalAnd(gNorm.ne(0)).toTypedArray() as Uint8Array);
          const idx = valid.flatMap((v, i) => (v ? [i] : []));
          const rest = valid.flatMap((v, i) => (v ? [] : [i]));
          const scale = idx.map((i) => (this.clip ? Math.min(rates[i] / group.lr, 1) : rates[i]));
          let ok = true;
          if (idx.length)
            ok = sgd.stepFused(
              group,
              idx.map((i) => params[i]),
              idx.map((i) => grads[i]),
              scale,
              wd,
            );
          if (ok && rest.length)
            ok = sgd.stepFused(
              group,
              rest.map((i) => params[i]),
              rest.map((i) => grads[i]),
              null,
              0,
            );
          if (!ok) throw new Error('LARC: the fused SGD step stopped halfway'); // cannot happen: checked above
        }
        return true;
      }),
    );
  }

  zeroGrad(setToNone = true): void {
    this.optim.zeroGrad(setToNone);
  }
}
