// One rank of a multi-process test (started by test/dist/ranks.ts): `node worker.js SCENARIO RANK WORLD PORT ...`.
// Prints JSON lines; the last is the result ({ok: true, ...}), or {ok: false, error} before exiting with 1.
import assert from 'node:assert/strict';
import { torch, nn, optim, models, dist } from '../../src/index.js';
import type { Tensor } from '../../src/torch/tensor.js';
import { relativeError } from '../helpers.js';

const [scenario, rankArg, worldArg, portArg, ...args] = process.argv.slice(2);
const rank = Number(rankArg);
const world = Number(worldArg);
const say = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);

const join = (timeoutSeconds = 30) =>
  dist.initProcessGroup({ backend: 'gloo', rank, worldSize: world, masterAddr: '127.0.0.1', masterPort: Number(portArg), timeoutSeconds });

const list = (t: Tensor) => t.tolist();

async function collectives(): Promise<object> {
  const g = await join();
  const n = world;
  const sum = (n * (n + 1)) / 2;
  torch.tidy(() => {
    assert.deepEqual(list(g.allReduce_(torch.full([3], rank + 1), 'sum')), [sum, sum, sum]);
    assert.deepEqual(list(g.allReduce_(torch.full([2], rank + 1), 'avg')), [(n + 1) / 2, (n + 1) / 2]);
    assert.deepEqual(list(g.allReduce_(torch.full([2], rank + 1), 'max')), [n, n]);
    assert.deepEqual(list(g.allReduce_(torch.full([2], rank + 1), 'min')), [1, 1]);
    assert.deepEqual(list(g.allReduce_(torch.full([2], rank + 1, { dtype: 'int64' }))), [sum, sum]);
    // a non-contiguous tensor, reduced through a contiguous copy and written back
    const base = torch.arange(6, undefined, 1, { dtype: 'float32' }).view([2, 3]);
    const t = base.mul(rank + 1).t();
    assert.ok(!t.isContiguous());
    assert.deepEqual(list(g.allReduceSum_(t)), list(base.mul(sum).t()));

    assert.deepEqual(list(g.broadcast_(torch.full([2, 2], rank), n - 1)), [
      [n - 1, n - 1],
      [n - 1, n - 1],
    ]);
    const gathered = g.allGather(torch.full([2, 1], rank));
    assert.deepEqual(gathered.shape, [2 * n, 1]);
    assert.deepEqual(
      list(gathered).flat(),
      Array.from({ length: 2 * n }, (_, i) => Math.floor(i / 2)),
    );
    assert.deepEqual(
      list(g.allGather(torch.scalarTensor(rank * 10))),
      Array.from({ length: n }, (_, r) => r * 10),
    );

    // chunk r of (arange + 100 * rank), summed over the ranks
    const input = torch.arange(2 * n, undefined, 1, { dtype: 'float32' }).add(100 * rank);
    const scattered = g.reduceScatter(input);
    assert.deepEqual(
      list(scattered),
      [0, 1].map((i) => n * (2 * rank + i) + 100 * (sum - n)),
    );
    assert.deepEqual(list(g.reduceScatter(torch.ones([n, 2]), 'avg')), [[1, 1]]);
    g.barrier();
  });

  // async handles: launched together, awaited together; the event loop runs meanwhile
  const a = torch.full([4], rank + 1);
  const b = torch.full([3], rank);
  const c = torch.full([1], rank === 0 ? 42 : -1);
  const works = [g.allReduceAsync(a), g.allGatherAsync(b), g.broadcastAsync(c, 0), g.barrierAsync()] as const;
  let ticks = 0;
  const ticker = setInterval(() => ticks++, 1);
  const [ra, rb, rc] = await Promise.all(works.map((w) => w.wait()));
  clearInterval(ticker);
  assert.equal(ra, a);
  assert.deepEqual(list(a), [sum, sum, sum, sum]);
  assert.deepEqual(
    list(rb as Tensor),
    Array.from({ length: 3 * n }, (_, i) => Math.floor(i / 3)),
  );
  assert.deepEqual(list(rc as Tensor), [42]);
  assert.ok(works.every((w) => w.isCompleted()));
  // a second wait returns at once, without applying the result twice
  assert.deepEqual(list(await works[0].wait()), [sum, sum, sum, sum]);
  works[1].result!.dispose();

  let sub: number[] | null = null;
  if (n >= 4) {
    // the even ranks in a group of their own; then the pairs (SwAV's syncbn_process_group_size 2)
    const evens = await g.newGroup(Array.from({ length: n / 2 }, (_, i) => 2 * i));
    if (rank % 2 === 0) {
      assert.ok(evens !== null && evens.rank === rank / 2 && evens.worldSize === n / 2);
      sub = list(evens.allReduce_(torch.full([1], rank)));
    } else {
      assert.equal(evens, null);
    }
    const pair = await g.subgroups(2);
    assert.equal(pair.worldSize, 2);
    assert.deepEqual(list(pair.allGather(torch.full([1], rank))), [rank - (rank % 2), rank - (rank % 2) + 1]);
  }
  g.barrier();
  const live = torch.liveTensors();
  for (let i = 0; i < 20; i++) {
    torch.tidy(() => {
      g.allReduce_(torch.ones([8]));
      g.allGather(torch.ones([2]));
      g.reduceScatter(torch.ones([2 * n]));
    });
  }
  assert.equal(torch.liveTensors(), live, 'live tensors after 20 rounds of collectives');
  return { ticks, sub };
}

// Rank `victim` stops taking part after one allReduce: the test SIGKILLs it (or, for a timeout, leaves it alive)
// while the others wait in the next one, synchronously or not; they report the error and how long it took.
async function peerKilled(): Promise<object> {
  const [victim, mode, timeout] = [Number(args[0]), args[1], Number(args[2] ?? 20)];
  const g = await join(timeout);
  g.allReduce_(torch.ones([2]));
  if (rank === victim) {
    say({ phase: 'ready' });
    return new Promise(() => setInterval(() => {}, 1000)); // until its SIGKILL, or (timeout case) the test's end
  }
  const t = torch.ones([1 << 16]);
  const start = Date.now();
  say({ phase: 'launched' });
  try {
    if (mode === 'async') await g.allReduceAsync(t).wait();
    else g.allReduce_(t);
  } catch (e) {
    return { error: (e as Error).message, ms: Date.now() - start };
  }
  throw new Error('the allReduce succeeded without its peer');
}

// The same small model twice from the same seed: a distributed copy and a single-process reference.
function twoModels(build: () => nn.Module): [nn.Module, nn.Module] {
  torch.manualSeed(0);
  const a = build();
  torch.manualSeed(0);
  const b = build();
  return [a, b];
}

function maxError(xs: (Tensor | null)[], ys: (Tensor | null)[]): number {
  let worst = 0;
  xs.forEach((x, i) => {
    const y = ys[i];
    if (x === null || y === null) {
      assert.equal(x, y, `tensor ${i}: one is null`);
      return;
    }
    worst = Math.max(worst, relativeError(x, y));
  });
  return worst;
}

// DDP on half a batch per rank against one process on the whole batch: gradients after each backward, weights
// after several SGD steps. 'linear': conv + linear layers; 'resnet': a tiny ResNet with SyncBatchNorm; 'unused':
// a head that gets no gradient on some ranks, then on none. A second argument 'float64' runs it all in double.
async function ddp(): Promise<object> {
  const [kind, dtype = 'float32'] = args as [string, 'float32' | 'float64'];
  const g = await join();
  const build =
    kind === 'resnet'
      ? () => models.resnet18({ numClasses: 5, width: 4, stem: 'small', inChannels: 1 })
      : () =>
          new nn.Sequential(
            new nn.Conv2d(1, 4, 3),
            new nn.ReLU(),
            new nn.Flatten(),
            new nn.Linear(4 * 6 * 6, 16),
            new nn.ReLU(),
            new nn.Linear(16, 5),
          );
  const [model, ref] = twoModels(() => build().to(dtype));
  const extra = kind === 'unused' ? twoModels(() => new nn.Linear(5, 3).to(dtype)) : null;
  if (kind === 'resnet') dist.convertSyncBatchNorm(model, g);
  const params = [...model.parameters(), ...(extra ? extra[0].parameters() : [])];
  const refParams = [...ref.parameters(), ...(extra ? extra[1].parameters() : [])];
  // rank 0's weights must reach every rank: the others start from other ones
  if (rank !== 0) torch.noGrad(() => params.forEach((p) => p.add_(1)));
  const ddp = new dist.DistributedDataParallel(
    g,
    params,
    model.buffers(),
    kind === 'linear' ? { bucketCapMb: 0.001, firstBucketMb: 0.0001 } : {},
  );
  const opt = new optim.SGD(params, { lr: 0.1, momentum: 0.9 });
  const refOpt = new optim.SGD(refParams, { lr: 0.1, momentum: 0.9 });
  const per = 4;
  torch.manualSeed(1);
  const batches = Array.from({ length: 4 }, () => [torch.randn([per * world, 1, 8, 8], { dtype }), torch.randint(0, 5, [per * world])]);

  // the extra head is used by rank 0 only in step 0, by no rank in step 1, by all afterwards
  const usesExtra = (step: number, r: number) => (step === 0 ? r === 0 : step >= 2);
  const lossOf = (m: nn.Module, head: nn.Module | null, x: Tensor, y: Tensor, step: number, r: number) => {
    const out = m.forward(x);
    const loss = torch.crossEntropy(out, y);
    return head !== null && usesExtra(step, r) ? loss.add(head.forward(out).square().mean()) : loss;
  };
  const gradErrors: number[] = [];
  const live: number[] = [];
  const extraGrad: (boolean | null)[] = [];
  const launched: number[] = [];
  batches.forEach(([x, y], step) => {
    torch.tidy(() => {
      model.zeroGrad();
      extra?.[0].zeroGrad();
      lossOf(model, extra?.[0] ?? null, x.narrow(0, rank * per, per), y.narrow(0, rank * per, per), step, rank).backward();
      launched.push(ddp.launchedBuckets);
      ddp.finishGradSync();
      // the reference: the mean of every rank's loss on its half (the full batch's mean loss when no head differs)
      ref.zeroGrad();
      extra?.[1].zeroGrad();
      const total = extra
        ? torch
            .stack(
              Array.from({ length: world }, (_, r) => lossOf(ref, extra[1], x.narrow(0, r * per, per), y.narrow(0, r * per, per), step, r)),
            )
            .mean()
        : lossOf(ref, null, x, y, step, 0);
      total.backward();
      gradErrors.push(
        maxError(
          params.map((p) => p.grad),
          refParams.map((p) => p.grad),
        ),
      );
      if (extra) extraGrad.push(extra[0].parameters()[0].grad !== null);
      opt.step();
      refOpt.step();
    });
    live.push(torch.liveTensors());
  });
  const weightError = maxError(params, refParams);
  const buckets = ddp.buckets;
  const bufferError = maxError(model.buffers(), ref.buffers());
  ddp.dispose();
  g.barrier();
  return { gradErrors, weightError, bufferError, live, buckets, extraGrad, launched };
}

// Rank 1 hands DDP one parameter fewer: both ranks fail at construction, naming the difference.
async function ddpMismatch(): Promise<object> {
  const g = await join();
  const params = new nn.Linear(3, 2).parameters().slice(0, rank === 1 ? 1 : 2);
  try {
    new dist.DistributedDataParallel(g, params);
  } catch (e) {
    return { error: (e as Error).message };
  }
  throw new Error('DistributedDataParallel accepted different parameters on the ranks');
}

// SyncBatchNorm on half a batch per rank against plain BatchNorm on the whole batch, train mode: outputs, input,
// weight and bias gradients, running statistics over three steps, then eval mode.
async function syncBn(): Promise<object> {
  const g = await join();
  const errors: Record<string, number> = {};
  const note = (k: string, e: number) => {
    errors[k] = Math.max(errors[k] ?? 0, e);
  };
  for (const [dims, momentum] of [
    [4, 0.1],
    [2, null],
  ] as const) {
    const make = () => (dims === 4 ? new nn.BatchNorm2d(3, { momentum }) : new nn.BatchNorm1d(3, { momentum }));
    const bn = dist.convertSyncBatchNorm(make(), g);
    const ref = make();
    torch.noGrad(() => {
      for (const m of [bn, ref]) {
        m.weight!.copy_(torch.tensor([0.5, 1.5, -2]));
        m.bias!.copy_(torch.tensor([0.1, -0.2, 0.3]));
      }
    });
    const per = 3 + rank; // unequal halves: the global count weighs each rank's statistics
    const sizes = Array.from({ length: world }, (_, r) => 3 + r);
    const start = sizes.slice(0, rank).reduce((a, b) => a + b, 0);
    const all = sizes.reduce((a, b) => a + b, 0);
    torch.manualSeed(7);
    for (let step = 0; step < 3; step++) {
      torch.tidy(() => {
        const shape = dims === 4 ? [all, 3, 4, 5] : [all, 3];
        const full = torch
          .randn(shape)
          .mul(step + 1)
          .add(step);
        const r = torch.randn(shape);
        const x = full.narrow(0, start, per).clone().requiresGrad_(true);
        const xr = full.clone().requiresGrad_(true);
        const y = bn.forward(x);
        const yr = ref.forward(xr);
        // loss sum(y * r): each rank's share of the whole batch's
        y.mul(r.narrow(0, start, per))
          .sum()
          .backward();
        yr.mul(r).sum().backward();
        note('output', relativeError(y, yr.narrow(0, start, per)));
        note('inputGrad', relativeError(x.grad!, xr.grad!.narrow(0, start, per)));
        note('weightGrad', relativeError(g.allReduceSum_(bn.weight!.grad!), ref.weight!.grad!));
        note('biasGrad', relativeError(g.allReduceSum_(bn.bias!.grad!), ref.bias!.grad!));
        bn.zeroGrad();
        ref.zeroGrad();
      });
    }
    note('runningMean', relativeError(bn.runningMean!, ref.runningMean!));
    note('runningVar', relativeError(bn.runningVar!, ref.runningVar!));
    torch.tidy(() => {
      bn.eval();
      ref.eval();
      const x = torch.randn(dims === 4 ? [2, 3, 4, 5] : [2, 3]);
      note('eval', relativeError(bn.forward(x), ref.forward(x)));
    });
  }
  g.barrier();
  return { errors };
}

const scenarios: Record<string, () => Promise<object>> = {
  collectives,
  'peer-killed': peerKilled,
  ddp,
  'ddp-mismatch': ddpMismatch,
  syncbn: syncBn,
};

try {
  const run = scenarios[scenario];
  if (!run) throw new Error(`unknown scenario ${scenario}`);
  say({ ok: true, rank, ...(await run()) });
  process.exit(0);
} catch (e) {
  say({ ok: false, rank, error: (e as Error).stack ?? String(e) });
  process.exit(1);
}
