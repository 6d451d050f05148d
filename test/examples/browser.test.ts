// The browser example (examples/browser/) in headless Chromium (Debian's, driven by playwright-core): a tiny run
// exported with its gallery (`swav export --onnx --gallery`), served by the example's server, an image dropped on
// the page, another chosen in its file input. The page's input equals the Node side's preprocessing (a training
// image as it is; a larger photo resized by the browser, within a few gray levels); the features it computed with
// onnxruntime-web equal onnxruntime-node's on that input, and the trunk's at export, within 1e-4; the training
// image's own prototype comes first, led by that image; paths outside the server's roots are 404s.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { chromium, type Page } from 'playwright-core';
import sharp from 'sharp';
import { torch } from '../../src/index.js';
import type { Tensor } from '../../src/torch/tensor.js';
import { openDataset } from '../../src/data/datasets.js';
import { resizeCenterCrop } from '../../src/data/image.js';
import { evalBatches } from '../../src/data/loader.js';
import type { BrowserGallery } from '../../src/export/gallery.js';
import { idxDataset, relativeError, root, tinySwavConfig } from '../helpers.js';

const CHROMIUM = [process.env.CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => p && existsSync(p));
const artifacts = join(root, 'test', '.artifacts');
const dir = mkdtempSync(join(tmpdir(), 'swav-browser-'));
const cli = join(root, 'dist/src/cli/main.js');
const web = join(dir, 'web');

const swav = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });

/** What the page computed for an image. */
interface PageResult {
  name: string;
  input: number[];
  features: number[];
  prototypes: number[];
}

/** What the page computes for the image `file`, dropped on it or chosen in its file input. */
async function given(page: Page, file: string, how: 'drop' | 'input'): Promise<PageResult> {
  const name = basename(file);
  if (how === 'input') await page.setInputFiles('#file', file);
  else {
    const dataTransfer = await page.evaluateHandle(
      ({ bytes, name }) => {
        const dt = new DataTransfer();
        dt.items.add(new File([new Uint8Array(bytes)], name, { type: 'image/png' }));
        return dt;
      },
      { bytes: [...readFileSync(file)], name },
    );
    await page.dispatchEvent('#drop', 'drop', { dataTransfer });
  }
  await page.waitForFunction((n) => (window as unknown as { swavResult?: PageResult }).swavResult?.name === n, name, { timeout: 30_000 });
  return (await page.evaluate('window.swavResult')) as PageResult;
}

/** onnxruntime-node's features of one input. */
async function nodeFeatures(session: ort.InferenceSession, input: number[], shape: number[]): Promise<Tensor> {
  const { features } = await session.run({ image: new ort.Tensor('float32', Float32Array.from(input), shape) });
  return torch.tensor(Array.from(features.data as Float32Array));
}

/** The largest difference between two lists of numbers. */
function maxDiff(a: number[], b: number[]): number {
  assert.equal(a.length, b.length);
  return Math.max(...a.map((x, i) => Math.abs(x - b[i])));
}

test('export --gallery: --out outside the gallery directory is a usage error, before anything is read', () => {
  const r = swav('export', '--onnx', '--weights', join(dir, 'nothing'), '--out', join(dir, 'model.onnx'), '--gallery', web);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--out .*model\.onnx must be inside --gallery .*web \(the browser example serves that directory alone\)/);
  assert.ok(!existsSync(web));
});

test('the browser example embeds a dropped image as onnxruntime-node does and shows its nearest prototypes', {
  skip: CHROMIUM ? false : 'no Chromium found (/usr/bin/chromium or $CHROMIUM): apt-get install chromium',
}, async (t) => {
  const data = idxDataset(join(dir, 'idx'), 11);
  const trained = swav(
    'train',
    '--config',
    tinySwavConfig(join(dir, 'tiny.yaml'), data, { epochs: 2, logEvery: 2 }),
    `run.out=${join(dir, 'run')}`,
  );
  assert.equal(trained.status, 0, trained.stderr);
  const exported = swav('export', '--onnx', '--weights', join(dir, 'run'), '--out', join(web, 'model.onnx'), '--gallery', web);
  assert.equal(exported.status, 0, exported.stderr);
  assert.match(exported.stderr, /gallery\.json, features\.f32 and images\/ of 48 training images, \d prototypes picked/);
  const gallery = JSON.parse(readFileSync(join(web, 'gallery.json'), 'utf8')) as BrowserGallery;
  assert.deepEqual(gallery.input, { channels: 1, resize: 12, height: 12, width: 12, mean: [0.5], std: [0.25] });
  const { rows, dim } = gallery.features;
  assert.deepEqual([gallery.model, rows, gallery.images.length], ['model.onnx', 48, 48]);
  assert.equal(statSync(join(web, 'features.f32')).size, rows * dim * 4);
  const galleryFeatures = torch.fromBytes(new Uint8Array(readFileSync(join(web, 'features.f32'))), [rows, dim], 'float32');

  // training image 5 as a 12 x 12 PNG, and the Node side's preprocessing of it (the evaluation batches')
  const idx = readFileSync(join(data, 'train-images-idx3-ubyte'));
  const raw = { width: 12, height: 12, channels: 1 } as const;
  await sharp(idx.subarray(16 + 5 * 144, 16 + 6 * 144), { raw })
    .png()
    .toFile(join(dir, 'five.png'));
  let nodeInput: number[] = [];
  for await (const b of evalBatches(openDataset({ type: 'idx', path: data }), { batch: 1, mean: [0.5], std: [0.25], range: [5, 6] })) {
    nodeInput = Array.from(b.images.toTypedArray() as Float32Array);
  }
  // a larger photo, gray pixels stored as RGB: resized and cropped by the browser (its own resampling), by sharp here
  const photo = Buffer.alloc(40 * 30 * 3);
  for (let i = 0; i < 40 * 30; i++) photo.fill(20 + 3 * (i % 40) + 2 * Math.floor(i / 40), 3 * i, 3 * i + 3);
  await sharp(photo, { raw: { width: 40, height: 30, channels: 3 } })
    .png()
    .toFile(join(dir, 'photo.png'));
  const cropped = await resizeCenterCrop(join(dir, 'photo.png'), 12, 12);
  const photoInput = Array.from({ length: 144 }, (_, i) => (cropped.data[3 * i] / 255 - 0.5) / 0.25);

  const server = spawn(process.execPath, [join(root, 'examples/browser/serve.mjs'), '--dir', web, '--port', '0'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--disable-dev-shm-usage'] });
  const session = await ort.InferenceSession.create(join(web, 'model.onnx'));
  t.after(async () => {
    await browser.close();
    await session.release();
    server.kill();
  });
  const base = await listening(server);
  const page = await browser.newPage({ viewport: { width: 1000, height: 900 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('requestfailed', (r) => errors.push(`${r.url()}: ${r.failure()?.errorText}`));
  await page.goto(base);
  await page.waitForFunction(() => document.body.dataset.state, undefined, { timeout: 30_000 });
  assert.match((await page.textContent('#status')) ?? '', /^ready: gray 12 x 12 input, 48 training images/);

  const five = await given(page, join(dir, 'five.png'), 'drop');
  assert.ok(maxDiff(five.input, nodeInput) < 1e-6, `the page's input is the training image's: ${maxDiff(five.input, nodeInput)}`);
  const inNode = await nodeFeatures(session, five.input, [1, 1, 12, 12]);
  const err = relativeError(torch.tensor(five.features), inNode);
  const atExport = relativeError(torch.normalize(torch.tensor(five.features), 2, 0), galleryFeatures.select(0, 5));
  t.diagnostic(
    `training image 5: onnxruntime-web's features vs onnxruntime-node's, relative difference ${err.toExponential(2)}; ` +
      `vs the trunk's at export (normalized) ${atExport.toExponential(2)}`,
  );
  assert.ok(err < 1e-4, `onnxruntime-node's features: ${err}`);
  assert.ok(atExport < 1e-4, `the trunk's at export: ${atExport}`);

  assert.equal(five.prototypes[0], gallery.images[5].prototype, "the image's own prototype first");
  const shown = await page.locator('.prototype').count();
  assert.equal(shown, Math.min(5, new Set(gallery.images.map((i) => i.prototype)).size));
  assert.equal(await page.getAttribute('.prototype figure.nearest img', 'data-row'), '5', 'led by the image itself');
  await page.waitForFunction(() =>
    [...document.querySelectorAll<HTMLImageElement>('.prototype img')].every((i) => i.complete && i.naturalWidth > 0),
  );
  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: join(artifacts, 'browser-example.png'), fullPage: true });

  const p = await given(page, join(dir, 'photo.png'), 'input');
  const levels = maxDiff(p.input, photoInput) * 0.25 * 255;
  t.diagnostic(`a 40 x 30 photo resized by the browser and by sharp: ${levels.toFixed(2)} gray levels apart at most`);
  assert.ok(levels <= 2, `the browser's resize and crop are sharp's, within 2 gray levels: ${levels}`);
  const photoErr = relativeError(torch.tensor(p.features), await nodeFeatures(session, p.input, [1, 1, 12, 12]));
  assert.ok(photoErr < 1e-4, `onnxruntime-node's features of the photo: ${photoErr}`);
  assert.deepEqual(errors, []);

  for (const path of ['ort/ort.wasm.min.mjs', 'export/gallery.json', 'main.js'])
    assert.equal((await fetch(`${base}${path}`)).status, 200, path);
  for (const path of [
    'export/..%2fidx%2ftrain-images-idx3-ubyte',
    'export/%2e%2e/run/checkpoint.pth',
    'ort/..%2fpackage.json',
    '..%2f..%2fpackage.json',
    '%2e%2e%2f%2e%2e%2fpackage.json',
    'export/%2fetc%2fpasswd',
    'export/..%5c..%5cetc%5cpasswd',
    'export/%00',
    'export/images',
    'nope.html',
  ]) {
    assert.equal((await fetch(`${base}${path}`)).status, 404, path);
  }
});

/** The URL the example's server prints once it listens. */
function listening(server: ChildProcess): Promise<string> {
  return new Promise((done, fail) => {
    let out = '';
    server.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
      if (m) done(m[1]);
    });
    server.once('exit', (code) => fail(new Error(`the example's server exited (${code}): ${out}`)));
  });
}
