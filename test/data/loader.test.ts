// The in-memory loader with the next batch prefetched in a worker thread (data.prefetch) against the same loader
// making each batch when it is asked for: the same batches exactly, from any iteration, for each process's share,
// and nothing left alive.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { torch } from '../../src/index.js';
import { MultiCropLoader, type Batch, type LoaderOptions } from '../../src/data/loader.js';
import { REFERENCE_MULTICROP } from '../../src/data/multicrop.js';
import type { TensorDataset } from '../../src/data/datasets.js';

// the worker runs one libtorch thread: this one runs two, so that equality does not rest on equal thread counts
torch.setNumThreads(2);

const dataset = (n: number, channels: number, size: number): TensorDataset => ({
  kind: 'tensor',
  name: `random-${channels}`,
  length: n,
  labels: new Int32Array(n),
  images: torch.tidy(() => torch.randint(0, 256, [n, channels, size, size], { dtype: 'uint8' })),
});
const gray = dataset(150, 1, 28);
const rgb = dataset(60, 3, 32);
// the quickstart's crops (gray: brightness and contrast only), and the reference's colors on small RGB crops
const quickstart = {
  ...REFERENCE_MULTICROP,
  nmbCrops: [2, 4],
  sizeCrops: [28, 16],
  minScaleCrops: [0.3, 0.1],
  maxScaleCrops: [1, 0.4],
  jitter: [0.4, 0.4, 0.4, 0.1] as [number, number, number, number],
  grayscaleP: 0,
  blurP: 0,
  mean: [0.286],
  std: [0.353],
};
const colors = {
  ...REFERENCE_MULTICROP,
  nmbCrops: [1, 2],
  sizeCrops: [24, 12],
  mean: REFERENCE_MULTICROP.mean,
  std: REFERENCE_MULTICROP.std,
};

async function collect(batches: AsyncGenerator<Batch>, limit = Infinity): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of batches) {
    out.push(b);
    if (out.length === limit) break;
  }
  return out;
}

function assertSameBatches(a: Batch[], b: Batch[], what: string): void {
  assert.equal(a.length, b.length, `${what}: batches`);
  a.forEach((x, i) => {
    assert.deepEqual(Array.from(x.indices), Array.from(b[i].indices), `${what}: indices of batch ${i}`);
    assert.equal(x.crops.length, b[i].crops.length);
    x.crops.forEach((t, k) => assert.ok(t.equal(b[i].crops[k]), `${what}: batch ${i}, crop ${k}`));
  });
}

const dispose = (bs: Batch[]) => bs.forEach((b) => b.crops.forEach((t) => t.dispose()));

/** Both loaders' batches of `epoch` from `start`, compared, then freed; the live-tensor count is back where it was. */
async function compareEpoch(
  ds: TensorDataset,
  o: Omit<LoaderOptions, 'prefetch'>,
  epoch: number,
  start: number,
  augmentEpoch = epoch,
): Promise<void> {
  const sync = new MultiCropLoader(ds, { ...o, prefetch: false });
  const ahead = new MultiCropLoader(ds, { ...o, prefetch: true });
  const live = torch.liveTensors();
  const a = await collect(sync.batches(epoch, start, augmentEpoch));
  const b = await collect(ahead.batches(epoch, start, augmentEpoch));
  assert.equal(a.length, sync.itersPerEpoch - start);
  assertSameBatches(a, b, `epoch ${epoch} from ${start}`);
  dispose([...a, ...b]);
  assert.equal(torch.liveTensors(), live, 'nothing left alive');
  sync.close();
  ahead.close();
}

test('prefetched in-memory batches equal those made when asked, over an epoch, from its start and from the middle', async () => {
  await compareEpoch(gray, { batchSize: 16, seed: 31, crops: quickstart }, 0, 0);
  await compareEpoch(gray, { batchSize: 16, seed: 31, crops: quickstart }, 3, 5);
  await compareEpoch(rgb, { batchSize: 8, seed: 4, crops: colors }, 1, 2);
});

test("prefetched batches equal for each process's share, and under another augmentation key", async () => {
  for (const rank of [0, 1]) await compareEpoch(gray, { batchSize: 8, seed: 5, crops: quickstart, rank, worldSize: 2 }, 2, 1);
  await compareEpoch(gray, { batchSize: 16, seed: 5, crops: quickstart }, 0, 0, -1);
});

test('a consumer that stops early leaves nothing running or alive; the next pass resumes where asked; close() ends the worker', async () => {
  const o = { batchSize: 16, seed: 9, crops: quickstart };
  const sync = new MultiCropLoader(gray, { ...o, prefetch: false });
  const ahead = new MultiCropLoader(gray, { ...o, prefetch: true });
  const live = torch.liveTensors();
  for (let round = 0; round < 3; round++) {
    const b = await collect(ahead.batches(1, 2), 3); // stopped with batch 5 in flight
    dispose(b);
    assert.equal(torch.liveTensors(), live, `round ${round}: the batch in flight was dropped`);
  }
  const resumed = await collect(ahead.batches(1, 5));
  const want = await collect(sync.batches(1, 5));
  assertSameBatches(resumed, want, 'resumed at iteration 5');
  dispose([...resumed, ...want]);
  ahead.close();
  assert.equal(torch.liveTensors(), live);
  // a pass after close() starts a worker again
  const again = await collect(ahead.batches(1, 8), 1);
  const want8 = await collect(sync.batches(1, 8), 1);
  assertSameBatches(again, want8, 'after close()');
  dispose([...again, ...want8]);
  ahead.close();
  sync.close();
});

test('close() while a pass waits for its batch fails that pass instead of leaving it hanging', async () => {
  const ahead = new MultiCropLoader(gray, { batchSize: 16, seed: 9, crops: quickstart, prefetch: true });
  const pass = ahead.batches(0);
  const first = pass.next();
  ahead.close();
  await assert.rejects(first, /closed/);
});
