// The linear protocol on features against PyTorch (eval_linear.py's RegLog, SGD, CosineAnnealingLR per epoch).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { torch, evaluation } from '../../src/index.js';
import { assertClose, decode, golden } from '../helpers.js';

const data = golden('linear.json');

for (const c of data.cases as any[]) {
  test(`linearProbe without shuffling equals PyTorch: ${c.epochs} epochs, batch ${c.batch_size}, lr ${c.lr}${c.nesterov ? ', Nesterov' : ''}, cosine to ${c.final_lr}`, async () => {
    const [x, y, vx, vy] = ['train_x', 'train_y', 'val_x', 'val_y'].map((k) => torch.keep(decode(data[k])));
    const live = torch.liveTensors();
    const r = await evaluation.linearProbe(x, y, vx, vy, {
      epochs: c.epochs,
      batchSize: c.batch_size,
      lr: c.lr,
      momentum: 0.9,
      weightDecay: c.weight_decay,
      nesterov: c.nesterov,
      finalLr: c.final_lr,
      shuffle: false,
      seed: c.seed,
    });
    torch.tidy(() => {
      assertClose(r.classifier.weight, decode(c.weight), 'weight', 1e-5);
      assertClose(r.classifier.bias!, decode(c.bias), 'bias', 1e-5);
    });
    assert.deepEqual(r.top1PerEpoch, c.top1, 'top-1 of every epoch');
    assert.deepEqual(r.top5PerEpoch, c.top5, 'top-5 of every epoch');
    const best = Math.max(...c.top1);
    assert.equal(r.bestTop1, best);
    assert.equal(r.bestTop5, c.top5[c.top1.indexOf(best)]);
    r.classifier.dispose();
    assert.equal(torch.liveTensors(), live, 'nothing left behind but the classifier');
    [x, y, vx, vy].forEach((t) => t.dispose());
  });
}

test("linearProbe with useBn on pooled maps (eval_linear.py's avg6 + use_bn) equals PyTorch: BatchNorm2d trained, then in eval mode", async () => {
  const g = data.use_bn;
  const [x, y, vx, vy] = ['train_x', 'train_y', 'val_x', 'val_y'].map((k) => torch.keep(decode(data[k])));
  const [x4, vx4] = [x, vx].map((t) => torch.keep(t.view(t.shape[0], 8, 2, 2)));
  const r = await evaluation.linearProbe(x4, y, vx4, vy, {
    epochs: g.epochs,
    batchSize: g.batch_size,
    useBn: true,
    shuffle: false,
    seed: 31,
  });
  assert.deepEqual(r.top1PerEpoch, g.top1, 'top-1 of every epoch (validation in eval mode)');
  torch.tidy(() => {
    assertClose(r.classifier.weight, decode(g.weight), 'weight', 1e-5);
    assertClose(r.classifier.bias!, decode(g.bias), 'bias', 1e-5);
    const bn = r.head.bn!;
    assertClose(bn.weight!, decode(g.bn_weight), 'bn weight', 1e-5);
    assertClose(bn.bias!, decode(g.bn_bias), 'bn bias', 1e-5);
    assertClose(bn.runningMean!, decode(g.running_mean), 'running mean', 1e-5);
    assertClose(bn.runningVar!, decode(g.running_var), 'running var', 1e-5);
  });
  r.head.dispose();
  await assert.rejects(evaluation.linearProbe(x, y, vx, vy, { epochs: 1, useBn: true }), /useBn normalizes pooled maps/);
  [x, y, vx, vy, x4, vx4].forEach((t) => t.dispose());
});

test('linearProbe stopped after an epoch and resumed from its checkpoint ends as a run never stopped, bit for bit', async () => {
  const [x, y, vx, vy] = ['train_x', 'train_y', 'val_x', 'val_y'].map((k) => torch.keep(decode(data[k])));
  const o = { epochs: 4, batchSize: 64, lr: 0.3, nesterov: true, shuffle: true, seed: 5 };
  const straight = await evaluation.linearProbe(x, y, vx, vy, o);
  let saved: evaluation.LinearHeadState | null = null;
  let epochs = 0;
  const first = await evaluation.linearProbe(x, y, vx, vy, {
    ...o,
    onCheckpoint: (s) => {
      saved = torch.tidy(() => cloneState(s));
      epochs++;
    },
    shouldStop: () => epochs >= 2,
  });
  assert.equal(first.interrupted, true);
  assert.equal(first.top1PerEpoch.length, 2);
  first.head.dispose();
  const live = torch.liveTensors();
  const rest = await evaluation.linearProbe(x, y, vx, vy, { ...o, resume: saved! });
  assert.equal(rest.interrupted, false);
  assert.deepEqual(rest.top1PerEpoch, straight.top1PerEpoch);
  assert.deepEqual(rest.lossPerEpoch, straight.lossPerEpoch);
  assert.equal(rest.bestEpoch, straight.bestEpoch);
  assert.ok(
    torch.tidy(() => rest.classifier.weight.equal(straight.classifier.weight)),
    'the same weights, bit for bit',
  );
  rest.head.dispose();
  assert.equal(torch.liveTensors(), live, 'nothing left behind once the head is freed');
  straight.head.dispose();
  disposeState(saved!);
  [x, y, vx, vy].forEach((t) => t.dispose());
});

/** A checkpoint's tensors outlive the call that gave them only when copied (as torch.save does to a file). */
function cloneState(s: evaluation.LinearHeadState): evaluation.LinearHeadState {
  const c = (t: torch.Tensor) => torch.keep(t.clone());
  return {
    ...s,
    top1: [...s.top1],
    top5: [...s.top5],
    loss: [...s.loss],
    state_dict: new Map([...s.state_dict].map(([k, t]) => [k, c(t)])),
    optimizer: { ...s.optimizer, state: new Map([...s.optimizer.state].map(([i, m]) => [i, new Map([...m].map(([k, t]) => [k, c(t)]))])) },
  };
}

function disposeState(s: evaluation.LinearHeadState): void {
  for (const t of s.state_dict.values()) t.dispose();
  for (const m of s.optimizer.state.values()) for (const t of m.values()) t.dispose();
}

test("cosineAnnealingStep follows PyTorch's recursive rule, ending at eta_min", () => {
  let lr = 0.3;
  const lrs = [lr];
  for (let e = 1; e <= 10; e++) lrs.push((lr = evaluation.cosineAnnealingStep(lr, e, 0.3, 10, 0.001)));
  assert.ok(Math.abs(lrs[10] - 0.001) < 1e-12, `${lrs[10]}`);
  assert.ok(Math.abs(lrs[5] - (0.001 + (0.3 - 0.001) / 2)) < 1e-12);
});

test('linearProbe refuses labels out of range, empty splits and mismatched shapes, in one line each', async () => {
  const x = torch.randn([10, 4]);
  const y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0], { dtype: 'int64' });
  await assert.rejects(evaluation.linearProbe(x, y, x, y, { numClasses: 2, epochs: 1 }), /labels must lie in \[0, 2\), got 0\.\.2/);
  await assert.rejects(
    evaluation.linearProbe(x, y, torch.randn([10, 5]), y, { epochs: 1 }),
    /N x D matrices \(or N x C x h x w maps\) of one shape/,
  );
  await assert.rejects(evaluation.linearProbe(x, y.narrow(0, 0, 9), x, y, { epochs: 1 }), /one label per feature row/);
  await assert.rejects(
    evaluation.linearProbe(x, y, torch.randn([0, 4]), torch.zeros([0], { dtype: 'int64' }), { epochs: 1 }),
    /an empty split/,
  );
  const r = await evaluation.linearProbe(x, y, x, y, { epochs: 2, shuffle: true, batchSize: 3 });
  assert.equal(r.top1PerEpoch.length, 2);
  r.classifier.dispose();
});
