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
      epochs: c.epochs, batchSize: c.batch_size, lr: c.lr, momentum: 0.9, weightDecay: c.weight_decay, nesterov: c.nesterov,
      finalLr: c.final_lr, shuffle: false, seed: c.seed,
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

test('cosineAnnealingStep follows PyTorch\'s recursive rule, ending at eta_min', () => {
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
  await assert.rejects(evaluation.linearProbe(x, y, torch.randn([10, 5]), y, { epochs: 1 }), /N x D matrices of one D/);
  await assert.rejects(evaluation.linearProbe(x, y.narrow(0, 0, 9), x, y, { epochs: 1 }), /one label per feature row/);
  await assert.rejects(evaluation.linearProbe(x, y, torch.randn([0, 4]), torch.zeros([0], { dtype: 'int64' }), { epochs: 1 }), /an empty split/);
  const r = await evaluation.linearProbe(x, y, x, y, { epochs: 2, shuffle: true, batchSize: 3 });
  assert.equal(r.top1PerEpoch.length, 2);
  r.classifier.dispose();
});
