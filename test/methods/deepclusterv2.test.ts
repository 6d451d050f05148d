// DeepCluster-v2 and SeLa-v2 against main_deepclusterv2.py's computations (goldens of test/golden/make_golden.py
// --deepcluster): spherical k-means, the loss and its gradient, SeLa-v2's labels, and whole iterations (the bank
// filled in train mode, clustering, steps with bank updates, LARC, the next epoch's clustering).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { torch, models, optim, deepclusterv2, selav2 } from '../../src/index.js';
import { createDeepClusterV2 } from '../../src/methods/deepclusterv2.js';
import { createSeLaV2 } from '../../src/methods/selav2.js';
import { singleProcess } from '../../src/dist/group.js';
import type { MethodBatch, TrainingMethod } from '../../src/methods/method.js';
import type { Tensor } from '../../src/torch/tensor.js';
import { assertClose, largeGoldens } from '../helpers.js';

const dir = largeGoldens('--deepcluster', 'deepcluster');
const json = (f: string) => JSON.parse(readFileSync(join(dir, f), 'utf8'));
const load = (f: string): Tensor => torch.load(join(dir, f));

for (const c of json('kmeans.json')) {
  test(`sphericalKMeans ${c.dir} (k ${c.k}, ${c.iterations} iterations, ${c.empty_clusters} empty clusters on the way) equals the reference`, () => {
    torch.tidy(() => {
      const bank = load(`${c.dir}/bank.npy`);
      torch.manualSeed(c.seed);
      const { centroids, assignments } = deepclusterv2.sphericalKMeans(bank, { k: c.k, iterations: c.iterations });
      const expected = load(`${c.dir}/assignments.npy`);
      const same = assignments.eq(expected).float().mean().item();
      assert.ok(same >= 0.999, `${(100 * same).toFixed(2)}% of assignments equal`);
      const err = centroids
        .sub(load(`${c.dir}/centroids.npy`))
        .abs()
        .max()
        .item();
      assert.ok(err <= 1e-5, `centroids differ by ${err}`);
      assert.equal(assignments.dtype, 'int64');
    });
  });
}

test('rowArgmax by block maxima equals argmax, first index on ties, for block-divisible, prime and strided K', () => {
  torch.tidy(() => {
    torch.manualSeed(4);
    for (const k of [3000, 101, 64, 7]) {
      const s = torch.randn([257, k]).round(); // many exact ties
      assertClose(deepclusterv2.rowArgmax(s), s.argmax(1), `k ${k}`, 0);
      // a strided view takes the plain argmax: the two paths agree
      assertClose(deepclusterv2.rowArgmax(s.t().contiguous().t()), deepclusterv2.rowArgmax(s), `k ${k}, column-major`, 0);
    }
  });
});

test('nearestCentroid over more rows than one block of scores, and on duplicate centroids, picks the first best', () => {
  torch.tidy(() => {
    torch.manualSeed(5);
    const x = torch.normalize(torch.randn([12000, 8]), 2, 1);
    const c = torch.normalize(torch.randn([3000, 8]), 2, 1);
    const same = deepclusterv2.nearestCentroid(x, c).eq(x.mm(c.t()).argmax(1)).float().mean().item();
    assert.ok(same >= 0.9999, `${same}`);
    const twice = torch.cat([c.index('0:5'), c.index('0:5')]);
    assert.ok(deepclusterv2.nearestCentroid(x, twice).lt(5).all().item(), 'a tie goes to the lower index, as torch.max');
  });
});

test('sphericalKMeans refuses more centroids than rows, and banks that are not matrices', () => {
  torch.tidy(() => {
    assert.throws(
      () => deepclusterv2.sphericalKMeans(torch.randn([5, 3]), { k: 6 }),
      /6 centroids from a bank of 5 rows: reduce the number of prototypes/,
    );
    assert.throws(() => deepclusterv2.sphericalKMeans(torch.randn([5]), { k: 2 }), /N x D/);
  });
});

for (const c of json('loss.json')) {
  test(`deepclusterv2.loss ${c.dir}: ${c.heads} heads, crops ${c.nmb_crops.join('+')}, ignored targets: loss and gradient`, () => {
    torch.tidy(() => {
      const scores = Array.from({ length: c.heads }, (_, h) => load(`${c.dir}/scores${h}.npy`).requiresGrad_());
      const loss = deepclusterv2.loss(scores, load(`${c.dir}/targets.npy`), { nmbCrops: c.nmb_crops, temperature: c.temperature });
      assert.ok(Math.abs(loss.item() - c.loss) <= 1e-5 * Math.abs(c.loss), `loss ${loss.item()} vs ${c.loss}`);
      loss.backward();
      scores.forEach((s, h) => assertClose(s.grad!, load(`${c.dir}/grad${h}.npy`), `gradient of head ${h}`, 1e-5));
    });
  });
}

test('deepclusterv2.loss refuses scores and targets that do not fit', () => {
  torch.tidy(() => {
    const t = torch.zeros([2, 4], { dtype: 'int64' });
    assert.throws(() => deepclusterv2.loss([torch.randn([8, 3])], t, { nmbCrops: [2] }), /heads x batch/);
    assert.throws(() => deepclusterv2.loss([torch.randn([8, 3]), torch.randn([9, 3])], t, { nmbCrops: [2] }), /scores\[1\].*8 rows/);
  });
});

for (const c of json('sela.json')) {
  test(`selav2.assign ${c.dir} (epsilon ${c.epsilon}, ${c.iterations} iterations) gives the reference's labels`, () => {
    torch.tidy(() => {
      const labels = selav2.assign(load(`${c.dir}/scores.npy`), { epsilon: c.epsilon, iterations: c.iterations });
      assertClose(labels, load(`${c.dir}/labels.npy`), 'labels', 0);
    });
  });
}

/** Runs the method as the reference's script does on the golden's fixed batches; checks every stage. */
function wholeIterations(sub: string, create: (ctx: Parameters<typeof createDeepClusterV2>[1]) => TrainingMethod) {
  return async () => {
    const meta = json(`${sub}/steps.json`);
    const at = (f: string) => load(`${sub}/${f}`);
    const batch = (d: string): MethodBatch => ({
      crops: [0, 1, 2, 3].map((i) => torch.keep(at(`${d}/${i}.npy`))),
      indices: Int32Array.from(torch.tidy(() => at(`${d}/idx.npy`).tolist()) as number[]),
    });
    const model = models.resnet18({ numClasses: 0, hiddenMlp: 32, outputDim: 16, nmbPrototypes: meta.nmb_prototypes, normalize: true });
    torch.tidy(() => model.loadStateDict(new Map<string, Tensor>(meta.state.map((k: string) => [k, at(`init/${k}.npy`)]))));
    model.train();
    const sgd = new optim.SGD(model.parameters(), { lr: 0.1, momentum: 0.9, weightDecay: 1e-6 });
    const optimizer = new optim.LARC(sgd, { trustCoefficient: 0.001, clip: false });
    const live = torch.liveTensors();
    const method = create({
      model,
      optimizer,
      amp: null,
      deviceType: 'cpu',
      device: 'cpu',
      group: singleProcess,
      datasetSize: meta.n_data,
      batchSize: meta.batch_size,
      itersPerEpoch: 3,
      nmbCrops: meta.nmb_crops,
      featDim: 16,
      log: () => {},
    });
    async function* pass() {
      for (const i of [0, 1, 2]) {
        const b = batch(`initb${i}`);
        yield b;
        b.crops.forEach((t) => t.dispose());
      }
    }
    await method.prepare!(pass());
    const heads = (model.prototypes as any).heads as { weight: Tensor }[];
    const check = (when: string, epoch: number) =>
      torch.tidy(() => {
        const s = method.state() as Record<string, Tensor>;
        assertClose(s.assignments, at(`assign_epoch${epoch}.npy`), `assignments of epoch ${epoch} (${when})`, 0);
        heads.forEach((h, i) => assertClose(h.weight, at(`protos_epoch${epoch}_${i}.npy`), `prototypes ${i} of epoch ${epoch}`, 1e-5));
      });
    const checkBank = (when: string, file: string, rtol: number) =>
      torch.tidy(() => {
        const s = method.state() as Record<string, Tensor>;
        assertClose(s.memory_embeddings, at(`bank_${file}.npy`), `bank ${when}`, rtol);
        assertClose(s.memory_index, at(`bank_index_${file}.npy`), `bank indices ${when}`, 0);
      });
    checkBank('after the init pass', 'init', 1e-5);
    torch.manualSeed(meta.seeds[0]);
    method.startEpoch(0, 0);
    check('clustered at the start', 0);
    meta.lrs.forEach((lr: number, it: number) => {
      const b = batch(`batch${it}`);
      const r = method.iteration(b, lr, it, it);
      b.crops.forEach((t) => t.dispose());
      r.scores.dispose();
      assert.ok(Math.abs(r.loss - meta.losses[it]) <= 1e-4 * meta.losses[it], `iteration ${it}: loss ${r.loss} vs ${meta.losses[it]}`);
    });
    torch.tidy(() => {
      const sd = model.stateDict();
      // A Linear bias feeding BatchNorm has a zero gradient in exact arithmetic: its gradient is rounding noise,
      // which LARC rescales to a full-size step, so only its magnitude can agree.
      const noise = new Set(['projection_head.0.bias']);
      for (const k of meta.state) assertClose(sd[k], at(`final/${k}.npy`), `final ${k}`, noise.has(k) ? 2e-3 : 1e-4);
    });
    checkBank('after the steps', 'final', 1e-4);
    torch.manualSeed(meta.seeds[1]);
    method.startEpoch(1, 0);
    check('re-clustered on the updated bank', 1);
    method.dispose();
    assert.equal(torch.liveTensors() - sgd.momentumBuffers.size, live, 'the method freed what it held');
    for (const b of sgd.momentumBuffers.values()) b.dispose();
    model.dispose();
  };
}

test(
  'three iterations of main_deepclusterv2.py, then the next clustering, equal the reference on every weight',
  wholeIterations('steps', (ctx) =>
    createDeepClusterV2({ crops_for_assign: [0, 1], temperature: 0.1, freeze_prototypes_niters: 300000, kmeans_iterations: 10 }, ctx),
  ),
);

test(
  'three SeLa-v2 iterations (Sinkhorn labels, prototypes trained by SGD) equal the same rule in PyTorch',
  wholeIterations('sela_steps', (ctx) =>
    createSeLaV2({ crops_for_assign: [0, 1], temperature: 0.1, epsilon: 0.05, sinkhorn_iterations: 3, freeze_prototypes_niters: 0 }, ctx),
  ),
);
