// Native memory: a training loop inside tidy() leaves the live-tensor count flat.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { torch, models, optim } from '../src/index.js';

test('200 training steps of a small ResNet inside tidy leave the live-tensor count unchanged', () => {
  torch.manualSeed(0);
  const model = models.resnet18({ numClasses: 5, width: 8, stem: 'small', inChannels: 1 });
  const opt = new optim.LARC(new optim.SGD(model.parameters(), { lr: 0.1, momentum: 0.9, weightDecay: 1e-4 }), {
    trustCoefficient: 0.001,
    clip: false,
  });
  const x = torch.randn([4, 1, 12, 12]);
  const y = torch.randint(0, 5, [4]);
  const step = () =>
    torch.tidy(() => {
      const loss = torch.crossEntropy(model.forward(x), y);
      model.zeroGrad();
      loss.backward();
      opt.step();
      return loss.item();
    });
  const first = step(); // creates the momentum buffers
  const live = torch.liveTensors();
  let last = first;
  for (let i = 0; i < 200; i++) {
    last = step();
    assert.equal(torch.liveTensors(), live, `step ${i}`);
  }
  assert.ok(last < first, `the loss goes down (${first} -> ${last})`);
  model.dispose();
  x.dispose();
  y.dispose();
  for (const b of opt.optim.momentumBuffers.values()) b.dispose();
  assert.equal(torch.liveTensors(), live - model.parameters().length - model.buffers().length - 2 - opt.optim.momentumBuffers.size);
});
