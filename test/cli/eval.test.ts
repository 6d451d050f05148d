// `swav eval knn` (several k in one pass) and `swav eval linear --cached-features`: a run directory, a zoo-format
// checkpoint written by PyTorch in the legacy format, results in metrics.jsonl, the feature cache, clear errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { torch, evaluation } from '../../src/index.js';
import { idxDataset, largeGoldens, root } from '../helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'swav-eval-'));
const cli = join(root, 'dist/src/cli/main.js');
const swav = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
const data = idxDataset(join(dir, 'idx'), 5);
const run = join(dir, 'run');
writeFileSync(
  join(dir, 'tiny.yaml'),
  `
data: { type: idx, path: ${data} }
crops: { nmb_crops: [2], size_crops: [12], min_scale_crops: [0.4], max_scale_crops: [1], mean: [0.5], std: [0.25] }
model: { arch: resnet18, stem: small, width: 4, in_channels: 1, hidden_mlp: 8, feat_dim: 8, nmb_prototypes: 6 }
optim: { epochs: 1, batch_size: 8, warmup_epochs: 0 }
run: { out: ${run}, threads: 1 }
`,
);
const trained = swav('train', '--config', join(dir, 'tiny.yaml'));
const evals = () =>
  readFileSync(join(run, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .filter((m) => m.type === 'eval');

test('knnTop1Many: several (k, T) in one pass equal one knnTop1 each, and a brute-force vote', () => {
  torch.tidy(() => {
    torch.manualSeed(2);
    const train = torch.randn([60, 5]);
    const test = torch.randn([25, 5]);
    const yt = Int32Array.from({ length: 60 }, (_, i) => i % 4);
    const ye = Int32Array.from({ length: 25 }, (_, i) => (i * 7) % 4);
    const settings = [
      { k: 3, temperature: 0.07 },
      { k: 20, temperature: 0.1 },
      { k: 100, temperature: 0.5 },
    ];
    const many = evaluation.knnTop1Many(train, yt, test, ye, settings, 7);
    settings.forEach((s, j) => assert.equal(many[j], evaluation.knnTop1(train, yt, test, ye, s)));
    // brute force for k = 3
    const a = torch.normalize(train, 2, 1).tolist() as number[][];
    const b = torch.normalize(test, 2, 1).tolist() as number[][];
    let correct = 0;
    b.forEach((q, i) => {
      const sims = a
        .map((r, j) => [r.reduce((s, v, d) => s + v * q[d], 0), j])
        .sort((x, y) => y[0] - x[0])
        .slice(0, 3);
      const votes = [0, 0, 0, 0];
      for (const [sim, j] of sims) votes[yt[j]] += Math.exp(sim / 0.07);
      if (votes.indexOf(Math.max(...votes)) === ye[i]) correct++;
    });
    assert.equal(many[0], correct / 25);
  });
});

test("eval knn with several k: one pass, a record per k in the run's metrics", () => {
  assert.equal(trained.status, 0, trained.stderr);
  const r = swav('eval', 'knn', '--weights', run, '--k', '5,20', '--temperature', '0.07,0.1', '--split', 'train');
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
  assert.deepEqual(
    out.knn.map((x: any) => [x.k, x.temperature]),
    [
      [5, 0.07],
      [20, 0.1],
    ],
  );
  const recorded = evals().filter((m) => m.metric === 'knn_top1');
  assert.deepEqual(
    recorded.slice(-2).map((m) => m.value),
    out.knn.map((x: any) => x.value),
  );
  assert.equal(swav('eval', 'knn', '--weights', run, '--k', '5,x').status, 2);
});

test('eval linear --cached-features on a run directory: says it is a variant, records top-1 / top-5, caches the features', () => {
  assert.equal(trained.status, 0, trained.stderr);
  const r = swav('eval', 'linear', '--cached-features', '--weights', run, '--split', 'train', '--epochs', '3', '--batch', '16');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /a variant of eval_linear\.py's protocol/);
  assert.match(r.stderr, /epoch 3\/3: loss .* top-1 .* ETA/);
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
  assert.ok(out.linear_top1 >= 0 && out.linear_top1 <= 1 && out.linear_top5 >= out.linear_top1, JSON.stringify(out));
  const recorded = evals();
  assert.equal(recorded.find((m) => m.metric === 'linear_top1').value, out.linear_top1);
  assert.equal(recorded.find((m) => m.metric === 'linear_top5').variant, 'cached-features');
  assert.equal(readdirSync(join(run, 'features')).length, 1, 'train and eval split are the same here: one file');
  const again = swav('eval', 'linear', '--cached-features', '--weights', run, '--split', 'train', '--epochs', '3', '--batch', '16');
  assert.match(again.stderr, /cached features: /);
  assert.equal(JSON.parse(again.stdout.trim().split('\n').pop()!).linear_top1, out.linear_top1, 'the same seed, the same result');
});

test('eval linear: a zoo-format checkpoint written by PyTorch (legacy format) on a generated image folder, end to end', () => {
  const ck = join(largeGoldens('--checkpoints', 'checkpoints'), 'resnet18_legacy.pth.tar');
  const folder = join(dir, 'images');
  const made = spawnSync(
    '/usr/bin/python3',
    [
      '-c',
      `
import os, numpy as np
from PIL import Image
rng = np.random.default_rng(3)
for split in ['train', 'val']:
    for c, color in enumerate([(200, 40, 40), (40, 200, 40), (40, 40, 200)]):
        os.makedirs(f'${folder}/{split}/class{c}', exist_ok=True)
        for i in range(6):
            img = np.clip(rng.normal(color, 40, (40, 48, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(img).save(f'${folder}/{split}/class{c}/{i}.jpg')
`,
    ],
    { encoding: 'utf8' },
  );
  assert.equal(made.status, 0, made.stderr);
  const cache = join(dir, 'cache');
  const r = swav(
    'eval',
    'linear',
    '--cached-features',
    '--weights',
    ck,
    '--arch',
    'resnet18',
    '--data',
    folder,
    '--type',
    'folder',
    '--split',
    'val',
    '--epochs',
    '20',
    '--batch',
    '6',
    '--cache',
    cache,
  );
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
  assert.ok(out.linear_top1 > 0.9, `colored classes are separable: top-1 ${out.linear_top1}`);
  assert.equal(readdirSync(cache).length, 2, 'train and val features cached');
  assert.ok(!existsSync(join(dirname(ck), 'metrics.jsonl')), 'a bare weights file gets no metrics file beside it');
});

test('eval semisup: a seeded fraction of each class, or a SimCLR-style list of file names; records top-1 / top-5', () => {
  assert.equal(trained.status, 0, trained.stderr);
  const r = swav('eval', 'semisup', '--weights', run, '--split', 'train', '--fraction', '0.25', '--epochs', '2', '--batch', '8');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /fine-tuning on 12 labelled images .*25% of each class/);
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
  assert.equal(out.labelled, 12, '48 images of 3 classes, a quarter of each');
  assert.equal(evals().find((m) => m.metric === 'semisup_top1').value, out.semisup_top1);
  const folder = join(dir, 'images');
  const list = join(dir, 'subset.txt');
  writeFileSync(list, ['0.jpg', '1.jpg', '2.jpg'].join('\n')); // names, as imagenet_subsets/1percent.txt: one per class folder here
  const ck = join(largeGoldens('--checkpoints', 'checkpoints'), 'resnet18_legacy.pth.tar');
  const f = swav(
    'eval',
    'semisup',
    '--weights',
    ck,
    '--arch',
    'resnet18',
    '--data',
    folder,
    '--type',
    'folder',
    '--split',
    'val',
    '--subset',
    list,
    '--epochs',
    '1',
    '--batch',
    '4',
    '--size',
    '32',
  );
  assert.equal(f.status, 1, 'the names are ambiguous across class folders here');
  assert.match(f.stderr, /0\.jpg names several images .*: write it as class\/name/);
  writeFileSync(list, ['class0/0.jpg', 'class1/0.jpg', 'class2/0.jpg', 'class0/1.jpg'].join('\n'));
  const ok = swav(
    'eval',
    'semisup',
    '--weights',
    ck,
    '--arch',
    'resnet18',
    '--data',
    folder,
    '--type',
    'folder',
    '--split',
    'val',
    '--subset',
    list,
    '--epochs',
    '2',
    '--batch',
    '4',
    '--size',
    '32',
  );
  assert.equal(ok.status, 0, ok.stderr);
  assert.equal(JSON.parse(ok.stdout.trim().split('\n').pop()!).labelled, 4);
  writeFileSync(list, 'nothere.jpg\n');
  const missing = swav(
    'eval',
    'semisup',
    '--weights',
    ck,
    '--arch',
    'resnet18',
    '--data',
    folder,
    '--type',
    'folder',
    '--split',
    'val',
    '--subset',
    list,
  );
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /1 images of the subset are not in .* \(such as nothere\.jpg\)/);
});

test('labelledSubset: per-class fractions with at least one image each, reproducible by seed', () => {
  const ds = {
    kind: 'files' as const,
    name: 'd',
    files: Array.from({ length: 30 }, (_, i) => `/x/c${i % 3}/${i}.jpg`),
    labels: Int32Array.from({ length: 30 }, (_, i) => (i < 27 ? i % 3 : -1)),
    classes: ['c0', 'c1', 'c2'],
    length: 30,
  };
  const a = evaluation.labelledSubset(ds, { fraction: 0.1, seed: 1 });
  assert.deepEqual(a.map((i) => ds.labels[i]).sort(), [0, 1, 2], 'one of each of the 9 per class; unlabelled rows never');
  assert.deepEqual(evaluation.labelledSubset(ds, { fraction: 0.1, seed: 1 }), a);
  assert.equal(evaluation.labelledSubset(ds, { fraction: 1 }).length, 27);
  assert.deepEqual(evaluation.labelledSubset(ds, { names: ['4.jpg', '0.jpg'] }), [4, 0]);
});

test('eval linear: the protocol with augmentation through the frozen trunk, recorded as such', () => {
  assert.equal(trained.status, 0, trained.stderr);
  const r = swav('eval', 'linear', '--weights', run, '--split', 'train', '--epochs', '2', '--batch', '16');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /linear protocol: idx-train \(48 images, 3 batches of 16 per epoch\), 3 classes, features 32, 2 epochs/);
  assert.match(r.stderr, /epoch 2\/2: loss .* top-1 /);
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
  assert.equal(out.variant, 'protocol');
  assert.ok(evals().some((m) => m.metric === 'linear_top1' && m.variant === 'protocol' && m.value === out.linear_top1));
});

test('eval: unknown options and bad values are usage errors', () => {
  const unknown = swav('eval', 'linear', '--cached-features', '--weights', run, '--epoch', '3');
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /^swav eval linear: unknown option '--epoch' \(Did you mean --epochs\?\)/);
  assert.equal(unknown.stderr.trim().split('\n').length, 1, 'one line');
  const arch = swav('eval', 'linear', '--cached-features', '--weights', 'resnet18.pth', '--arch', 'vgg');
  assert.equal(arch.status, 2);
  assert.match(arch.stderr, /--arch <arch>' argument 'vgg' is invalid\. Allowed choices are resnet18, /);
});

/** The per-epoch lines of an evaluation's log, without their ETA. */
const epochLines = (stderr: string) =>
  stderr
    .split('\n')
    .filter((l) => /^epoch \d+\/\d+: /.test(l))
    .map((l) => l.replace(/, ETA .*/, ''));

test('eval linear: stopped after an epoch, run again, it resumes from its checkpoint and ends as a run never stopped', () => {
  assert.equal(trained.status, 0, trained.stderr);
  const args = (out: string, ...more: string[]) => [
    'eval',
    'linear',
    '--weights',
    run,
    '--split',
    'train',
    '--epochs',
    '3',
    '--batch',
    '16',
    '--out',
    join(dir, out),
    ...more,
  ];
  const straight = swav(...args('straight'));
  assert.equal(straight.status, 0, straight.stderr);
  const first = swav(...args('resumed', '--stop-after-epochs', '1'));
  assert.equal(first.status, 130, first.stderr);
  assert.match(first.stderr, /stopped after epoch 1 of 3: .*checkpoint\.pth holds it; run the same command to resume/);
  const rest = swav(...args('resumed'));
  assert.equal(rest.status, 0, rest.stderr);
  assert.match(rest.stderr, /resuming the linear evaluation of .* at epoch 2/);
  assert.deepEqual(
    [...epochLines(first.stderr), ...epochLines(rest.stderr)],
    epochLines(straight.stderr),
    "every epoch's loss, top-1 and lr",
  );
  assert.equal(
    JSON.parse(rest.stdout.trim().split('\n').pop()!).linear_top1,
    JSON.parse(straight.stdout.trim().split('\n').pop()!).linear_top1,
  );
  const other = swav(...args('resumed').map((a) => (a === '3' ? '4' : a)));
  assert.equal(other.status, 2);
  assert.match(
    other.stderr,
    /holds a linear evaluation of other settings \(epochs 3 -> 4\): remove .* to start over, or give another --out/,
  );
});

test("eval linear --pool avg6 --use-bn: eval_linear.py's pooled maps and BatchNorm; clear errors for what cannot be", () => {
  const ck = join(largeGoldens('--checkpoints', 'checkpoints'), 'resnet18_legacy.pth.tar');
  const folder = join(dir, 'images'); // made by the zoo-format test above
  const r = swav(
    'eval',
    'linear',
    '--weights',
    ck,
    '--arch',
    'resnet18',
    '--data',
    folder,
    '--split',
    'val',
    '--epochs',
    '1',
    '--batch',
    '9',
    '--pool',
    'avg6',
    '--use-bn',
  );
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /features 512 x 2 x 2/, 'a 7 x 7 map at 224 px, pooled 6 x 6 with stride 1');
  assert.equal(JSON.parse(r.stdout.trim().split('\n').pop()!).pool, 'avg6');
  const noPool = swav('eval', 'linear', '--weights', ck, '--arch', 'resnet18', '--data', folder, '--use-bn');
  assert.equal(noPool.status, 2);
  assert.match(noPool.stderr, /--use-bn normalizes the avg6 pool's maps, as eval_linear\.py: add --pool avg6/);
  const small = swav('eval', 'linear', '--weights', run, '--split', 'train', '--epochs', '1', '--pool', 'avg6', '--out', join(dir, 'avg6'));
  assert.equal(small.status, 1);
  assert.match(
    small.stderr,
    /^swav: error: the avg6 pool needs a last feature map of at least 6 x 6 .* this one is 12 x 12|this one is \d+ x \d+/m,
  );
});

test("eval: another architecture's checkpoint, an eval split with classes the train split lacks, an empty split: one clear line each", () => {
  const ck = join(largeGoldens('--checkpoints', 'checkpoints'), 'resnet18_legacy.pth.tar');
  const folder = join(dir, 'images');
  const arch = swav('eval', 'knn', '--weights', ck, '--arch', 'resnet50', '--data', folder);
  assert.equal(arch.status, 1);
  assert.match(arch.stderr, /^swav: error: .*holds a resnet18, not a resnet50/);
  const odd = join(dir, 'odd');
  for (const [split, cls] of [
    ['train', 'a'],
    ['train', 'b'],
    ['val', 'a'],
    ['val', 'c'],
  ]) {
    mkdirSync(join(odd, split, cls), { recursive: true });
    copyFileSync(join(folder, 'val', 'class0', '0.jpg'), join(odd, split, cls, '0.jpg'));
  }
  for (const what of [
    ['knn'],
    ['linear', '--epochs', '1'],
    ['linear', '--cached-features', '--epochs', '1'],
    ['semisup', '--fraction', '1', '--epochs', '1'],
  ]) {
    const r = swav('eval', ...what, '--weights', ck, '--arch', 'resnet18', '--data', odd, '--split', 'val');
    assert.equal(r.status, 1, `${what.join(' ')}: ${r.stderr}`);
    assert.match(
      r.stderr,
      /^swav: error: .*val: class folder 'c' not among the 2 classes of the train split: the splits must share their classes$/m,
      what.join(' '),
    );
  }
  mkdirSync(join(dir, 'empty', 'train', 'a'), { recursive: true });
  mkdirSync(join(dir, 'empty', 'val'), { recursive: true });
  copyFileSync(join(folder, 'val', 'class0', '0.jpg'), join(dir, 'empty', 'train', 'a', '0.jpg'));
  const empty = swav(
    'eval',
    'linear',
    '--weights',
    ck,
    '--arch',
    'resnet18',
    '--data',
    join(dir, 'empty'),
    '--split',
    'val',
    '--epochs',
    '1',
  );
  assert.equal(empty.status, 1);
  assert.match(empty.stderr, /^swav: error: .*empty.*\n$/);
});

test('eval linear: Ctrl-C (SIGINT) stops a long probe with its checkpoint; the same command resumes it', async () => {
  assert.equal(trained.status, 0, trained.stderr);
  const args = [
    'eval',
    'linear',
    '--cached-features',
    '--weights',
    run,
    '--split',
    'train',
    '--epochs',
    '100000',
    '--batch',
    '16',
    '--out',
    join(dir, 'sigint'),
  ];
  const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  const status = await new Promise<number | null>((done) => {
    child.stderr.on('data', (d) => {
      stderr += d;
      if (/epoch 3\/100000/.test(stderr) && !child.killed) child.kill('SIGINT');
    });
    child.on('close', (code) => done(code));
  });
  assert.equal(status, 130, stderr);
  assert.match(stderr, /interrupted: stopping/);
  assert.match(stderr, /stopped after epoch \d+ of 100000: .*checkpoint\.pth holds it; run the same command to resume/);
  const saved = Number(/stopped after epoch (\d+)/.exec(stderr)![1]);
  const again = swav(...args, '--stop-after-epochs', '1');
  assert.equal(again.status, 130, again.stderr);
  assert.match(again.stderr, new RegExp(`resuming the linear evaluation of .* at epoch ${saved + 1}`));
});
