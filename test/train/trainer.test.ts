// `swav train`: exact resumption (by epochs, and after Ctrl-C in the middle of one), the same weights with and
// without the loader's prefetch, corrupt images skipped and reported, a NaN stopping the run with the last good
// checkpoint kept, metrics.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { torch } from '../../src/index.js';
import { assertSameCheckpoint, idxDataset, root, tinySwavConfig } from '../helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'swav-train-'));
const cli = join(root, 'dist/src/cli/main.js');

const data = idxDataset(join(dir, 'idx'), 7);
const config = tinySwavConfig(join(dir, 'tiny.yaml'), data, { epochs: 3, logEvery: 2 });

const train = (...args: string[]) => spawnSync(process.execPath, [cli, 'train', '--config', config, ...args], { encoding: 'utf8' });

test('3 epochs straight equal 1 epoch + resume + 2 epochs, weights bit for bit', () => {
  const straight = train(`run.out=${join(dir, 'straight')}`);
  assert.equal(straight.status, 0, straight.stderr);
  const first = train(`run.out=${join(dir, 'split')}`, 'run.stop_after_epochs=1');
  assert.equal(first.status, 0, first.stderr);
  assert.equal(torch.load(join(dir, 'split', 'checkpoint.pth')).epoch, 1);
  const rest = train(`run.out=${join(dir, 'split')}`);
  assert.equal(rest.status, 0, rest.stderr);
  assert.match(rest.stderr, /resuming .* at epoch 2, iteration 0 of 6/);
  assert.doesNotMatch(rest.stderr, /note: the config/, 'the same config: no note of a change');
  assertSameCheckpoint(join(dir, 'straight'), join(dir, 'split'), ['queue', 'use_the_queue']);
  const metrics = readFileSync(join(dir, 'straight', 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  const line = metrics.find((m) => m.type === 'train');
  for (const k of ['loss', 'lr', 'samples_per_s', 'data_wait_s', 'prototype_entropy', 'epoch', 'iteration']) assert.ok(k in line, k);
  assert.equal(metrics.filter((m) => m.type === 'epoch').length, 3);
});

test('optim.epochs auto: the epochs that fit run.budget_minutes are decided once, kept in the checkpoint, and resumes stay exact', () => {
  const auto = ['optim.epochs=auto', 'run.budget_minutes=0.1'];
  const a = join(dir, 'auto-a');
  const first = train(`run.out=${a}`, ...auto, 'run.stop_after_epochs=1');
  assert.equal(first.status, 0, first.stderr);
  const decided = /optim.epochs auto: \d+ ms per iteration, 6 per epoch: (\d+) epochs/.exec(first.stderr);
  assert.ok(decided, first.stderr);
  const epochs = Number(decided[1]);
  assert.equal(
    torch.tidy(() => torch.load(join(a, 'checkpoint.pth')).schedule_epochs),
    epochs,
  );
  const b = join(dir, 'auto-b');
  mkdirSync(b);
  for (const f of ['checkpoint.pth', 'config.yaml']) copyFileSync(join(a, f), join(b, f));
  // a: straight to the end; b: stopped after one iteration of epoch 2 (run.max_minutes that small), then resumed
  const rest = train(`run.out=${a}`, ...auto);
  assert.equal(rest.status, 0, rest.stderr);
  assert.doesNotMatch(rest.stderr, /optim.epochs auto:/, 'a resume keeps the decision');
  assert.match(rest.stderr, new RegExp(`epoch ${epochs}/${epochs}: loss`));
  assert.equal(train(`run.out=${b}`, ...auto, 'run.max_minutes=0.00001').status, 0);
  assert.equal(
    torch.tidy(() => torch.load(join(b, 'checkpoint.pth')).epoch_iteration),
    1,
  );
  assert.equal(train(`run.out=${b}`, ...auto).status, 0);
  assertSameCheckpoint(a, b, ['queue', 'use_the_queue', 'schedule_epochs']);
  const lines = readFileSync(join(a, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  const lrs = lines.filter((m) => m.type === 'train').map((m) => m.lr);
  assert.ok(Math.abs(lrs[lrs.length - 1] - 0.01) < 1e-3, `the schedule ends at final_lr: ${lrs[lrs.length - 1]}`);
  assert.equal(lines.filter((m) => m.type === 'schedule').length, 1);
  const none = train(`run.out=${join(dir, 'auto-none')}`, 'optim.epochs=auto');
  assert.equal(none.status, 1);
  assert.match(none.stderr, /optim.epochs: auto fits the schedule into run.budget_minutes: set run.budget_minutes/);
});

test("data.prefetch: false (each batch's crops made when it is needed) trains the same weights as the default (made ahead in a worker)", () => {
  const ahead = train(`run.out=${join(dir, 'prefetch')}`, 'optim.epochs=1');
  assert.equal(ahead.status, 0, ahead.stderr);
  const inline = train(`run.out=${join(dir, 'no-prefetch')}`, 'optim.epochs=1', 'data.prefetch=false');
  assert.equal(inline.status, 0, inline.stderr);
  assertSameCheckpoint(join(dir, 'prefetch'), join(dir, 'no-prefetch'), ['queue', 'use_the_queue']);
});

test('Ctrl-C in the middle of an epoch saves a checkpoint and exits; the resumed run ends as an uninterrupted one', async () => {
  const epochs = 'optim.epochs=40'; // long enough for the signal to land in the middle
  const straight = train(`run.out=${join(dir, 'straight40')}`, epochs);
  assert.equal(straight.status, 0, straight.stderr);
  const out = join(dir, 'interrupted');
  const child = spawn(process.execPath, [cli, 'train', '--config', config, `run.out=${out}`, epochs]);
  let stderr = '';
  await new Promise<void>((resolve) => {
    let sent = false;
    child.stderr.on('data', (d) => {
      stderr += d;
      if (!sent && /epoch 2\/40: loss/.test(stderr)) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    child.on('close', () => resolve()); // after stderr has ended ('exit' may come before its last data)
  });
  assert.equal(child.exitCode, 130, stderr);
  assert.match(stderr, /interrupted: saving a checkpoint/);
  const ck = torch.load(join(out, 'checkpoint.pth'));
  assert.ok(ck.epoch >= 2 && ck.epoch < 40, `stopped before the end (epoch ${ck.epoch}, iteration ${ck.epoch_iteration})`);
  const rest = train(`run.out=${out}`, epochs);
  assert.equal(rest.status, 0, rest.stderr);
  assertSameCheckpoint(join(dir, 'straight40'), out, ['queue', 'use_the_queue']);
});

test('a NaN loss stops the run with a clear message and keeps the last good checkpoint', () => {
  const out = join(dir, 'nan');
  assert.equal(train(`run.out=${out}`, 'run.stop_after_epochs=1').status, 0);
  const before = statSync(join(out, 'checkpoint.pth')).mtimeMs;
  const r = train(`run.out=${out}`, 'optim.larc=false', 'optim.base_lr=1e30', 'optim.final_lr=1e30');
  assert.equal(r.status, 1);
  assert.match(r.stderr, /swav: error: the loss is NaN at epoch 2.*last good checkpoint \(after epoch 1\) is kept/s);
  assert.equal(statSync(join(out, 'checkpoint.pth')).mtimeMs, before);
});

test('a corrupt image in a folder is skipped, reported and counted; corrupt_images: fail ends the run', () => {
  const folder = join(dir, 'folder');
  mkdirSync(folder, { recursive: true });
  spawnSync('/usr/bin/python3', [
    '-c',
    `
import numpy as np
from PIL import Image
rng = np.random.default_rng(1)
for i in range(18):
    Image.fromarray(rng.integers(0, 255, (20 + i, 24, 3), dtype=np.uint8)).save('${folder}/img%02d.png' % i)
`,
  ]);
  writeFileSync(join(folder, 'img05.png'), 'this is not a png');
  copyFileSync(join(folder, 'img00.png'), join(folder, 'img18.jpg'));
  // 19 files, batches of 19: every file is read in the one iteration, the corrupt one replaced by another
  const args = [
    `data.type=folder`,
    `data.path=${folder}`,
    'model.in_channels=3',
    'crops.mean=[0.5,0.5,0.5]',
    'crops.std=[0.25,0.25,0.25]',
    'optim.epochs=1',
    'optim.warmup_epochs=0',
    'optim.batch_size=19',
    'swav.queue_length=0',
  ];
  const r = train(`run.out=${join(dir, 'folder-run')}`, ...args);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /warning: skipped an unreadable image: .*img05\.png/);
  const metrics = readFileSync(join(dir, 'folder-run', 'metrics.jsonl'), 'utf8');
  assert.match(metrics, /"type":"skip","file":"[^"]*img05\.png"/);
  assert.match(metrics, /"skipped_images":1/);
  const f = train(`run.out=${join(dir, 'folder-fail')}`, ...args, 'data.corrupt_images=fail');
  assert.equal(f.status, 1);
  assert.match(f.stderr, /img05\.png: .*\(data\.corrupt_images: fail\)/);
});

test('kNN during training (run.knn_every) and after it is logged per epoch and leaves training unchanged', () => {
  const out = join(dir, 'knn');
  const r = train(
    `run.out=${out}`,
    'run.knn_eval=true',
    'run.knn_every=1',
    'run.knn_k=5',
    'data.eval_split=train',
    'data.eval_train_split=train',
  );
  assert.equal(r.status, 0, r.stderr);
  const evals = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .filter((m) => m.type === 'eval' && m.metric === 'knn_top1');
  assert.deepEqual(
    evals.map((m) => m.epoch),
    [1, 2, 3],
  );
  for (const m of evals) assert.ok(m.metric === 'knn_top1' && m.value >= 0 && m.value <= 1 && m.k === 5, JSON.stringify(m));
  assert.equal(JSON.parse(r.stdout.trim().split('\n').pop()!).knn_top1, evals[2].value);
  // the final value is the kNN of the checkpoint's trunk: `swav eval knn` (tested against PyTorch's kNN) on it agrees
  const again = spawnSync(process.execPath, [cli, 'eval', 'knn', '--weights', out, '--k', '5'], { encoding: 'utf8' });
  assert.equal(again.status, 0, again.stderr);
  assert.equal(JSON.parse(again.stdout).knn_top1, evals[2].value);
  assertSameCheckpoint(out, join(dir, 'straight'), ['queue', 'use_the_queue']);
});

test("after training: the kNN confusion matrix (printed and recorded, its diagonal the kNN top-1) and run.linear_eval's probe on the cached features", () => {
  const out = join(dir, 'confusion');
  const r = train(
    `run.out=${out}`,
    'optim.epochs=1',
    'run.knn_eval=true',
    'run.knn_k=5',
    'data.eval_split=train',
    'data.eval_train_split=train',
    'run.linear_eval=true',
    'run.linear_epochs=3',
  );
  assert.equal(r.status, 0, r.stderr);
  const lines = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .filter((m) => m.type === 'eval');
  const knn = lines.find((m) => m.metric === 'knn_top1');
  const { matrix } = lines.find((m) => m.metric === 'knn_confusion');
  assert.equal(matrix.length, 3);
  assert.deepEqual(
    matrix.map((row: number[]) => row.reduce((a, b) => a + b, 0)),
    [16, 16, 16],
    'a row per true class (labels i % 3)',
  );
  assert.equal(matrix.reduce((a: number, row: number[], i: number) => a + row[i], 0) / 48, knn.value);
  assert.match(r.stderr, /kNN confusion matrix on idx-train \(rows: true class, columns: predicted\):\ntrue\\pred +0 +1 +2 +recall\n0 /);
  const linear = lines.find((m) => m.metric === 'linear_top1');
  assert.ok(linear.value >= 0 && linear.value <= 1 && linear.epochs === 3, JSON.stringify(linear));
  assert.match(r.stderr, /linear probe on the cached features \(3 epochs, \d+ s\): top-1 [\d.]+%/);
  const result = JSON.parse(r.stdout.trim().split('\n').pop()!);
  assert.deepEqual([result.knn_top1, result.linear_top1], [knn.value, linear.value]);
});
