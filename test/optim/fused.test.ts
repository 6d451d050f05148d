// SGD's fused update (native/fused.cc, sgdStep) against the _foreach_ operators it replaces: the same parameters and
// momentum buffers after several steps of SGD and of LARC, for dense tensors of either layout and for the fallback
// (a parameter whose gradient has other strides).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { torch, optim } from '../../src/index.js';
import { SGD } from '../../src/optim/sgd.js';
import { assertClose } from '../helpers.js';

type Opts = { momentum: number; dampening?: number; weightDecay: number; nesterov?: boolean; larc?: boolean; clip?: boolean };

/** Params after 3 steps with the fused update on or off (same seeds, same gradients). */
function run(fused: boolean, o: Opts): { params: number[][]; bufs: number[][] } {
  const was = SGD.fused;
  SGD.fused = fused;
  try {
    return torch.tidy(() => {
      torch.manualSeed(5);
      const params = [
        torch.randn([8, 4, 3, 3]).contiguous('channelsLast'), // a conv weight in channels_last
        torch.randn([16, 5]),
        torch.randn([7]),
        torch.zeros([3]), // ||p|| = 0: LARC leaves it to plain SGD
        torch.randn([6, 6]),
      ].map((p) => torch.keep(p.requiresGrad_()));
      const sgd = new optim.SGD(params, {
        lr: 0.3,
        momentum: o.momentum,
        dampening: o.dampening ?? 0,
        weightDecay: o.weightDecay,
        nesterov: o.nesterov ?? false,
      });
      const stepper = o.larc ? new optim.LARC(sgd, { trustCoefficient: 0.001, clip: o.clip ?? false }) : sgd;
      for (let s = 0; s < 3; s++) {
        params.forEach((p, i) => {
          // the last one's gradient transposed: strides unlike its parameter's (the fallback through ATen)
          p.grad = i === 4 ? torch.randn([6, 6]).t() : torch.randn(p.shape).contiguous(i === 0 ? 'channelsLast' : 'contiguous');
        });
        stepper.step();
      }
      const out = {
        params: params.map((p) => Array.from(p.detach().contiguous().toTypedArray() as Float32Array)),
        bufs: params.map((p) =>
          Array.from((sgd.momentumBuffers.get(p)?.contiguous().toTypedArray() ?? new Float32Array()) as Float32Array),
        ),
      };
      params.forEach((p) => p.dispose());
      for (const b of sgd.momentumBuffers.values()) b.dispose();
      return out;
    });
  } finally {
    SGD.fused = was;
  }
}

const cases: [string, Opts][] = [
  ['SGD with momentum and weight decay', { momentum: 0.9, weightDecay: 1e-4 }],
  ['SGD without momentum', { momentum: 0, weightDecay: 1e-4 }],
  ['SGD with dampening', { momentum: 0.9, dampening: 0.1, weightDecay: 0 }],
  ['SGD with Nesterov momentum', { momentum: 0.9, weightDecay: 1e-4, nesterov: true }],
  ['LARC + SGD as SwAV steps', { momentum: 0.9, weightDecay: 1e-6, larc: true }],
  ['LARC with clipping', { momentum: 0.9, weightDecay: 1e-6, larc: true, clip: true }],
];

for (const [name, o] of cases) {
  test(`fused update = the _foreach_ operators: ${name}`, () => {
    const a = run(true, o);
    const b = run(false, o);
    a.params.forEach((p, i) => torch.tidy(() => assertClose(torch.tensor(p), torch.tensor(b.params[i]), `${name}: param ${i}`, 1e-6)));
    a.bufs.forEach((p, i) => {
      assert.equal(p.length, b.bufs[i].length, `${name}: buffer ${i}`);
      if (p.length) torch.tidy(() => assertClose(torch.tensor(p), torch.tensor(b.bufs[i]), `${name}: buffer ${i}`, 1e-6));
    });
  });
}
