// SwAV's method against main_swav.py's computations: Sinkhorn-Knopp, the swapped-prediction loss and its
// gradient, the queue, and whole training iterations (queue, frozen prototypes, normalization, LARC).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { torch, swav, models, optim } from '../../src/index.js';
import { swavStep } from '../../src/methods/swav.js';
import type { Tensor } from '../../src/torch/tensor.js';
import { assertClose, decode, golden, largeGoldens } from '../helpers.js';

const data = golden('swav.json');

test('the golden holds its cases', () => {
  assert.ok(data.sinkhorn?.length >= 2, 'sinkhorn cases');
  assert.ok(data.loss?.length >= 3, 'loss cases');
  assert.ok(
    data.loss.some((c: any) => c.queue),
    'a case with the queue',
  );
});

test('sinkhorn gives the reference codes; rows sum to 1, columns to B/K', () => {
  torch.tidy(() => {
    for (const c of data.sinkhorn) {
      const s = decode(c.scores);
      const q = swav.sinkhorn(s, { epsilon: 0.05, iterations: 3 });
      assertClose(q, decode(c.codes), 'codes', 1e-5);
      assert.ok(q.sum(1).sub(1).abs().max().item() < 1e-4, "each sample's codes sum to 1");
      assertClose(swav.sinkhorn(s, { stable: true }), decode(c.codes), 'the stable variant: the same codes', 1e-5);
      assert.equal(q.requiresGrad, false);
    }
  });
});

test('sinkhorn on scores of half precision computes in float32; the stable variant never overflows', () => {
  torch.tidy(() => {
    torch.manualSeed(3);
    const s = torch.randn([16, 10]).add(torch.eye(10).repeat(2, 1).index(':16').mul(6)); // scores up to ~7
    const q = swav.sinkhorn(s.half(), { epsilon: 0.05, stable: true });
    assert.equal(q.dtype, 'float32');
    assert.equal(q.isfinite().all().item(), true);
    assert.equal(
      swav.sinkhorn(s, { epsilon: 0.05 }).isfinite().all().item(),
      false,
      'the reference formula overflows past scores / eps = 88',
    );
  });
});

for (const [i, c] of (data.loss as any[]).entries()) {
  test(`swavLoss ${c.nmb_crops.join('+')} crops, assign [${c.crops_for_assign}]${c.queue ? ', with the queue' : ''}: loss and gradient`, () => {
    torch.tidy(() => {
      const scores = decode(c.scores).requiresGrad_();
      const loss = swav.swavLoss(scores, {
        batchSize: c.batch_size,
        nmbCrops: c.nmb_crops,
        cropsForAssign: c.crops_for_assign,
        temperature: c.temperature,
        queueScores: c.queue_scores?.map(decode),
      });
      assert.ok(Math.abs(loss.item() - c.loss) <= 1e-5 * Math.abs(c.loss), `loss ${loss.item()} vs ${c.loss} (case ${i})`);
      loss.backward();
      assertClose(scores.grad!, decode(c.grad), 'gradient', 1e-5);
    });
  });
}

test('the queue: its scores, its shift by the batch, new embeddings at its head', () => {
  const c = (data.loss as any[]).find((x) => x.queue);
  torch.tidy(() => {
    const queue = new swav.SwAVQueue(torch.keep(decode(c.queue)));
    queue.useTheQueue = true;
    const scores = queue.step(decode(c.embedding), decode(c.prototypes), c.crops_for_assign, c.batch_size);
    scores.forEach((s, i) => assertClose(s!, decode(c.queue_scores[i]), `queue scores ${i}`, 1e-6));
    assertClose(queue.tensor, decode(c.queue_after), 'queue after the step', 0);
    queue.dispose();
    const empty = swav.SwAVQueue.zeros(2, 8, 4);
    const emb = torch.randn([12, 4]);
    assert.deepEqual(empty.step(emb, torch.randn([5, 4]), [0, 1], 4), [null, null], 'an empty queue is not used');
    assert.equal(empty.useTheQueue, false);
    assert.ok(empty.tensor.index(1, ':4').equal(emb.index('4:8')), 'crop 1 goes into queue row block 1');
    empty.dispose();
  });
});

test('swavLoss refuses shapes that do not fit', () => {
  torch.tidy(() => {
    assert.throws(() => swav.swavLoss(torch.randn([10, 5]), { batchSize: 4, nmbCrops: [2, 1] }), /12 rows|expected crops x batch/);
    assert.throws(() => swav.swavLoss(torch.randn([12, 5]), { batchSize: 4, nmbCrops: [2, 1], cropsForAssign: [3] }), /crop 3/);
  });
});

test('four training iterations equal main_swav.py: queue filling then used, prototypes frozen, normalized, LARC', () => {
  const dir = largeGoldens('--swav-steps', 'swav-steps');
  const meta = JSON.parse(readFileSync(join(dir, 'steps.json'), 'utf8'));
  const load = (f: string) => torch.load(join(dir, f));
  const model = models.resnet18({ numClasses: 0, hiddenMlp: 32, outputDim: 16, nmbPrototypes: 10, normalize: true });
  torch.tidy(() => model.loadStateDict(new Map<string, Tensor>(meta.state.map((k: string) => [k, load(`init/${k}.npy`)]))));
  const optimizer = new optim.LARC(new optim.SGD(model.parameters(), { lr: 0.1, momentum: 0.9, weightDecay: 1e-6 }), {
    trustCoefficient: 0.001,
    clip: false,
  });
  const queue = swav.SwAVQueue.zeros(2, meta.queue_length, 16);
  const hyper = {
    nmbCrops: meta.nmb_crops,
    cropsForAssign: meta.crops_for_assign,
    temperature: 0.1,
    epsilon: 0.05,
    sinkhornIterations: 3,
    freezePrototypesNiters: meta.freeze_prototypes_niters,
  };
  const protos0 = torch.keep((model.prototypes as any).weight.clone());
  meta.lrs.forEach((lr: number, it: number) => {
    torch.tidy(() => {
      const crops = [0, 1, 2, 3].map((i) => load(`crops${it}/${i}.npy`));
      const r = swavStep({ model, optimizer, hyper, amp: null, deviceType: 'cpu' }, crops, lr, it, queue);
      assert.ok(Math.abs(r.loss - meta.losses[it]) <= 1e-4 * meta.losses[it], `iteration ${it}: loss ${r.loss} vs ${meta.losses[it]}`);
      if (it === 1) {
        const normalized = torch.normalize(protos0, 2, 1);
        assertClose((model.prototypes as any).weight, normalized, 'frozen prototypes are only normalized', 1e-6);
      }
    });
  });
  torch.tidy(() => {
    const sd = model.stateDict();
    // A Linear bias feeding BatchNorm has a zero gradient in exact arithmetic: its gradient is rounding noise,
    // which LARC rescales to a full-size step, so only its magnitude can agree.
    const noise = new Set(['projection_head.0.bias']);
    for (const k of meta.state) assertClose(sd[k], load(`final/${k}.npy`), `final ${k}`, noise.has(k) ? 2e-3 : 1e-4);
    assertClose(queue.tensor, load('queue.npy'), 'queue', 1e-5);
  });
  assert.ok(queue.useTheQueue);
  model.dispose();
  queue.dispose();
  protos0.dispose();
});
