// `swav export --onnx`: the model passes onnx.checker (Debian's python3-onnx, full check with shape inference) and,
// run by onnxruntime-node at batch 1 and 7, gives PyTorch's features for PyTorch-written checkpoints (resnet18,
// resnet50; BatchNorm folded or kept) and our trunk's for one of our runs (a small stem, one channel), within 1e-4.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { torch, hub } from '../../src/index.js';
import type { Tensor } from '../../src/torch/tensor.js';
import { idxDataset, largeGoldens, python, relativeError, root } from '../helpers.js';
import { buildModel } from '../../src/train/trainer.js';

const goldens = largeGoldens('--checkpoints', 'checkpoints');
const dir = mkdtempSync(join(tmpdir(), 'swav-onnx-'));
const cli = join(root, 'dist/src/cli/main.js');

function swav(...args: string[]): string {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stderr;
}

/** onnx.checker's full check, and the model's metadata as Python reads it. */
function checked(file: string): Record<string, string> {
  const r = spawnSync(
    python(),
    [
      '-c',
      `import json, sys, onnx
m = onnx.load(sys.argv[1])
onnx.checker.check_model(m, full_check=True)
assert m.opset_import[0].version == 17
print(json.dumps({p.key: p.value for p in m.metadata_props}))`,
      file,
    ],
    { encoding: 'utf8' },
  );
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

/** The ONNX model's features of `x` (N x C x H x W float32), by onnxruntime-node. */
async function run(file: string, x: Tensor): Promise<Tensor> {
  const session = await ort.InferenceSession.create(file);
  const input = new ort.Tensor('float32', x.contiguous().toTypedArray() as Float32Array, x.shape);
  const { features } = await session.run({ image: input });
  await session.release();
  return torch.tensor(Array.from(features.data as Float32Array)).view(...(features.dims as number[]));
}

/** Batches of 1 and of 7 drawn from `x`'s rows. */
const batches = (x: Tensor) =>
  [[0], [0, 1, 2, 3, 0, 1, 2]].map((rows) => torch.tensor(rows, { dtype: 'int64' })).map((i) => [i, x.indexSelect(0, i)] as const);

for (const [arch, keepBn] of [
  ['resnet18', false],
  ['resnet18', true],
  ['resnet50', false],
] as const) {
  test(`${arch}${keepBn ? ' with BatchNormalization kept' : ''} from a PyTorch checkpoint: checker passes, onnxruntime gives PyTorch's features at batch 1 and 7`, async () => {
    const out = join(dir, `${arch}${keepBn ? '-bn' : ''}.onnx`);
    swav('export', '--onnx', '--arch', arch, '--weights', join(goldens, `${arch}_zip.pth`), '--out', out, ...(keepBn ? ['--keep-bn'] : []));
    const meta = checked(out);
    assert.deepEqual(JSON.parse(meta.mean), [0.485, 0.456, 0.406]);
    assert.equal(meta.features, arch === 'resnet18' ? '512' : '2048');
    const x = torch.load(join(goldens, 'images.npy'));
    const theirs = torch.load(join(goldens, `${arch}_features.npy`));
    const ours = hub.modelFromFile(arch, join(goldens, `${arch}_zip.pth`)).eval();
    for (const [rows, batch] of batches(x)) {
      const y = await run(out, batch);
      assert.ok(
        relativeError(y, theirs.indexSelect(0, rows)) < 1e-4,
        `PyTorch's features, batch ${rows.shape[0]}: ${relativeError(y, theirs.indexSelect(0, rows))}`,
      );
      const mine = torch.noGrad(() => ours.forwardBackbone(batch));
      assert.ok(relativeError(y, mine) < 1e-4, `our trunk's, batch ${rows.shape[0]}`);
    }
    ours.dispose();
  });
}

test('a run directory (small stem, 1 channel): its trunk exported with its normalization; onnxruntime gives our features', async () => {
  const data = idxDataset(join(dir, 'idx'), 2);
  const config = join(dir, 'tiny.yaml');
  writeFileSync(
    config,
    `
data: { type: idx, path: ${data} }
crops: { nmb_crops: [2], size_crops: [12], min_scale_crops: [0.4], max_scale_crops: [1], mean: [0.3], std: [0.4] }
model: { arch: resnet18, stem: small, stem_stride: 2, width: 8, in_channels: 1, hidden_mlp: 16, feat_dim: 8, nmb_prototypes: 6 }
swav: { queue_length: 0 }
optim: { epochs: 1, batch_size: 8, warmup_epochs: 0 }
run: { threads: 1, out: ${join(dir, 'run')} }
`,
  );
  swav('train', '--config', config);
  const out = join(dir, 'run.onnx');
  assert.match(
    swav('export', '--onnx', '--weights', join(dir, 'run'), '--out', out),
    /resnet18 trunk, input image \[batch, 1, H, W\] -> features \[batch, 64\]/,
  );
  const meta = checked(out);
  assert.deepEqual([JSON.parse(meta.mean), JSON.parse(meta.std)], [[0.3], [0.4]]);
  const ck = torch.load(join(dir, 'run', 'checkpoint.pth'));
  const model = buildModel(JSON.parse(ck.config));
  model.loadStateDict(ck.state_dict);
  model.eval();
  const x = torch.randn([7, 1, 28, 28]);
  for (const [, batch] of batches(x)) {
    const y = await run(out, batch);
    assert.ok(
      relativeError(
        y,
        torch.noGrad(() => model.forwardBackbone(batch)),
      ) < 1e-4,
    );
  }
  model.dispose();
});
