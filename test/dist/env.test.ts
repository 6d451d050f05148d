// The environment contract (torchrun, swav launch, SLURM) and each process's share of an epoch.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { distEnv, firstSlurmHost } from '../../src/dist/env.js';
import { MultiCropLoader, epochOrder } from '../../src/data/loader.js';
import { torch } from '../../src/index.js';
import { REFERENCE_MULTICROP } from '../../src/data/multicrop.js';

test("distEnv reads torchrun's variables, else SLURM's; a world of one is a single process", () => {
  assert.equal(distEnv({}), null);
  assert.equal(distEnv({ WORLD_SIZE: '1', RANK: '0' }), null);
  assert.deepEqual(
    distEnv({ WORLD_SIZE: '4', RANK: '3', LOCAL_RANK: '1', LOCAL_WORLD_SIZE: '2', MASTER_ADDR: 'n0', MASTER_PORT: '1234' }),
    { rank: 3, worldSize: 4, localRank: 1, localWorldSize: 2, masterAddr: 'n0', masterPort: 1234, source: 'torchrun' },
  );
  assert.throws(() => distEnv({ WORLD_SIZE: '2', RANK: '2' }), /set RANK to 0\.\.1/);
  assert.deepEqual(
    distEnv({
      SLURM_NTASKS: '8',
      SLURM_PROCID: '5',
      SLURM_LOCALID: '1',
      SLURM_NTASKS_PER_NODE: '4',
      SLURM_JOB_NODELIST: 'gpu[07-08],cpu1',
    }),
    { rank: 5, worldSize: 8, localRank: 1, localWorldSize: 4, masterAddr: 'gpu07', masterPort: 29500, source: 'slurm' },
  );
  assert.equal(firstSlurmHost('node1,node2'), 'node1');
  assert.equal(firstSlurmHost('a[3,5-9]'), 'a3');
});

test("each process takes positions rank, rank + W, ... of the epoch's order (DistributedSampler, drop_last); together the batches of one process of batch W x B", async () => {
  const n = 50;
  const ds = {
    kind: 'tensor' as const,
    name: 't',
    images: torch.zeros([n, 1, 8, 8], { dtype: 'uint8' }),
    labels: new Int32Array(n),
    length: n,
  };
  const crops = {
    ...REFERENCE_MULTICROP,
    nmbCrops: [1],
    sizeCrops: [4],
    minScaleCrops: [0.5],
    maxScaleCrops: [1],
    mean: [0.5],
    std: [0.25],
  };
  const seen = async (o: { rank?: number; worldSize?: number; batchSize: number }) => {
    const l = new MultiCropLoader(ds, { seed: 3, crops, ...o });
    const out: number[][] = [];
    for await (const b of l.batches(2)) {
      out.push(Array.from(b.indices));
      b.crops.forEach((t) => t.dispose());
    }
    return out;
  };
  const one = await seen({ batchSize: 8 });
  const parts = [await seen({ rank: 0, worldSize: 2, batchSize: 4 }), await seen({ rank: 1, worldSize: 2, batchSize: 4 })];
  assert.equal(parts[0].length, 6, '25 each, 6 batches of 4');
  assert.equal(one.length, 6);
  const order = epochOrder(n, 3, 2);
  assert.deepEqual(parts[1][0], [order[1], order[3], order[5], order[7]]);
  one.forEach((b, i) =>
    assert.deepEqual(
      [...parts[0][i], ...parts[1][i]].sort((x, y) => x - y),
      [...b].sort((x, y) => x - y),
      `global batch ${i}`,
    ),
  );
  ds.images.dispose();
});
