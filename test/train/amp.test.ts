// bfloat16 autocast training follows the float32 loss curve: the same run, iteration by iteration.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { root } from '../helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'swav-amp-'));

// Per-iteration losses of two precisions drift apart as training is chaotic, so the curve is compared per epoch.
test('a bf16 run follows the fp32 loss curve: first iteration within 1%, every epoch mean within 5%, the last within 3%', () => {
  const data = join(dir, 'idx');
  mkdirSync(data);
  const n = 256;
  const pixels = Buffer.alloc(n * 256);
  // smooth random images (low-frequency patterns), so that the crops carry something to learn
  for (let i = 0; i < n; i++) {
    const a = (i * 0.37) % 3;
    const b = (i * 0.61) % 2;
    for (let y = 0; y < 16; y++)
      for (let x = 0; x < 16; x++) pixels[i * 256 + y * 16 + x] = Math.round(127.5 + 127 * Math.sin((a * x) / 3 + (b * y) / 2 + i));
  }
  writeFileSync(
    join(data, 'train-images-idx3-ubyte'),
    Buffer.concat([Buffer.from([0, 0, 8, 3, 0, 0, n >> 8, n & 255, 0, 0, 0, 16, 0, 0, 0, 16]), pixels]),
  );
  const config = join(dir, 'amp.yaml');
  writeFileSync(
    config,
    `
data: { type: idx, path: ${data} }
crops: { nmb_crops: [2, 2], size_crops: [16, 8], min_scale_crops: [0.4, 0.1], max_scale_crops: [1, 0.4], mean: [0.5], std: [0.25] }
model: { arch: resnet18, stem: small, width: 16, in_channels: 1, hidden_mlp: 32, feat_dim: 16, nmb_prototypes: 10 }
swav: { freeze_prototypes_niters: 5 }
optim: { epochs: 4, batch_size: 32, base_lr: 1.0, final_lr: 0.01, warmup_epochs: 0 }
run: { log_every: 1, threads: 2 }
`,
  );
  const losses = (amp: string) => {
    const out = join(dir, amp);
    const r = spawnSync(
      process.execPath,
      [join(root, 'dist/src/cli/main.js'), 'train', '--config', config, `run.out=${out}`, `run.amp=${amp}`],
      { encoding: 'utf8' },
    );
    assert.equal(r.status, 0, r.stderr);
    return readFileSync(join(out, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((m) => m.type === 'train')
      .map((m) => m.loss as number);
  };
  const fp32 = losses('fp32');
  const bf16 = losses('bf16');
  assert.equal(fp32.length, 32);
  assert.equal(bf16.length, fp32.length);
  const relative = (a: number, b: number) => Math.abs(a - b) / b;
  assert.ok(relative(bf16[0], fp32[0]) <= 0.01, `first iteration: ${bf16[0]} vs ${fp32[0]}`);
  const epochMeans = (l: number[]) => [0, 1, 2, 3].map((e) => l.slice(e * 8, e * 8 + 8).reduce((a, b) => a + b) / 8);
  const e32 = epochMeans(fp32);
  const e16 = epochMeans(bf16);
  e32.forEach((l, e) =>
    assert.ok(
      relative(e16[e], l) <= (e === 3 ? 0.03 : 0.05),
      `epoch ${e + 1}: mean loss ${e16[e].toFixed(4)} (bf16) vs ${l.toFixed(4)} (fp32)`,
    ),
  );
  assert.ok(fp32[fp32.length - 1] < fp32[0] - 0.05 && bf16[bf16.length - 1] < bf16[0] - 0.05, 'both learn');
});
