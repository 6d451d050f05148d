// `swav extract` on fixtures written by PyTorch: zip and legacy files, resnet18 and resnet50, with "module."
// prefixes, projection head and prototypes; hostile files end in an ordinary error exit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, mkdirSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { torch } from '../../src/index.js';
import { assertClose, largeGoldens, python, pwnedMarker } from '../helpers.js';

const dir = largeGoldens('--checkpoints', 'checkpoints');
const out = mkdtempSync(join(tmpdir(), 'swav-extract-'));
const swav = (...args: string[]) => spawnSync(process.execPath, ['dist/src/cli/main.js', ...args], { encoding: 'utf8' });

for (const arch of ['resnet18', 'resnet50']) {
  for (const file of [`${arch}_zip.pth`, `${arch}_legacy.pth.tar`]) {
    test(`extract --arch ${arch} --weights ${file}: PyTorch's features`, () => {
      const f = join(out, `${file}.npy`);
      const r = swav(
        'extract',
        '--arch',
        arch,
        '--weights',
        join(dir, file),
        '--input',
        join(dir, 'images.npy'),
        '--out',
        f,
        '--batch',
        '3',
      );
      assert.equal(r.status, 0, r.stderr);
      torch.tidy(() => assertClose(torch.load(f), torch.load(join(dir, `${arch}_features.npy`)), `${arch} features`));
    });
  }
}

test('extract refuses hostile and broken weights with an error exit, and runs nothing', () => {
  for (const file of [
    'evil_zip.pth',
    'evil_legacy.pth',
    'evil_eval.pth',
    'truncated_zip.pth',
    'truncated_legacy.pth.tar',
    'short_storage.pth',
    'random.pth',
  ]) {
    const r = swav(
      'extract',
      '--arch',
      'resnet18',
      '--weights',
      join(dir, file),
      '--input',
      join(dir, 'images.npy'),
      '--out',
      join(out, 'x.npy'),
    );
    assert.equal(r.status, 1, `${file}: ${r.stderr}`);
    assert.match(r.stderr, /^swav: error: /, file);
    assert.ok(!r.stderr.includes('    at '), `${file}: no stack trace for a user error`);
  }
  assert.ok(!existsSync(pwnedMarker), 'a payload ran');
  const wrong = swav(
    'extract',
    '--arch',
    'resnet50',
    '--weights',
    join(dir, 'resnet18_zip.pth'),
    '--input',
    join(dir, 'images.npy'),
    '--out',
    join(out, 'x.npy'),
  );
  assert.equal(wrong.status, 1);
  assert.match(wrong.stderr, /holds a resnet18, not a resnet50/);
  const missing = swav(
    'extract',
    '--arch',
    'resnet18',
    '--weights',
    join(out, 'nope.pth'),
    '--input',
    join(dir, 'images.npy'),
    '--out',
    join(out, 'x.npy'),
  );
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /--weights .*nope\.pth is neither a file nor a zoo name/);
});

test('extract --data DIR: a folder of images (resize 256, center crop 224), a corrupt one skipped', () => {
  const images = join(out, 'images');
  mkdirSync(join(images, 'cats'), { recursive: true });
  execFileSync(python(), [
    '-c',
    `
import numpy as np
from PIL import Image
rng = np.random.default_rng(0)
for i in range(3):
    Image.fromarray(rng.integers(0, 255, (300 + 10 * i, 280, 3), dtype=np.uint8)).save('${images}/cats/img%d.jpg' % i)
Image.fromarray(rng.integers(0, 255, (240, 320), dtype=np.uint8)).save('${images}/gray.png')
`,
  ]);
  writeFileSync(join(images, 'broken.jpg'), 'not an image');
  copyFileSync(join(images, 'cats', 'img0.jpg'), join(images, 'copy.jpg'));
  const f = join(out, 'folder.npy');
  const r = swav('extract', '--arch', 'resnet18', '--weights', join(dir, 'resnet18_zip.pth'), '--data', images, '--out', f, '--batch', '2');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /skipped .*broken\.jpg/);
  torch.tidy(() => {
    const feats = torch.load(f);
    assert.deepEqual(feats.shape, [5, 512]);
    const files = readFileSync(join(out, 'folder.files.txt'), 'utf8').trim().split('\n');
    assert.equal(files.length, 5);
    const a = files.indexOf(join(images, 'cats', 'img0.jpg'));
    const b = files.indexOf(join(images, 'copy.jpg'));
    assert.ok(feats.index(a).allclose(feats.index(b)), 'the same image gives the same features');
  });
});
