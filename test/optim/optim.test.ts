// SGD, LARC and SwAV's schedule against PyTorch (and apex's LARC as SwAV calls it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { torch, optim } from '../../src/index.js';
import { assertClose, decode, golden } from '../helpers.js';

const data = golden('optim.json');
const steps = Object.keys(data).filter((name) => name !== 'schedules');

test('the golden holds its cases (SGD variants, LARC with and without clipping, schedules)', () => {
  assert.ok(steps.length >= 4, `${steps.length} optimizer cases`);
  assert.ok(steps.some((n) => data[n].larc) && steps.some((n) => !data[n].larc), 'both SGD and LARC cases');
  assert.ok(Object.keys(data.schedules ?? {}).length >= 2, 'schedules');
});

for (const name of steps) {
  const g = data[name];
  test(`${name}: 3 steps give torch's parameters`, () => {
    torch.tidy(() => {
      const params = g.init.map((e: any) => torch.keep(decode(e).requiresGrad_()));
      const o = g.options;
      const sgd = new optim.SGD(params, {
        lr: o.lr,
        momentum: o.momentum ?? 0,
        dampening: o.dampening ?? 0,
        weightDecay: o.weight_decay ?? 0,
        nesterov: o.nesterov ?? false,
      });
      const stepper = g.larc ? new optim.LARC(sgd, { trustCoefficient: 0.001, clip: g.clip }) : sgd;
      for (const grads of g.grads) {
        params.forEach((p: any, i: number) => {
          p.grad = decode(grads[i]);
        });
        stepper.step();
      }
      params.forEach((p: any, i: number) => assertClose(p, decode(g.final[i]), `${name} param ${i}`, 1e-6));
      params.forEach((p: any) => p.dispose());
      for (const b of sgd.momentumBuffers.values()) b.dispose();
    });
  });
}

test("the cosine schedule with warmup equals main_swav.py's values", () => {
  for (const [name, s] of Object.entries<any>(data.schedules)) {
    const ours = optim.cosineSchedule({
      baseLr: s.base_lr,
      finalLr: s.final_lr,
      startWarmup: s.start_warmup,
      warmupEpochs: s.warmup_epochs,
      epochs: s.epochs,
      itersPerEpoch: s.iters_per_epoch,
    });
    assert.equal(ours.length, s.values.length, name);
    s.values.forEach((v: number, i: number) =>
      assert.ok(Math.abs(ours[i] - v) <= 1e-12 * Math.max(1, Math.abs(v)), `${name}[${i}]: ${ours[i]} vs ${v}`),
    );
  }
});

test('SGD skips parameters without a gradient (as prototypes while frozen)', () => {
  torch.tidy(() => {
    const a = torch.keep(torch.ones([2]).requiresGrad_());
    const b = torch.keep(torch.ones([2]).requiresGrad_());
    const sgd = new optim.SGD([a, b], { lr: 0.5, momentum: 0.9 });
    a.grad = torch.ones([2]);
    new optim.LARC(sgd, { trustCoefficient: 0.001, clip: false }).step();
    assert.deepEqual(b.tolist(), [1, 1]);
    assert.ok(a.index(0).item() < 1);
    assert.equal(sgd.momentumBuffers.has(b), false);
    a.dispose();
    b.dispose();
    for (const t of sgd.momentumBuffers.values()) t.dispose();
  });
});
