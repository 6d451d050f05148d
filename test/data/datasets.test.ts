// The binary dataset formats (IDX, CIFAR, STL-10): broken files are refused with a DatasetError naming the file,
// before anything is allocated for what their headers claim. Each case was a fuzz finding (test/fuzz/).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { DatasetError, openDataset, type DatasetSpec } from '../../src/data/datasets.js';
import { idxDataset } from '../helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'swav-datasets-'));
const IMAGES = 'train-images-idx3-ubyte';
const LABELS = 'train-labels-idx1-ubyte';

/** A folder of these files. */
function folder(name: string, files: Record<string, Uint8Array>): string {
  const dir = join(tmp, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir);
  for (const [f, b] of Object.entries(files)) writeFileSync(join(dir, f), b);
  return dir;
}

function refused(spec: DatasetSpec, file: string, message: RegExp): void {
  assert.throws(
    () => openDataset(spec),
    (e: Error) => e instanceof DatasetError && e.message.startsWith(join(spec.path, file)) && message.test(e.message),
  );
}

const idxHeader = (...dims: number[]) => {
  const b = Buffer.alloc(4 + 4 * dims.length);
  b.set([0, 0, 8, dims.length]);
  dims.forEach((d, i) => b.writeUInt32BE(d, 4 + 4 * i));
  return b;
};
const idx = (dir: string) => ({ type: 'idx' as const, path: dir, split: 'train' });

test('IDX: a header shorter than its dimensions, and dimensions that multiply past 2^53, are truncated files', () => {
  // the dimensions were read past the end of the file: a RangeError
  refused(
    idx(folder('short-header', { [IMAGES]: idxHeader(6, 12, 12).subarray(0, 10) })),
    IMAGES,
    /truncated \(a header of 3 dimensions needs 16 bytes, the file has 10\)/,
  );
  const huge = 0xffffffff;
  refused(idx(folder('huge', { [IMAGES]: idxHeader(huge, huge, huge) })), IMAGES, /truncated \(0 of 79228162458924105385300197375 bytes\)/);
});

test('IDX: images of no pixels are refused (their count, unchecked by any data, was allocated as labels: 16 GB)', () => {
  refused(
    idx(folder('no-pixels', { [IMAGES]: idxHeader(0xffffffff, 0, 12) })),
    IMAGES,
    /expected N x H x W images, got dimensions \[4294967295, 0, 12\]/,
  );
});

test('IDX: labels must be one per image (a 0-d file said "0 images but undefined labels")', () => {
  const good = idxDataset(join(tmp, 'good-idx'), 3, 4);
  const images = readFileSync(join(good, IMAGES));
  refused(
    idx(folder('labels-0d', { [IMAGES]: images, [LABELS]: Buffer.concat([idxHeader(), Buffer.from([4])]) })),
    LABELS,
    /expected one label per image, got dimensions \[\]/,
  );
  refused(
    idx(folder('labels-2d', { [IMAGES]: images, [LABELS]: Buffer.concat([idxHeader(4, 2), Buffer.alloc(8)]) })),
    LABELS,
    /got dimensions \[4, 2\]/,
  );
  const ok = openDataset(idx(good));
  assert.deepEqual([ok.length, ...ok.labels], [4, 0, 1, 2, 0]);
  if (ok.kind === 'tensor') ok.images.dispose();
});

test("a corrupt gzip file is named (zlib's 'incorrect header check' said nothing of which file)", () => {
  const gz = gzipSync(Buffer.alloc(100));
  gz[9] ^= 0xff;
  gz[12] ^= 0xff;
  refused(idx(folder('bad-gz', { [`${IMAGES}.gz`]: gz })), `${IMAGES}.gz`, /a corrupt gzip file \(.+\)/);
});

test('CIFAR: labels beyond the classes are refused (they were returned as labels 212 of 10 classes)', () => {
  const record = (labels: number[]) => Buffer.concat([Buffer.from(labels), Buffer.alloc(3072)]);
  const cifar10 = (dir: string) => ({ type: 'cifar10' as const, path: dir, split: 'test' });
  const cifar100 = (dir: string) => ({ type: 'cifar100' as const, path: dir, split: 'test' });
  refused(
    cifar10(folder('c10', { 'test_batch.bin': Buffer.concat([record([3]), record([212])]) })),
    'test_batch.bin',
    /record 1 has label 212, not one of the 10 classes/,
  );
  refused(
    cifar100(folder('c100-coarse', { 'test.bin': record([25, 3]) })),
    'test.bin',
    /record 0 has label 25, not one of the 20 coarse classes/,
  );
  refused(
    cifar100(folder('c100-fine', { 'test.bin': record([19, 100]) })),
    'test.bin',
    /record 0 has label 100, not one of the 100 classes/,
  );
  const ok = openDataset(cifar100(folder('c100', { 'test.bin': record([19, 99]) })));
  assert.deepEqual([...ok.labels], [99]);
  if (ok.kind === 'tensor') ok.images.dispose();
});

test('STL-10: one label per image, each 1 to 10 (22 labels for 2 images were returned as they were)', () => {
  const images = Buffer.alloc(2 * 3 * 96 * 96);
  const stl = (dir: string) => ({ type: 'stl10' as const, path: dir, split: 'test' });
  refused(stl(folder('stl-count', { 'test_X.bin': images, 'test_y.bin': Buffer.alloc(22, 1) })), 'test_y.bin', /22 labels for 2 images/);
  refused(
    stl(folder('stl-label', { 'test_X.bin': images, 'test_y.bin': Buffer.from([1, 16]) })),
    'test_y.bin',
    /label 16 of image 1 is not one of the classes 1 to 10/,
  );
  refused(stl(folder('stl-zero', { 'test_X.bin': images, 'test_y.bin': Buffer.from([0, 1]) })), 'test_y.bin', /label 0 of image 0/);
  const ok = openDataset(stl(folder('stl', { 'test_X.bin': images, 'test_y.bin': Buffer.from([1, 10]) })));
  assert.deepEqual([...ok.labels], [0, 9]);
  if (ok.kind === 'tensor') ok.images.dispose();
});
