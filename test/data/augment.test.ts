// Multi-crop against torchvision: the distribution of crop scales and aspects, flip / jitter / grayscale / blur
// rates, jitter factors (within sampling error of torchvision's own draws), and the pixel operations.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { torch } from '../../src/index.js';
import { Rng } from '../../src/data/rng.js';
import { sampleCropBox, sampleCrops, REFERENCE_MULTICROP } from '../../src/data/multicrop.js';
import { colorAugment, cropResize, resizedCropInto, type Schedule } from '../../src/data/augment.js';
import type { ColorParams } from '../../src/data/multicrop.js';
import { assertClose, decode, golden } from '../helpers.js';

const g = golden('augment.json');
const N = g.n as number;
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const std = (xs: number[]) => Math.sqrt(mean(xs.map((x) => (x - mean(xs)) ** 2)));

/** |a - b| within 5 standard errors of the difference of two means of n samples each. */
function sameMean(a: number, b: number, sd: number, n: number, what: string): void {
  const se = sd * Math.sqrt(2 / n);
  assert.ok(Math.abs(a - b) <= 5 * se + 1e-9, `${what}: ${a.toFixed(5)} vs torchvision ${b.toFixed(5)} (5 SE = ${(5 * se).toFixed(5)})`);
}

test("RandomResizedCrop: scale and aspect distributions match torchvision's", () => {
  const rng = new Rng(1);
  for (const c of g.crops) {
    const area: number[] = [];
    const logr: number[] = [];
    for (let i = 0; i < N; i++) {
      const b = sampleCropBox(rng, 375, 500, c.scale, [3 / 4, 4 / 3]);
      assert.ok(b.top >= 0 && b.left >= 0 && b.top + b.height <= 375 && b.left + b.width <= 500);
      area.push((b.height * b.width) / (375 * 500));
      logr.push(Math.log(b.width / b.height));
    }
    sameMean(mean(area), c.area_mean, c.area_std, N, `area fraction, scale ${c.scale}`);
    sameMean(mean(logr), c.logr_mean, c.logr_std, N, `log aspect, scale ${c.scale}`);
    assert.ok(Math.abs(std(area) - c.area_std) < 0.05 * c.area_std, `area spread, scale ${c.scale}`);
    assert.ok(Math.abs(std(logr) - c.logr_std) < 0.05 * c.logr_std, `aspect spread, scale ${c.scale}`);
  }
});

test('flip, jitter, grayscale and blur rates, and the jitter factors, as the reference sets them', () => {
  const rng = new Rng(2);
  const all = Array.from({ length: N / 2 }, () => sampleCrops(rng, 375, 500, REFERENCE_MULTICROP)).flat();
  const n = all.length;
  const rate = (f: (p: (typeof all)[0]) => boolean) => all.filter(f).length / n;
  const checkRate = (r: number, p: number, what: string) =>
    assert.ok(Math.abs(r - p) <= 5 * Math.sqrt((p * (1 - p)) / n), `${what}: ${r.toFixed(4)} vs ${p}`);
  checkRate(
    rate((p) => p.flip),
    0.5,
    'flip',
  );
  checkRate(
    rate((p) => p.jitter !== null),
    0.8,
    'jitter',
  );
  checkRate(
    rate((p) => p.grayscale),
    0.2,
    'grayscale',
  );
  checkRate(
    rate((p) => p.blur !== null),
    0.5,
    'blur',
  );
  const blurs = all.flatMap((p) => (p.blur === null ? [] : [p.blur]));
  assert.ok(Math.min(...blurs) >= 0.1 && Math.max(...blurs) <= 2.0, 'blur radius in [0.1, 2]');
  sameMean(mean(blurs), 1.05, 1.9 / Math.sqrt(12), blurs.length, 'blur radius ~ U[0.1, 2]');
  const jit = all.flatMap((p) => (p.jitter ? [p.jitter] : []));
  for (const k of ['brightness', 'contrast', 'saturation', 'hue'] as const) {
    const [m, sd] = g.jitter[k];
    sameMean(mean(jit.map((j) => j[k])), m, sd, Math.min(jit.length, N), `${k} factor`);
  }
  const orders = new Set(jit.map((j) => j.order.join('')));
  assert.equal(orders.size, 24, 'every order of the four jitter operations occurs');
  const sizes = all.map((p) => p.size);
  assert.equal(sizes.filter((s) => s === 224).length * 3, sizes.filter((s) => s === 96).length, '2 large crops for 6 small ones');
});

test('the same seed, epoch and index give the same crops; another index others', () => {
  const a = sampleCrops(new Rng(31, 4, 1234), 100, 120, REFERENCE_MULTICROP);
  const b = sampleCrops(new Rng(31, 4, 1234), 100, 120, REFERENCE_MULTICROP);
  const c = sampleCrops(new Rng(31, 4, 1235), 100, 120, REFERENCE_MULTICROP);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
});

for (const schedule of ['rows', 'crops'] as Schedule[]) {
  test(`pixel operations equal torchvision's functional ops on tensors (${schedule})`, () => {
    const p = g.pixels;
    torch.tidy(() => {
      const x = decode(p.x);
      const only = (op: number, f: number[]): ColorParams[] =>
        f.map((v) => ({
          jitter: {
            order: [op, ...[0, 1, 2, 3].filter((o) => o !== op)],
            brightness: op === 0 ? v : 1,
            contrast: op === 1 ? v : 1,
            saturation: op === 2 ? v : 1,
            hue: op === 3 ? v : 0,
          },
          grayscale: false,
          blur: null,
        }));
      assertClose(colorAugment(x, only(0, p.factors), schedule), decode(p.brightness), 'brightness', 1e-6);
      assertClose(colorAugment(x, only(1, p.factors), schedule), decode(p.contrast), 'contrast', 1e-6);
      assertClose(colorAugment(x, only(2, p.factors), schedule), decode(p.saturation), 'saturation', 1e-6);
      assertClose(colorAugment(x, only(3, p.hue), schedule), decode(p.hue_out), 'hue', 1e-5);
      const grayRows = [0, 1, 2, 3].map(() => ({ jitter: null, grayscale: true, blur: null }));
      assertClose(colorAugment(x, grayRows, schedule), decode(p.grayscale), 'grayscale', 1e-6);
      // rows without an op are left exactly as they are
      const mixed = only(3, p.hue).map((q, i) => (i % 2 ? { jitter: null, grayscale: i === 3, blur: null } : q));
      const out = colorAugment(x, mixed, schedule);
      assert.ok(out.index(1).equal(x.index(1)), 'a row without jitter, grayscale or blur is unchanged');
      assertClose(out.index(3), decode(p.grayscale).index(3), 'grayscale beside hue', 1e-6);
      assertClose(out.index(2), decode(p.hue_out).index(2), 'hue beside grayscale', 1e-5);
    });
  });
}

test("crops and resizes equal torchvision's resized_crop: in one grid_sample, and one crop at a time from either layout", () => {
  const p = g.pixels;
  torch.tidy(() => {
    const x = decode(p.x);
    const [top, left, h, w] = p.crop_box;
    const box = { top, left, height: h, width: w };
    for (const flip of [false, true]) {
      const want = decode(flip ? p.resized_crop_flip : p.resized_crop);
      assertClose(cropResize(x, [box, box, box, box], p.crop_size, [flip, flip, flip, flip]), want, `grid_sample crop, flip ${flip}`, 1e-5);
      for (const source of [x, x.contiguous('channelsLast')]) {
        const out = torch.empty([4, 3, p.crop_size, p.crop_size]);
        for (let i = 0; i < 4; i++) resizedCropInto(source.narrow(0, i, 1), box, flip, out.narrow(0, i, 1));
        assertClose(out, want, `resized crop into rows, flip ${flip}`, 1e-5);
      }
    }
  });
});

test('blur keeps the mean and lowers the variance; an image of one color stays as it is', () => {
  torch.tidy(() => {
    torch.manualSeed(0);
    const x = torch.rand([2, 3, 16, 16]);
    const blurred = colorAugment(x, [
      { jitter: null, grayscale: false, blur: 1.5 },
      { jitter: null, grayscale: false, blur: 0.1 },
    ]);
    assert.ok(Math.abs(blurred.index(0).mean().item() - x.index(0).mean().item()) < 0.02);
    assert.ok(blurred.index(0).std().item() < 0.5 * x.index(0).std().item());
    assert.ok(blurred.index(1).allclose(x.index(1), 1e-4, 1e-4), 'radius 0.1 barely changes anything');
    const flat = torch.full([1, 3, 8, 8], 0.25);
    assert.ok(colorAugment(flat, [{ jitter: null, grayscale: false, blur: 2 }]).allclose(flat, 1e-5, 1e-6));
  });
});

test('a batch with each sample in its own jitter order, grayscale and blur equals each sample augmented alone, by rows and by crops', () => {
  torch.tidy(() => {
    torch.manualSeed(1);
    const x = torch.rand([12, 3, 20, 20]);
    const rng = new Rng(7, 0, 0);
    const params: ColorParams[] = Array.from({ length: 12 }, () => sampleCrops(rng, 40, 40, REFERENCE_MULTICROP)[0]);
    assert.ok(new Set(params.map((p) => p.jitter?.order.join(''))).size > 3, 'several orders in the batch');
    assert.ok(params.some((p) => p.blur !== null) && params.some((p) => p.blur === null) && params.some((p) => p.grayscale));
    const live = torch.liveTensors();
    const byRows = colorAugment(x, params, 'rows');
    assert.equal(torch.liveTensors(), live + 1, 'only the result is left alive');
    const byCrops = colorAugment(x, params, 'crops');
    params.forEach((p, i) => {
      const alone = colorAugment(x.index(`${i}:${i + 1}`), [p], 'crops').index(0);
      assertClose(byRows.index(i), alone, `sample ${i} by rows`, 1e-5);
      assertClose(byCrops.index(i), alone, `sample ${i} by crops`, 1e-6);
    });
  });
});
