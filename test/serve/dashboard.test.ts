// `swav serve` in a browser: headless Chromium (Debian's, driven by playwright-core) on the dashboard of a run that
// is training, the curves growing as metrics.jsonl does, the prototype usage per epoch and kNN evaluations shown;
// the prototype gallery from the last checkpoint, an image's nearest neighbours, a UMAP map;
// path traversal, in any encoding, 404s.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Page } from 'playwright-core';
import { idxDataset, root } from '../helpers.js';

const CHROMIUM = [process.env.CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => p && existsSync(p));
const artifacts = join(root, 'test', '.artifacts');
const dir = mkdtempSync(join(tmpdir(), 'swav-serve-'));
const cli = join(root, 'dist/src/cli/main.js');
const runs = join(dir, 'runs');
const config = join(dir, 'tiny.yaml');

// long enough (150 epochs of 6 iterations, ~15 s, a kNN every 10) for the browser to watch it train; the kNN on the
// training split (the tiny dataset has only that one), its confusion matrix at the end
writeFileSync(
  config,
  `
data: { type: idx, path: ${idxDataset(join(dir, 'idx'), 5)}, eval_split: train }
crops: { nmb_crops: [2, 2], size_crops: [12, 8], min_scale_crops: [0.4, 0.1], max_scale_crops: [1, 0.4], mean: [0.5], std: [0.25] }
model: { arch: resnet18, stem: small, width: 4, in_channels: 1, hidden_mlp: 8, feat_dim: 8, nmb_prototypes: 6 }
swav: { queue_length: 0, freeze_prototypes_niters: 4 }
optim: { epochs: 150, batch_size: 8, base_lr: 0.5, final_lr: 0.01, warmup_epochs: 1, start_warmup: 0.1 }
run: { out: ${join(runs, 'tiny')}, log_every: 2, threads: 1, knn_every: 10, knn_k: 5, knn_eval: true }
`,
);

/** A child's stderr so far, and a promise of the first match of `re` in it. */
function watch(child: ChildProcess): { text: () => string; match: (re: RegExp) => Promise<RegExpExecArray> } {
  let err = '';
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
  });
  return {
    text: () => err,
    match: (re) =>
      new Promise((done, fail) => {
        const look = () => {
          const m = re.exec(err);
          if (m) done(m);
        };
        child.stderr!.on('data', look);
        child.once('exit', (code) => fail(new Error(`exited ${code} before ${re}: ${err}`)));
        look();
      }),
  };
}

/** The status of GET `path` sent as it is: no URL normalization, unlike fetch or a browser. */
function rawStatus(port: number, path: string): Promise<number> {
  return new Promise((done, fail) => {
    request({ host: '127.0.0.1', port, path }, (res) => {
      res.resume();
      done(res.statusCode!);
    })
      .on('error', fail)
      .end();
  });
}

const points = (page: Page, chart: string) => page.$eval(`#chart-${chart}`, (el) => Number((el as HTMLElement).dataset.points));

test('the dashboard draws a training run live, shows kNN evaluations and 404s every traversal', {
  skip: CHROMIUM ? false : 'no Chromium found (/usr/bin/chromium or $CHROMIUM): apt-get install chromium',
}, async (t) => {
  mkdirSync(runs);
  mkdirSync(artifacts, { recursive: true });
  const serve = spawn(process.execPath, [cli, 'serve', runs, '--port', '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
  const train = spawn(process.execPath, [cli, 'train', '--config', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  const trainLog = watch(train);
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--disable-dev-shm-usage'] });
  t.after(async () => {
    await browser.close();
    for (const child of [train, serve]) if (child.exitCode === null) child.kill('SIGINT');
  });
  const url = await watch(serve).match(/at (http:\/\/127\.0\.0\.1:(\d+)\/)/);
  const [base, port] = [url[1], Number(url[2])];
  const second = spawnSync(process.execPath, [cli, 'serve', runs, '--port', String(port)], { encoding: 'utf8' });
  assert.equal(second.status, 1);
  assert.equal(second.stderr, `swav: error: serve: port ${port} on 127.0.0.1 is in use: choose another with --port\n`);
  await trainLog.match(/epoch 1\/150/); // the run directory and its first metrics exist
  const page = await browser.newPage({ viewport: { width: 1000, height: 1100 } });
  await page.goto(base);
  await page.click('a[href="/runs/tiny"]');
  await page.waitForFunction(() => Number(document.querySelector<HTMLElement>('#chart-loss')?.dataset.points) > 0);
  const first = await points(page, 'loss');
  await page.screenshot({ path: join(artifacts, 'serve-early.png') });
  await page.waitForFunction((n) => Number(document.querySelector<HTMLElement>('#chart-loss')?.dataset.points) > n, first, {
    timeout: 60_000,
  });
  assert.equal(train.exitCode, null, `the curves grew while the run trained (${first} points at first): ${trainLog.text()}`);
  for (const chart of ['lr', 'samples_per_s', 'prototype_entropy']) assert.ok((await points(page, chart)) > 0, chart);
  await page.waitForFunction(() => Number(document.querySelector<HTMLElement>('#chart-usage')?.dataset.epochs) >= 2);
  assert.equal(await points(page, 'usage'), 6, 'a bar per prototype');
  assert.match((await page.textContent('#usage-caption')) ?? '', /^\d+: \d of 6 prototypes picked$/);
  await page.waitForFunction(() => Number(document.querySelector<HTMLElement>('#chart-knn_top1')?.dataset.points) >= 2, undefined, {
    timeout: 120_000,
  });
  await page.waitForSelector('#confusion table', { timeout: 120_000 }); // at the end of the run
  assert.equal(await page.locator('#confusion table tr').count(), 4, 'the 3 classes and a header row');
  await page.click('#gallery-compute');
  await page.waitForSelector('#gallery img', { timeout: 60_000 });
  await page.waitForFunction(() =>
    [...document.querySelectorAll<HTMLImageElement>('#gallery img')].every((i) => i.complete && i.naturalWidth > 0),
  );
  assert.match((await page.textContent('#gallery-caption')) ?? '', /checkpoint of epoch 150, 48 training images sampled/);
  await page.waitForFunction(() => document.querySelector<HTMLElement>('#map')?.dataset.points === '48', undefined, { timeout: 60_000 });
  await page.click('#gallery img');
  await page.waitForFunction(() => document.querySelectorAll('#neighbours img').length === 9, undefined, { timeout: 30_000 });
  const point = (await page.evaluate('mapPoints.find((p) => p.image === 5)')) as { px: number; py: number };
  await page.click('#map', { position: { x: point.px, y: point.py } });
  await page.waitForFunction(() => document.querySelector('#neighbours img')?.getAttribute('data-image') === '5'); // the point clicked
  await page.screenshot({ path: join(artifacts, 'serve-dashboard.png'), fullPage: true });
  const gallery = (await (await fetch(`${base}runs/tiny/gallery`)).json()) as { prototypes: { count: number; images: number[] }[] };
  assert.equal(
    gallery.prototypes.reduce((n, p) => n + p.count, 0),
    48,
    'every sampled image picks one prototype',
  );
  assert.equal(await rawStatus(port, '/runs/tiny/gallery/47.png'), 200);
  const near = (await (await fetch(`${base}runs/tiny/neighbours/3`)).json()) as { image: number; similarity: number }[];
  assert.equal(near.length, 8);
  assert.ok(
    near.every((n, i) => n.image !== 3 && n.similarity <= 1 + 1e-5 && (i === 0 || n.similarity <= near[i - 1].similarity)),
    JSON.stringify(near),
  );
  for (const path of [
    '/runs/tiny/gallery/48.png',
    '/runs/tiny/gallery/100000.png',
    '/runs/tiny/neighbours/48',
    '/runs/tiny/neighbours/-1',
    '/runs/tiny/neighbours/0x1',
  ]) {
    assert.equal(await rawStatus(port, path), 404, `${path}: beyond the sampled images`);
  }

  for (const path of [
    '/../../etc/passwd',
    '/%2e%2e/%2e%2e/etc/passwd',
    '/%2e%2e%2f%2e%2e%2fetc%2fpasswd',
    '/runs/..%2f..%2f..%2fetc%2fpasswd',
    '/runs/%252e%252e%252f%252e%252e%252fetc%252fpasswd',
    '/assets/..%2f..%2fpackage.json',
    '/assets/%2e%2e%2fpackage.json',
    '//etc/passwd',
    '/runs/tiny/../../../../etc/passwd',
    '/runs/tiny/..%2fmetrics.jsonl',
    `/runs/${encodeURIComponent(join(runs, 'tiny'))}`,
    '/runs/nope',
    '/runs/nope/events',
    '/runs/tiny/metrics.jsonl',
    '/runs/tiny/config.yaml',
    '/runs/tiny/gallery/..%2f..%2fcheckpoint.pth',
    '/runs/tiny/gallery/-1.png',
    '/runs/tiny/gallery/1e3.png',
  ]) {
    assert.equal(await rawStatus(port, path), 404, path);
  }
  assert.equal((await page.goto(`${base}runs/%2e%2e%2ftiny`))?.status(), 404, 'through the browser too');

  train.kill('SIGINT');
  serve.kill('SIGINT');
  assert.equal(await new Promise((done) => serve.once('exit', done)), 0, 'serve ends cleanly on Ctrl-C');
});

// The README's pictures: the same page on a real run (the quickstart's, say), its gallery computed; skipped unless
// SWAV_DASHBOARD_RUN names a run directory.
const realRun = process.env.SWAV_DASHBOARD_RUN;
test('the dashboard of a real run with its gallery, neighbours and map: screenshots for the README', {
  skip: !realRun ? 'set SWAV_DASHBOARD_RUN=RUN_DIR to take them' : CHROMIUM ? false : 'no Chromium found',
}, async (t) => {
  mkdirSync(artifacts, { recursive: true });
  const serve = spawn(process.execPath, [cli, 'serve', join(realRun!, '..'), '--port', '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--disable-dev-shm-usage'] });
  t.after(async () => {
    await browser.close();
    if (serve.exitCode === null) serve.kill('SIGINT');
  });
  const base = (await watch(serve).match(/at (http:\/\/127\.0\.0\.1:\d+\/)/))[1];
  const page = await browser.newPage({ viewport: { width: 1000, height: 1100 } });
  await page.goto(`${base}runs/${encodeURIComponent(realRun!.split('/').filter(Boolean).pop()!)}`);
  await page.waitForFunction(() => Number(document.querySelector<HTMLElement>('#chart-loss')?.dataset.points) > 0);
  await page.click('#gallery-compute');
  await page.waitForSelector('#gallery img', { timeout: 300_000 });
  await page.waitForFunction(() =>
    [...document.querySelectorAll<HTMLImageElement>('#gallery img')].every((i) => i.complete && i.naturalWidth > 0),
  );
  await page.waitForFunction(() => Number(document.querySelector<HTMLElement>('#map')?.dataset.points) > 0, undefined, {
    timeout: 300_000,
  });
  await page.click('#gallery img');
  await page.waitForFunction(() => document.querySelectorAll('#neighbours img').length === 9, undefined, { timeout: 60_000 });
  await page.screenshot({ path: join(artifacts, 'serve-real-run.png'), fullPage: true });
  assert.ok((await page.locator('#gallery img').count()) > 8, 'several prototypes with their images');
});
