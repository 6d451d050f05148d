// One rank of a multi-process test (started by test/dist/ranks.ts): `node worker.js SCENARIO RANK WORLD PORT ...`.
// Prints JSON lines; the last is the result ({ok: true, ...}), or {ok: false, error} before exiting with 1.
import assert from 'node:assert/strict';
import { torch, dist } from '../../src/index.js';
import type { Tensor } from '../../src/torch/tensor.js';

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

    assert.deepEqual(list(g.broadcast_(torch.full([2, 2], rank), n - 1)), [[n - 1, n - 1], [n - 1, n - 1]]);
    const gathered = g.allGather(torch.full([2, 1], rank));
    assert.deepEqual(gathered.shape, [2 * n, 1]);
    assert.deepEqual(list(gathered).flat(), Array.from({ length: 2 * n }, (_, i) => Math.floor(i / 2)));
    assert.deepEqual(list(g.allGather(torch.scalarTensor(rank * 10))), Array.from({ length: n }, (_, r) => r * 10));

    // chunk r of (arange + 100 * rank), summed over the ranks
    const input = torch.arange(2 * n, undefined, 1, { dtype: 'float32' }).add(100 * rank);
    const scattered = g.reduceScatter(input);
    assert.deepEqual(list(scattered), [0, 1].map((i) => n * (2 * rank + i) + 100 * (sum - n)));
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
  assert.deepEqual(list(rb as Tensor), Array.from({ length: 3 * n }, (_, i) => Math.floor(i / 3)));
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

const scenarios: Record<string, () => Promise<object>> = {
  collectives, 'peer-killed': peerKilled,
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
