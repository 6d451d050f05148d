// Image decoding against PIL (the reference's loader): JPEGs through libjpeg-turbo in the addon give PIL's pixels
// exactly; EXIF-rotated ones go to sharp and come out upright; broken files are refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { torch } from '../../src/index.js';
import sharp from 'sharp';
import { MAX_PIXELS, decodeRGB, exifOrientation } from '../../src/data/decode.js';
import { native } from '../../src/torch/native.js';
import { decode, golden, goldenDir, root } from '../helpers.js';

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
    if (huge[i] === 0xff && (huge[i + 1] === 0xc0 || huge[i + 1] === 0xc2)) {
      // SOF: length(2) precision(1) height(2) width(2)
      huge.set([0xea, 0x60, 0xea, 0x60], i + 5);
      break;
    }
  }
  assert.throws(() => native.decodeJpeg!(huge), /too large/);
});

/** A JPEG's bytes with the frame header (SOF) claiming another size: the data no longer covers it. */
function claiming(bytes: Uint8Array, height: number, width: number): Buffer {
  const b = Buffer.from(bytes);
  for (let at = 2; at + 9 < b.length; at += 2 + b.readUInt16BE(at + 2)) {
    if (b[at + 1] === 0xc0 || b[at + 1] === 0xc2) {
      b.writeUInt16BE(height, at + 5);
      b.writeUInt16BE(width, at + 7);
      break;
    }
  }
  return b;
}

test("fuzz finding: a 1 KB JPEG claiming 16383 x 16383 pixels is refused at PIL's limit (it decoded to 805 MB of gray, in 6 s at 2.5 GB)", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'swav-jpeg-'));
  const rgb = await sharp(join(goldenDir, 'rgb444.jpg')).raw().toBuffer({ resolveWithObject: true });
  const progressive = await sharp(rgb.data, { raw: { width: rgb.info.width, height: rgb.info.height, channels: 3 } })
    .jpeg({ progressive: true, chromaSubsampling: '4:4:4' })
    .toBuffer();
  writeFileSync(join(dir, 'bomb.jpg'), claiming(progressive, 16383, 16383));
  assert.ok(progressive.length < 2048);
  assert.throws(() => native.decodeJpeg!(readFileSync(join(dir, 'bomb.jpg'))), /too large \(over 178956970 pixels\)/);
  await assert.rejects(decodeRGB(join(dir, 'bomb.jpg')), /pixel limit/);
  assert.equal(MAX_PIXELS, 2 * 89478485, "PIL's DecompressionBombError threshold");
});

test('fuzz finding: libjpeg stops at the first warning, not filling a corrupt 13377 x 13377 image with gray (537 MB) first', () => {
  const dir = mkdtempSync(join(tmpdir(), 'swav-jpeg-'));
  writeFileSync(join(dir, 'gray.jpg'), claiming(readFileSync(join(goldenDir, 'rgb420.jpg')), 13377, 13377));
  // in a process of its own, so that its peak resident size is the decode's
  const script = `import { readFileSync } from 'node:fs';
    const { native } = await import(${JSON.stringify(join(root, 'dist', 'src', 'torch', 'native.js'))});
    const before = process.memoryUsage().rss;
    try { native.decodeJpeg(readFileSync(${JSON.stringify(join(dir, 'gray.jpg'))})); } catch (e) { console.log(e.message); }
    console.log(Math.round((process.resourceUsage().maxRSS * 1024 - before) / 2 ** 20));`;
  const [message, grownMiB] = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' })
    .trim()
    .split('\n');
  assert.match(message, /^JPEG: Corrupt JPEG data: premature end of data segment/);
  assert.ok(Number(grownMiB) < 100, `the decode grew the process by ${grownMiB} MiB`);
});
