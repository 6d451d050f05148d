// Image decoding against PIL (the reference's loader): JPEGs through libjpeg-turbo in the addon give PIL's pixels
// exactly; EXIF-rotated ones go to sharp and come out upright; broken files are refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { torch } from '../../src/index.js';
import { decodeRGB, exifOrientation } from '../../src/data/decode.js';
import { native } from '../../src/torch/native.js';
import { decode, golden, goldenDir } from '../helpers.js';

const g = golden('jpeg.json');
const pixels = (im: { data: Uint8Array; height: number; width: number }) => torch.fromBytes(im.data, [im.height, im.width, 3], 'uint8');

test('JPEGs (4:2:0, 4:4:4, grayscale) decode to the pixels PIL gives', async () => {
  assert.equal(typeof native.decodeJpeg, 'function', 'the addon is built with libjpeg here');
  for (const name of ['rgb420.jpg', 'rgb444.jpg', 'gray.jpg']) {
    const im = await decodeRGB(join(goldenDir, name));
    torch.tidy(() => assert.ok(pixels(im).equal(decode(g[name])), `${name}: not PIL's pixels`));
  }
});

test('an EXIF-rotated JPEG comes out upright (through sharp)', async () => {
  const file = join(goldenDir, 'rot6.jpg');
  assert.equal(exifOrientation(readFileSync(file)), 6);
  assert.equal(exifOrientation(readFileSync(join(goldenDir, 'rgb420.jpg'))), 1);
  const im = await decodeRGB(file);
  torch.tidy(() => {
    const want = decode(g['rot6.jpg']);
    assert.deepEqual([im.height, im.width, 3], want.shape);
    const diff = pixels(im).float().sub(want.float()).abs();
    assert.ok(diff.mean().item() < 1 && diff.max().item() <= 8, `rotated pixels differ: mean ${diff.mean().item()}`);
  });
});

test('a truncated or garbled JPEG is refused with an error, not decoded', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'swav-jpeg-'));
  const bytes = readFileSync(join(goldenDir, 'rgb444.jpg'));
  writeFileSync(join(dir, 'cut.jpg'), bytes.subarray(0, 300));
  writeFileSync(join(dir, 'noise.jpg'), Buffer.concat([bytes.subarray(0, 4), Buffer.alloc(500, 7)]));
  for (const f of ['cut.jpg', 'noise.jpg']) await assert.rejects(decodeRGB(join(dir, f)), Error, f);
  assert.throws(() => native.decodeJpeg!(new Uint8Array(bytes.subarray(0, 300))), /JPEG: /);
  // a header that claims 60000 x 60000 pixels is refused before anything is allocated
  const huge = new Uint8Array(bytes);
  for (let i = 2; i + 9 < huge.length; i++) {
    if (huge[i] === 0xff && (huge[i + 1] === 0xc0 || huge[i + 1] === 0xc2)) { // SOF: length(2) precision(1) height(2) width(2)
      huge.set([0xea, 0x60, 0xea, 0x60], i + 5);
      break;
    }
  }
  assert.throws(() => native.decodeJpeg!(huge), /too large/);
});
