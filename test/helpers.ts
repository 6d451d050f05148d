// Shared by the tests: golden files written by test/golden/make_golden.py, and tolerance checks.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { torch } from '../src/index.js';
import { root } from '../src/torch/native.js';
import type { Tensor } from '../src/torch/tensor.js';
import type { DType } from '../src/torch/dtype.js';

export { root };
export const goldenDir = join(root, 'test', 'golden', 'data');

export interface EncodedTensor {
  shape: number[];
  dtype: DType;
  data: string;
}

export function decode(e: EncodedTensor): Tensor {
  return torch.fromBytes(new Uint8Array(Buffer.from(e.data, 'base64')), e.shape, e.dtype);
}

export function golden(name: string): any {
  return JSON.parse(readFileSync(join(goldenDir, name), 'utf8'));
}

/** The Python with Debian's torch (python3-torch), as setup installs it. */
export function python(): string {
  for (const p of [process.env.SWAV_PYTHON, '/usr/bin/python3', 'python3'].filter(Boolean) as string[]) {
    try {
      execFileSync(p, ['-c', 'import torch, torchvision'], { stdio: 'ignore' });
      return p;
    } catch {
      /* next */
    }
  }
  throw new Error('no python3 with torch and torchvision: run `npm run setup` (installs python3-torch)');
}

/** The file the hostile fixtures' payloads would create if anything ran them. */
export const pwnedMarker = join(tmpdir(), 'swav-pwned-marker');

/** A directory of goldens too large to commit: written on first use by the project's PyTorch script. */
export function largeGoldens(flag: string, name: string): string {
  const dir = join(root, 'test', '.cache', 'golden', name);
  if (!existsSync(dir)) {
    // written aside and renamed into place, so that test files running in parallel never see half of it
    const tmp = `${dir}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    execFileSync(python(), [join(root, 'test', 'golden', 'make_golden.py'), flag, tmp], {
      stdio: 'inherit',
      env: { ...process.env, SWAV_PWNED_MARKER: pwnedMarker },
    });
    try {
      renameSync(tmp, dir);
    } catch (e) {
      if (!existsSync(dir)) throw e;
      rmSync(tmp, { recursive: true, force: true });
    }
  }
  return dir;
}

/** ||a - b|| / ||b|| over float64 copies (0 when both are zero). */
export function relativeError(a: Tensor, b: Tensor): number {
  return torch.tidy(() => {
    const x = a.double();
    const y = b.double();
    const den = y.norm().item();
    const num = x.sub(y).norm().item();
    return den === 0 ? num : num / den;
  });
}

export function assertClose(actual: Tensor, expected: Tensor, what: string, rtol = 1e-4): void {
  assert.deepEqual(actual.shape, expected.shape, `${what}: shape`);
  if (expected.dtype === 'bool' || expected.dtype.startsWith('int') || expected.dtype === 'uint8') {
    assert.equal(actual.dtype, expected.dtype, `${what}: dtype`);
    assert.ok(actual.equal(expected), `${what}: values differ`);
    return;
  }
  const err = relativeError(actual, expected);
  assert.ok(err <= rtol, `${what}: relative error ${err.toExponential(2)} > ${rtol}`);
}

/** A tiny IDX dataset (MNIST's format) in `dir`: n random 12 x 12 images from a seeded generator, labels i mod 3. */
export function idxDataset(dir: string, seed: number, n = 48): string {
  mkdirSync(dir, { recursive: true });
  const header = Buffer.from([0, 0, 8, 3, 0, 0, 0, n, 0, 0, 0, 12, 0, 0, 0, 12]);
  const pixels = Buffer.alloc(n * 144);
  let s = seed;
  for (let i = 0; i < pixels.length; i++) {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    pixels[i] = (s >> 16) & 255;
  }
  writeFileSync(join(dir, 'train-images-idx3-ubyte'), Buffer.concat([header, pixels]));
  writeFileSync(
    join(dir, 'train-labels-idx1-ubyte'),
    Buffer.concat([Buffer.from([0, 0, 8, 1, 0, 0, 0, n]), Buffer.from(Array.from({ length: n }, (_, i) => i % 3))]),
  );
  return dir;
}

/**
 * Two run directories' checkpoints are equal, bit for bit: counters, every weight and momentum buffer, and each of
 * the method's entries named (tensors compared exactly, other values as they are).
 */
export function assertSameCheckpoint(a: string, b: string, methodKeys: string[]): void {
  torch.tidy(() => {
    const x = torch.load(join(a, 'checkpoint.pth'));
    const y = torch.load(join(b, 'checkpoint.pth'));
    assert.deepEqual([x.epoch, x.iteration, x.epoch_iteration], [y.epoch, y.iteration, y.epoch_iteration]);
    for (const k of Object.keys(x.state_dict)) assert.ok(x.state_dict[k].equal(y.state_dict[k]), `state_dict ${k}`);
    for (const k of Object.keys(x.optimizer.state))
      assert.ok(x.optimizer.state[k].momentum_buffer.equal(y.optimizer.state[k].momentum_buffer), `momentum ${k}`);
    for (const k of methodKeys) {
      if (x[k] instanceof torch.Tensor) assert.ok(x[k].equal(y[k]), k);
      else assert.deepEqual(x[k], y[k], k);
    }
  });
}

/**
 * The tests' tiny SwAV run (a width-4 ResNet-18 on 12 px gray images, the queue from epoch 2): writes its YAML to
 * `file` for `data` (an idx directory) and returns `file`.
 */
export function tinySwavConfig(file: string, data: string, o: { epochs: number; logEvery: number }): string {
  writeFileSync(
    file,
    `
data: { type: idx, path: ${data} }
crops: { nmb_crops: [2, 2], size_crops: [12, 8], min_scale_crops: [0.4, 0.1], max_scale_crops: [1, 0.4], mean: [0.5], std: [0.25] }
model: { arch: resnet18, stem: small, width: 4, in_channels: 1, hidden_mlp: 8, feat_dim: 8, nmb_prototypes: 6 }
swav: { queue_length: 16, epoch_queue_starts: 1, freeze_prototypes_niters: 4 }
optim: { epochs: ${o.epochs}, batch_size: 8, base_lr: 0.5, final_lr: 0.01, warmup_epochs: 1, start_warmup: 0.1 }
run: { log_every: ${o.logEvery}, threads: 1 }
`,
  );
  return file;
}
