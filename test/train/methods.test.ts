// `swav train` with the clustering methods: exact resumption (by epochs, and from the middle of an epoch) with the
// memory bank and the assignments in the checkpoint, and a run directory that refuses another method.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { torch } from '../../src/index.js';
import { assertSameCheckpoint, idxDataset, root } from '../helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'swav-methods-'));
const cli = join(root, 'dist/src/cli/main.js');

const data = idxDataset(join(dir, 'idx'), 11);
const configFor = (method: string, section: string) => {
  const f = join(dir, `${method}.yaml`);
  writeFileSync(
    f,
    `
method: ${method}
data: { type: idx, path: ${data} }
crops: { nmb_crops: [2, 2], size_crops: [12, 8], min_scale_crops: [0.4, 0.1], max_scale_crops: [1, 0.4], mean: [0.5], std: [0.25] }
model: { arch: resnet18, stem: small, width: 4, in_channels: 1, hidden_mlp: 8, feat_dim: 8, nmb_prototypes: [6, 5, 4] }
${section}
optim: { epochs: 3, batch_size: 8, base_lr: 0.5, final_lr: 0.01, warmup_epochs: 1, start_warmup: 0.1 }
run: { log_every: 2, threads: 1 }
`,
  );
  return f;
};
const configs = {
  deepclusterv2: configFor('deepclusterv2', 'deepclusterv2: { kmeans_iterations: 4 }'),
  selav2: configFor('selav2', 'selav2: { freeze_prototypes_niters: 3 }'),
};

const train = (config: string, ...args: string[]) =>
  spawnSync(process.execPath, [cli, 'train', '--config', config, ...args], { encoding: 'utf8' });

for (const [method, config] of Object.entries(configs)) {
  test(`${method}: 3 epochs straight equal 1 epoch + resume + 2, and a resume from the middle of an epoch, bit for bit`, () => {
    const straight = train(config, `run.out=${join(dir, `${method}-straight`)}`);
    assert.equal(straight.status, 0, straight.stderr);
    assert.match(straight.stderr, new RegExp(`with ${method} on`));
    torch.tidy(() => {
      const ck = torch.load(join(dir, `${method}-straight`, 'checkpoint.pth'));
      assert.deepEqual(ck.memory_embeddings.shape, [2, 48, 8], 'one bank per assigned crop, a row per sample of the epoch');
      assert.deepEqual(ck.assignments.shape, [3, 48]);
      const a = ck.assignments;
      assert.ok(a.ge(0).all().item(), 'every sample of the epoch has a label (48 = 6 full batches)');
      assert.ok(a.select(0, 2).lt(4).all().item() && a.select(0, 0).lt(6).all().item(), 'labels within each head');
    });
    const out = join(dir, `${method}-split`);
    assert.equal(train(config, `run.out=${out}`, 'run.stop_after_epochs=1').status, 0);
    const rest = train(config, `run.out=${out}`);
    assert.equal(rest.status, 0, rest.stderr);
    assert.match(rest.stderr, /resuming .* at epoch 2, iteration 0 of 6/);
    assertSameCheckpoint(join(dir, `${method}-straight`), out, ['memory_embeddings', 'memory_index', 'assignments']);

    // run.max_minutes that small stops after the first iteration: the checkpoint is inside epoch 1
    const mid = join(dir, `${method}-mid`);
    const first = train(config, `run.out=${mid}`, 'run.max_minutes=0.00001');
    assert.equal(first.status, 0, first.stderr);
    assert.equal(
      torch.tidy(() => torch.load(join(mid, 'checkpoint.pth')).epoch_iteration),
      1,
    );
    const after = train(config, `run.out=${mid}`);
    assert.equal(after.status, 0, after.stderr);
    assert.match(after.stderr, /resuming .* at epoch 1, iteration 1 of 6/);
    assertSameCheckpoint(join(dir, `${method}-straight`), mid, ['memory_embeddings', 'memory_index', 'assignments']);
    const metrics = readFileSync(join(dir, `${method}-straight`, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(metrics.filter((m) => m.type === 'epoch').length, 3);
    assert.ok(metrics.filter((m) => m.type === 'train').every((m) => Number.isFinite(m.loss)));
  });
}

for (const [method, config] of Object.entries(configs)) {
  test(`${method} with one head (model.nmb_prototypes: 6, not a list) trains: one row of labels`, () => {
    const out = join(dir, `${method}-one-head`);
    const r = train(config, `run.out=${out}`, 'model.nmb_prototypes=6', 'optim.epochs=1');
    assert.equal(r.status, 0, r.stderr);
    torch.tidy(() => {
      const a = torch.load(join(out, 'checkpoint.pth')).assignments;
      assert.deepEqual(a.shape, [1, 48]);
      assert.ok(a.ge(0).all().item() && a.lt(6).all().item());
    });
  });
}

test('a run directory of one method refuses a config of another, naming both', () => {
  const out = join(dir, 'deepclusterv2-straight');
  const r = train(configs.selav2, `run.out=${out}`);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /holds a deepclusterv2 run, but the config's method is selav2: set run.out to another directory/);
});

test('deepclusterv2 with more prototypes than the bank holds is one clear error before training', () => {
  const r = train(configs.deepclusterv2, `run.out=${join(dir, 'too-many')}`, 'model.nmb_prototypes=[60]');
  assert.equal(r.status, 1);
  assert.match(
    r.stderr,
    /^swav: error: deepclusterv2: 60 prototypes \(centroids\) but the memory bank holds 48 samples per epoch: reduce model.nmb_prototypes/m,
  );
  assert.doesNotMatch(r.stderr, /at .*\.js:\d+/, 'no stack trace');
  // image files: the loader starts decode workers, and the failed run still ends at once
  const folder = join(dir, 'pngs');
  const made = spawnSync(
    '/usr/bin/python3',
    [
      '-c',
      `
import os, numpy as np
from PIL import Image
os.makedirs('${folder}', exist_ok=True)
for i in range(10): Image.fromarray(np.full((16, 16, 3), 20 * i, np.uint8)).save('${folder}/%d.png' % i)
`,
    ],
    { encoding: 'utf8' },
  );
  assert.equal(made.status, 0, made.stderr);
  const files = spawnSync(
    process.execPath,
    [
      cli,
      'train',
      '--config',
      configs.deepclusterv2,
      `run.out=${join(dir, 'too-many-files')}`,
      'data.type=folder',
      `data.path=${folder}`,
      'model.in_channels=3',
      'crops.mean=[0.5,0.5,0.5]',
      'crops.std=[0.25,0.25,0.25]',
      'model.nmb_prototypes=[60]',
    ],
    { encoding: 'utf8', timeout: 60_000 },
  );
  assert.equal(files.status, 1, `exits (status ${files.status}, signal ${files.signal})`);
  assert.match(files.stderr, /60 prototypes \(centroids\) but the memory bank holds 8 samples per epoch/);
});
