// resnet18, resnet50 and resnet50w2 against PyTorch: forward in train and eval mode, every parameter's
// gradient, BatchNorm statistics after the train step. The goldens are large: written on first use.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { torch, models } from '../../src/index.js';
import type { Tensor } from '../../src/torch/tensor.js';
import { assertClose, largeGoldens } from '../helpers.js';

const build: Record<string, () => models.ResNet> = {
  resnet18: () => models.resnet18({ numClasses: 10 }),
  resnet50: () => models.resnet50({ numClasses: 10 }),
  resnet50w2: () => models.resnet50w2(),
};

for (const arch of Object.keys(build)) {
  test(`${arch}: train and eval forward, every gradient and the BN statistics equal PyTorch's`, { timeout: 600_000 }, () => {
    const dir = join(largeGoldens('--models', 'models'), arch);
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
    const load = (name: string) => torch.load(join(dir, `${name}.npy`));
    const model = build[arch]();
    torch.tidy(() => {
      const sd = new Map<string, Tensor>(manifest.state.map((k: string) => [k, load(`weights/${k}`)]));
      model.loadStateDict(sd);
      for (const t of sd.values()) t.dispose();
      assert.deepEqual(
        [...model.namedParameters()].map(([k]) => k),
        manifest.params,
        'parameter names and order',
      );
      const x = load('x');
      const w = load('w');
      model.train();
      const y = model.forward(x);
      assertClose(y, load('y_train'), `${arch} train forward`);
      y.mul(w).sum().backward();
      for (const [k, p] of model.namedParameters()) assertClose(p.grad!, load(`grad.${k}`), `${arch} grad ${k}`);
      for (const [k, b] of Object.entries(model.stateDict())) {
        if (k.includes('running') || k.includes('num_batches')) assertClose(b, load(`after_train.${k}`), `${arch} ${k}`);
      }
      model.zeroGrad();
      model.eval();
      const ye = model.forward(x);
      assertClose(ye, load('y_eval'), `${arch} eval forward`);
      if (arch === 'resnet18') {
        // make_golden.py writes eval-mode gradients for this one (the others' would add a gigabyte)
        ye.mul(w).sum().backward();
        for (const [k, p] of model.namedParameters()) assertClose(p.grad!, load(`grad_eval.${k}`), `${arch} eval grad ${k}`);
      }
    });
    model.dispose();
  });
}
