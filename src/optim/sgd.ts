// torch.optim.SGD, stepping every parameter of a group at once with ATen's _foreach_* operators.
import { Tensor, call, run, handles, wrap } from '../torch/tensor.js';
import { native, type Handle } from '../torch/native.js';
import { keep } from '../torch/scope.js';
import { noGrad } from '../torch/autograd.js';

export interface SGDOptions {
  lr: number;
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
}

export interface ParamGroup extends Required<SGDOptions> {
  params: Tensor[];
}

/** torch.optim.SGD's state_dict(): momentum buffers by parameter index, groups with snake_case keys. */
export interface TorchSGDState {
  state: Map<number, Map<string, Tensor>>;
  param_groups: (Omit<ParamGroup, 'params' | 'weightDecay'> & { weight_decay: number; params: number[] })[];
}

/** The parameters of a group that have a gradient, with those gradients (the caller disposes them). */
export function withGrads(params: Tensor[]): { params: Tensor[]; grads: Tensor[] } {
  const gs = native.grads(handles(params));
  const out = { params: [] as Tensor[], grads: [] as Tensor[] };
  gs.forEach((g, i) => {
    if (g !== null) {
      out.params.push(params[i]);
      out.grads.push(wrap(g));
    }
  });
  return out;
}

const disposeAll = (ts: Tensor[]) => ts.forEach((t) => t.dispose());

export class SGD {
  readonly paramGroups: ParamGroup[];
  /** Momentum buffers, created at a parameter's first step as torch.optim.SGD does. */
  readonly momentumBuffers = new Map<Tensor, Tensor>();

  constructor(params: Tensor[] | (Partial<SGDOptions> & { params: Tensor[] })[], defaults: SGDOptions) {
    if (!(defaults.lr >= 0)) throw new Error(`SGD: invalid learning rate ${defaults.lr}`);
    const base = { momentum: 0, dampening: 0, weightDecay: 0, nesterov: false, ...defaults };
    const groups =
      params.length && !(params[0] instanceof Tensor)
        ? (params as (Partial<SGDOptions> & { params: Tensor[] })[])
        : [{ params: params as Tensor[] }];
    this.paramGroups = groups.map((g) => ({ ...base, ...g }));
    for (const g of this.paramGroups) {
      if (g.nesterov && (g.momentum <= 0 || g.dampening !== 0))
        throw new Error('SGD: Nesterov momentum needs a momentum and zero dampening');
    }
  }

  /**
   * One step: d = g + wd*p; buf = momentum*buf + (1-dampening)*d; p -= lr * (nesterov ? d + momentum*buf : buf).
   * `grads`: gradients computed by hand for allParams() in order (null: none this step), in place of their .grad.
   */
  step(grads?: (Tensor | null)[]): void {
    noGrad(() => {
      let offset = 0;
      for (const group of this.paramGroups) {
        if (grads) {
          const given = grads.slice(offset, (offset += group.params.length));
          const params = group.params.filter((_, i) => given[i]);
          if (params.length)
            this.#stepGroup(
              group,
              params,
              given.filter((g): g is Tensor => g !== null && g !== undefined),
            );
          continue;
        }
        const { params, grads: own } = withGrads(group.params);
        if (params.length) this.#stepGroup(group, params, own);
        disposeAll(own);
      }
    });
  }

  /**
   * Whether steps run fused: one native pass per parameter (native/fused.cc, sgdStep: the gradient, the parameter and
   * its momentum buffer read once, the buffer and the parameter written once) instead of a _foreach_ operator per
   * term. The same arithmetic in the same order. Off by default (SWAV_FUSED_SGD=1 turns it on): in the alternating
   * run of 2026-12-03 (bench/README, issue 15) it measured no faster than the _foreach_ operators. CPU parameters only.
   */
  static fused = process.env.SWAV_FUSED_SGD === '1';

  /**
   * The fused update of `params` (of `group`) from `grads`: d = grads + wd * params, times scales[i] when given (LARC),
   * then the momentum and the step as step() does. False (nothing done) when it does not apply (off, or not on the CPU).
   */
  stepFused(group: ParamGroup, params: Tensor[], grads: Tensor[], scales: number[] | null, wd: number): boolean {
    if (!SGD.fused || !params.every((p) => p.device === 'cpu')) return false;
    const { lr, momentum, dampening, nesterov } = group;
    const bufs = params.map((p) => this.momentumBuffers.get(p)?.h ?? null);
    const out = native.sgdStep(handles(params), handles(grads), bufs, scales, lr, momentum, dampening, wd, nesterov);
    if (momentum !== 0)
      out.forEach((h, i) => {
        if (bufs[i] === null && h !== null) this.momentumBuffers.set(params[i], keep(wrap(h)));
      });
    return true;
  }

  #stepGroup(group: ParamGroup, params: Tensor[], grads: Tensor[]): void {
    if (this.stepFused(group, params, grads, null, group.weightDecay)) return;
    const { lr, momentum, dampening, weightDecay, nesterov } = group;
    let dps: Handle[] = handles(grads);
    const temporaries: Handle[][] = [];
    if (weightDecay !== 0) {
      dps = call('_foreach_add.List', dps, handles(params), weightDecay);
      temporaries.push(dps);
    }
    if (momentum !== 0) {
      const known: number[] = [];
      dps.forEach((d, i) => {
        const buf = this.momentumBuffers.get(params[i]);
        if (buf === undefined) this.momentumBuffers.set(params[i], keep(wrap(call('clone', d, null))));
        else known.push(i);
      });
      if (known.length) {
        const bufs = known.map((i) => this.momentumBuffers.get(params[i])!.h);
        run('_foreach_mul_.Scalar', bufs, momentum);
        run(
          '_foreach_add_.List',
          bufs,
          known.map((i) => dps[i]),
          1 - dampening,
        );
      }
      const bufs = params.map((p) => this.momentumBuffers.get(p)!.h);
      if (nesterov) {
        dps = call('_foreach_add.List', dps, bufs, momentum);
        temporaries.push(dps);
      } else {
        dps = bufs;
      }
    }
    run('_foreach_add_.List', handles(params), dps, -lr);
    for (const list of temporaries) for (const h of list) native.dispose(h);
  }

  zeroGrad(setToNone = true): void {
    for (const g of this.paramGroups) {
      if (setToNone) {
        native.clearGrads(handles(g.params));
      } else {
        const { grads } = withGrads(g.params);
        if (grads.length) run('_foreach_zero_', handles(grads));
        disposeAll(grads);
      }
    }
  }

  /** Momentum buffers by parameter index across groups, and the groups' hyperparameters (torch's layout). */
  stateDict(): { state: Map<number, Tensor>; paramGroups: Omit<ParamGroup, 'params'>[] } {
    const state = new Map<number, Tensor>();
    this.allParams().forEach((p, i) => {
      const b = this.momentumBuffers.get(p);
      if (b) state.set(i, b);
    });
    return { state, paramGroups: this.paramGroups.map(({ params: _p, ...rest }) => rest) };
  }

  loadStateDict(sd: { state: Map<number, Tensor>; paramGroups: Partial<Omit<ParamGroup, 'params'>>[] }): void {
    if (sd.paramGroups.length !== this.paramGroups.length) throw new Error('SGD.loadStateDict: the number of parameter groups differs');
    sd.paramGroups.forEach((g, i) => Object.assign(this.paramGroups[i], g));
    const all = this.allParams();
    noGrad(() => {
      for (const [i, t] of sd.state) {
        if (!all[i]) throw new Error(`SGD.loadStateDict: no parameter ${i}`);
        this.momentumBuffers.get(all[i])?.dispose();
        this.momentumBuffers.set(all[i], keep(t.clone()));
      }
    });
  }

  /** The state as torch.optim.SGD.state_dict() lays it out (what a checkpoint holds). */
  torchStateDict(): TorchSGDState {
    const params = this.allParams();
    const state = new Map<number, Map<string, Tensor>>();
    for (const [i, b] of this.stateDict().state) state.set(i, new Map([['momentum_buffer', b]]));
    const groups = this.paramGroups.map(({ params: ps, weightDecay, ...g }) => ({
      ...g,
      weight_decay: weightDecay,
      params: ps.map((q) => params.indexOf(q)),
    }));
    return { state, param_groups: groups };
  }

  /** Restores a torchStateDict(), also as torch.load reads one back (maps may come back as plain objects). */
  loadTorchStateDict(sd: {
    state: Map<number, Map<string, Tensor>> | Record<string, { momentum_buffer?: Tensor }>;
    param_groups: TorchSGDState['param_groups'];
  }): void {
    const state = new Map<number, Tensor>();
    for (const [i, m] of sd.state instanceof Map ? sd.state : Object.entries(sd.state)) {
      const b = m instanceof Map ? m.get('momentum_buffer') : m.momentum_buffer;
      if (b) state.set(Number(i), b);
    }
    this.loadStateDict({
      state,
      paramGroups: sd.param_groups.map(({ weight_decay, params: _p, ...g }) => ({ ...g, weightDecay: weight_decay })),
    });
  }

  allParams(): Tensor[] {
    return this.paramGroups.flatMap((g) => g.params);
  }
}
