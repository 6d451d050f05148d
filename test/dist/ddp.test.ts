// DistributedDataParallel on 2 processes, each with half of every batch, against one process on the whole batch.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { torch, nn, dist } from '../../src/index.js';
import { freePort, outcomes, runRanks } from './ranks.js';

test('DDP in one process: a second backward before finishGradSync is an error; dispose() removes the hooks', {
  timeout: 60_000,
}, async () => {
  const g = await dist.initProcessGroup({ rank: 0, worldSize: 1, masterPort: await freePort(), timeoutSeconds: 10 });
  const model = new nn.Linear(3, 2);
  const ddp = new dist.DistributedDataParallel(g, model.parameters());
  const x = torch.randn([4, 3]);
  torch.tidy(() => {
    model.forward(x).sum().backward();
    assert.throws(() => model.forward(x).sum().backward(), /parameter \d got a second gradient before finishGradSync\(\)/);
    ddp.finishGradSync();
    model.zeroGrad();
    model.forward(x).sum().backward();
    ddp.finishGradSync();
    assert.deepEqual(model.weight.grad!.tolist(), x.sum(0).expand([2, 3]).tolist());
    ddp.dispose();
    model.forward(x).sum().backward();
    model.forward(x).sum().backward();
  });
  assert.throws(() => ddp.finishGradSync(), /used after dispose/);
  g.destroy();
});

function check(results: any[], what: string, tol = 1e-5) {
  for (const r of results) {
    r.gradErrors.forEach((e: number, i: number) => assert.ok(e <= tol, `${what}, rank ${r.rank}, step ${i}: gradient error ${e}`));
    assert.ok(r.weightError <= tol, `${what}, rank ${r.rank}: weights after 4 SGD steps, error ${r.weightError}`);
    assert.ok(
      r.live.every((n: number) => n === r.live[0]),
      `${what}, rank ${r.rank}: live tensors ${r.live}`,
    );
  }
  assert.deepEqual(results[0].buckets, results[1].buckets);
}

test('DDP, conv + linear layers, three buckets: gradients and weights equal one process on the whole batch', {
  timeout: 120_000,
}, async () => {
  const results = outcomes(await runRanks('ddp', 2, { timeoutMs: 110_000, args: ['linear'] }));
  check(results, 'linear');
  // reverse order; a bucket closes once it reaches its cap (first 105 bytes, then 1049): 20 + 320 bytes, 64 + 9216, 16 + 144
  assert.deepEqual(results[0].buckets, [
    [5, 4],
    [3, 2],
    [1, 0],
  ]);
  // every bucket's all-reduce started during backward, none waited for finishGradSync
  for (const r of results) assert.deepEqual(r.launched, [3, 3, 3, 3]);
});

// In float64: in float32 the two ways of computing differ by 1e-5 at the first step already (a ResNet's gradients
// through 20 batch norms), and SGD with momentum amplifies that to 7e-4 by the fourth; in float64 they stay below 2e-12.
test('DDP with SyncBatchNorm on a tiny ResNet (float64): gradients, weights and running statistics equal one process on the whole batch', {
  timeout: 180_000,
}, async () => {
  const results = outcomes(await runRanks('ddp', 2, { timeoutMs: 170_000, args: ['resnet', 'float64'] }));
  check(results, 'resnet', 1e-10);
  for (const r of results) assert.ok(r.bufferError <= 1e-10, `rank ${r.rank}: running statistics, error ${r.bufferError}`);
  assert.equal(results[0].buckets.length, 1); // all its parameters fit in the first bucket's 1 MB
});

test('DDP with different parameters on the ranks: both fail at construction, naming the difference', { timeout: 60_000 }, async () => {
  const results = outcomes(await runRanks('ddp-mismatch', 2, { timeoutMs: 50_000 }));
  for (const r of results)
    assert.match(
      r.error,
      /^DistributedDataParallel: rank [01] has [12] parameters of \d+ elements, rank [01] has [12] of \d+ \(every rank must pass the same parameters\)$/,
    );
});

test('DDP with a head that has no gradient on one rank, then on none: the buckets complete, the grads stay consistent', {
  timeout: 120_000,
}, async () => {
  const results = outcomes(await runRanks('ddp', 2, { timeoutMs: 110_000, args: ['unused'] }));
  check(results, 'unused');
  // step 0: rank 0 only uses the head, both end with its averaged gradient; step 1: nobody does, it stays None
  for (const r of results) assert.deepEqual(r.extraGrad, [true, false, true, true]);
  // one bucket (10 KB in all, under the first bucket's 1 MB): where the head has no gradient it cannot start before finishGradSync
  assert.deepEqual(
    results.map((r) => r.launched),
    [
      [1, 0, 1, 1],
      [0, 0, 1, 1],
    ],
  );
});
