// eval_semisup.py's fine-tuning against PyTorch: two epochs on fixed batches (a partial last one), trunk and head
// at their own learning rates, MultiStepLR, validation in eval mode.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { torch, models, evaluation } from '../../src/index.js';
import type { Tensor } from '../../src/torch/tensor.js';
import { assertClose, largeGoldens } from '../helpers.js';

test("fineTune: two epochs of a ResNet-18 with its head equal PyTorch on every weight, and each epoch's accuracy", async () => {
  const dir = largeGoldens('--semisup', 'semisup');
  const meta = JSON.parse(readFileSync(join(dir, 'semisup.json'), 'utf8'));
  const load = (f: string): Tensor => torch.load(join(dir, f));
  const model = models.resnet18({ numClasses: 0, outputDim: 8, hiddenMlp: 0 });
  torch.tidy(() => model.loadStateDict(new Map<string, Tensor>(meta.state.map((k: string) => [k, load(`init/${k}.npy`)]))));
  const batch = (d: string) => ({ images: torch.keep(load(`${d}/x.npy`)), labels: torch.keep(load(`${d}/y.npy`)) });
  async function* train(epoch: number) {
    for (const b of meta.batches.keys()) {
      const x = batch(`e${epoch}b${b}`);
      yield x;
      x.images.dispose();
      x.labels.dispose();
    }
  }
  const v = batch('val');
  async function* val() {
    yield v;
  }
  const lrs: number[][] = [];
  const r = await evaluation.fineTune(model, train, val, {
    epochs: 2,
    lr: meta.lr,
    lrLastLayer: meta.lr_last_layer,
    decayEpochs: meta.decay_epochs,
    gamma: meta.gamma,
    onEpoch: (e) => lrs.push([e.lr, e.lrLastLayer]),
  });
  torch.tidy(() => {
    const sd = model.stateDict();
    for (const k of meta.state) assertClose(sd[k], load(`final/${k}.npy`), `final ${k}`, k.endsWith('num_batches_tracked') ? 0 : 1e-4);
  });
  assert.deepEqual(r.top1PerEpoch, meta.top1);
  assert.deepEqual(r.top5PerEpoch, meta.top5);
  assert.deepEqual(
    lrs,
    [
      [meta.lr, meta.lr_last_layer],
      [meta.lr * meta.gamma, meta.lr_last_layer * meta.gamma],
    ],
    'MultiStepLR after epoch 1',
  );
  v.images.dispose();
  v.labels.dispose();
  model.dispose();
});

test('multiStepLr counts the milestones passed', () => {
  assert.deepEqual(
    [0, 11, 12, 15, 16, 19].map((e) => evaluation.multiStepLr(0.01, e, [12, 16], 0.2)),
    [0.01, 0.01, 0.01 * 0.2, 0.01 * 0.2, 0.01 * 0.2 * 0.2, 0.01 * 0.2 * 0.2],
  );
});
