// Data-parallel training through `swav launch`: W processes of batch B end with the weights of one process of
// batch W x B (SwAV with SyncBatchNorm, the queue and frozen-then-trained prototypes; DeepCluster-v2 and SeLa-v2
// with their memory banks and clusters); a rank killed mid-epoch stops the job with the rank named and nothing
// left running; two "nodes" train together, stop on Ctrl-C and resume.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { torch } from '../../src/index.js';
import { idxDataset, root } from '../helpers.js';
import { freePort } from '../dist/ranks.js';

const dir = mkdtempSync(join(tmpdir(), 'swav-dist-train-'));
const cli = join(root, 'dist/src/cli/main.js');
const data = idxDataset(join(dir, 'idx'), 5);
// seed 1: with the default seed's data one pre-activation of layer1 lands 1.5e-7 from zero, so that its ReLU opens
// in one process and not in the other (batch statistics summed in another order); that pixel's gradient then moves
// layer1's BatchNorm biases by 1e-2 relative (DeepCluster-v2, SeLa-v2). Rounding, not a difference of semantics.
const common = `
data: { type: idx, path: ${data} }
crops: { nmb_crops: [2, 2], size_crops: [12, 8], min_scale_crops: [0.4, 0.1], max_scale_crops: [1, 0.4], mean: [0.5], std: [0.25] }
optim: { epochs: 1, batch_size: 8, base_lr: 0.05, final_lr: 0.01, warmup_epochs: 0 }
run: { amp: fp32, threads: 1, log_every: 1, seed: 1 }
`;
const model = (prototypes: string) =>
  `model: { arch: resnet18, stem: small, width: 4, in_channels: 1, hidden_mlp: 8, feat_dim: 8, nmb_prototypes: ${prototypes}, sync_bn: true }`;
// base_lr 0.05: at 0.5 this 4-channel net amplifies float32 rounding (sums in another order) to 2.5e-4 in 6 steps
const config = join(dir, 'swav.yaml');
writeFileSync(
  config,
  `${common}${model('6')}
swav: { queue_length: 16, epoch_queue_starts: 0, freeze_prototypes_niters: 3 }
`,
);

/**
 * One epoch of `yaml` by one process with batch 8 and by `swav launch --nproc-per-node 2` with batch 4, and one at
 * learning rate 0 (the initial weights); returns the three checkpoints' directories.
 */
async function trainBothWays(
  name: string,
  yaml: string,
  ...extra: string[]
): Promise<{ one: string; two: string; init: string; stderr: string }> {
  const [one, two, init] = ['one', 'two', 'init'].map((d) => join(dir, `${name}-${d}`));
  for (const [out, more] of [
    [one, []],
    [init, ['optim.base_lr=0', 'optim.final_lr=0']],
  ] as const) {
    const r = spawnSync(process.execPath, [cli, 'train', '--config', yaml, `run.out=${out}`, ...more, ...extra], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /6 iterations of 8 per epoch/);
  }
  const port = await freePort();
  const r = spawnSync(
    process.execPath,
    [
      cli,
      'launch',
      '--nproc-per-node',
      '2',
      '--master-port',
      String(port),
      'train',
      '--config',
      yaml,
      `run.out=${two}`,
      'optim.batch_size=4',
      ...extra,
    ],
    { encoding: 'utf8', timeout: 240_000 },
  );
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /6 iterations of 4 x 2 processes per epoch/);
  return { one, two, init, stderr: r.stderr };
}

// projection_head.0 is a Linear followed by BatchNorm: its bias has no gradient but rounding noise, which LARC
// (clip false, as the reference) scales up to steps of its own; it is left out.
const NOISE_ONLY = new Set(['projection_head.0.bias']);

/**
 * Every tensor of two checkpoints' state dicts within `tol` relative to the tensor's largest value; and the
 * epoch's updates (each tensor minus its initial value) within `updateTol` relative to the largest update. (LARC
 * moves a conv weight by 1e-4 of its size in an epoch: only the updates show whether the gradients were equal.)
 */
function assertSameTraining(a: any, b: any, init: any, tol: number, updateTol: number): void {
  const rel = (x: any, y: any) => x.sub(y).abs().max().item() / Math.max(1e-12, x.abs().max().item());
  for (const k of Object.keys(a.state_dict)) {
    if (NOISE_ONLY.has(k) || a.state_dict[k].dtype === 'int64') continue;
    const [x, y, x0] = [a, b, init].map((c) => c.state_dict[k].double());
    assert.ok(rel(x, y) < tol, `${k}: relative difference ${rel(x, y)}`);
    const [dx, dy] = [x.sub(x0), y.sub(x0)];
    if (k.includes('running_') || dx.abs().max().item() === 0) continue; // not the optimizer's (k-means sets DC's prototypes)
    assert.ok(rel(dx, dy) < updateTol, `${k}: the epoch's updates differ by ${rel(dx, dy)} relative`);
  }
}

test("swav launch --nproc-per-node 2 with batch B ends one epoch with the weights of one process with batch 2B; kNN over both processes' shards", async () => {
  const knn = [
    'run.knn_eval=true',
    'run.knn_k=5',
    'data.eval_split=train',
    'data.eval_train_split=train',
    'run.linear_eval=true',
    'run.linear_epochs=2',
  ];
  const { one, two, init, stderr } = await trainBothWays('swav', config, ...knn);
  assert.match(stderr, /kNN \(k=5, T=0.1\) top-1 on idx-train: [\d.]+% \(48 train \/ 48 test images/);
  const single = spawnSync(process.execPath, [cli, 'eval', 'knn', '--weights', two, '--k', '5'], { encoding: 'utf8' });
  assert.equal(single.status, 0, single.stderr);
  const evals = readFileSync(join(two, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .filter((m) => m.type === 'eval');
  const logged = evals.find((m) => m.metric === 'knn_top1');
  assert.equal(logged.value, JSON.parse(single.stdout).knn_top1, "the job's kNN equals one process's on its checkpoint");
  const { matrix } = evals.find((m) => m.metric === 'knn_confusion');
  assert.equal(
    matrix.flat().reduce((a: number, b: number) => a + b, 0),
    48,
    'every test row of both shards in the confusion matrix',
  );
  assert.equal(matrix.reduce((a: number, row: number[], i: number) => a + row[i], 0) / 48, logged.value);
  assert.ok(
    evals.some((m) => m.metric === 'linear_top1'),
    'the probe ran on the gathered features',
  );
  torch.tidy(() => {
    const [a, b, i] = [one, two, init].map((d) => torch.load(join(d, 'checkpoint.pth')));
    assert.equal(b.world_size, 2);
    assert.equal(b.iteration, a.iteration);
    assertSameTraining(a, b, i, 1e-4, 1e-2);
    assert.ok(a.use_the_queue === true && b.use_the_queue === true, 'the queue was in use');
    const q1 = torch.load(join(two, 'rank1.pth'));
    assert.deepEqual(q1.queue.shape, [2, 8, 8], 'each rank holds its half of the queue');
  });
});

for (const [method, section] of [
  ['deepclusterv2', 'deepclusterv2: { kmeans_iterations: 4 }'],
  ['selav2', 'selav2: { freeze_prototypes_niters: 3 }'],
]) {
  test(`${method} on 2 processes of batch B: the same clusters and, after one epoch, the weights of one process of batch 2B`, async () => {
    const yaml = join(dir, `${method}.yaml`);
    writeFileSync(yaml, `method: ${method}\n${common}${model('[6, 5]')}\n${section}\n`);
    const { one, two, init } = await trainBothWays(method, yaml);
    torch.tidy(() => {
      const [a, b, i] = [one, two, init].map((d) => torch.load(join(d, 'checkpoint.pth')));
      assert.ok(a.assignments.equal(b.assignments), 'the same clusters for every sample');
      assertSameTraining(a, b, i, 1e-4, 1e-2);
    });
  });
}

test('a rank killed mid-epoch: the launcher and the other rank exit within 60 s, non-zero, naming the rank; nothing left running', async () => {
  const port = await freePort();
  let killedAt = 0;
  const child = spawn(
    process.execPath,
    [
      cli,
      'launch',
      '--nproc-per-node',
      '2',
      '--master-port',
      String(port),
      '--grace-seconds',
      '20',
      'train',
      '--config',
      config,
      `run.out=${join(dir, 'killed')}`,
      'optim.batch_size=4',
      'optim.epochs=1000',
      'run.dist_timeout=30',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  let killed = false;
  const status = await new Promise<number | null>((done) => {
    child.stderr.on('data', (d) => {
      stderr += d;
      if (!killed && /epoch 1\/1000: loss/.test(stderr)) {
        killed = true;
        const ps = spawnSync('pgrep', ['-P', String(child.pid)], { encoding: 'utf8' })
          .stdout.trim()
          .split('\n')
          .map(Number);
        process.kill(ps[ps.length - 1], 'SIGKILL');
        killedAt = Date.now();
      }
    });
    child.on('close', (code) => done(code));
  });
  assert.ok(killed, stderr);
  assert.notEqual(status, 0);
  assert.match(stderr, /rank 1 \(pid \d+\) was killed by SIGKILL; stopping the other ranks/);
  assert.ok(Date.now() - killedAt < 60_000, `the job ended ${(Date.now() - killedAt) / 1000} s after the kill`);
  const left = spawnSync('pgrep', ['-f', join(dir, 'killed')], { encoding: 'utf8' }).stdout.trim();
  assert.equal(left, '', 'no rank left running');
});

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  test(`${signal} on swav launch --nproc-per-node 2 stops both ranks with a checkpoint (exit 130), nothing left running`, async () => {
    const port = await freePort();
    const out = join(dir, `launch-${signal}`);
    const child = spawn(
      process.execPath,
      [
        cli,
        'launch',
        '--nproc-per-node',
        '2',
        '--master-port',
        String(port),
        'train',
        '--config',
        config,
        `run.out=${out}`,
        'optim.batch_size=4',
        'optim.epochs=1000',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    const status = await new Promise<number | null>((done) => {
      child.stderr.on('data', (d) => {
        stderr += d;
        if (/epoch 1\/1000: loss/.test(stderr) && !child.killed) child.kill(signal);
      });
      child.on('close', (code) => done(code));
    });
    assert.equal(status, 130, stderr);
    assert.match(stderr, /saved .*checkpoint\.pth at epoch \d+, iteration \d+; run the same command to resume/);
    torch.tidy(() => {
      assert.equal(torch.load(join(out, 'checkpoint.pth')).world_size, 2);
      assert.ok(torch.load(join(out, 'rank1.pth')).queue, 'rank 1 saved its queue');
    });
    assert.equal(spawnSync('pgrep', ['-f', out], { encoding: 'utf8' }).stdout.trim(), '', 'no rank left running');
  });
}

// What torchrun and srun set for each process they start (torchrun itself is not run: Debian's 1.13 torchrun fails
// under Python 3.11); `swav train` joins the group on its own.
for (const [launcher, vars] of [
  [
    'torchrun',
    (rank: number, port: number) => ({
      RANK: `${rank}`,
      LOCAL_RANK: `${rank}`,
      WORLD_SIZE: '2',
      LOCAL_WORLD_SIZE: '2',
      MASTER_ADDR: '127.0.0.1',
      MASTER_PORT: `${port}`,
    }),
  ],
  [
    'srun',
    (rank: number, port: number) => ({
      SLURM_PROCID: `${rank}`,
      SLURM_LOCALID: `${rank}`,
      SLURM_NTASKS: '2',
      SLURM_NTASKS_PER_NODE: '2',
      SLURM_JOB_NODELIST: 'localhost',
      MASTER_PORT: `${port}`,
    }),
  ],
] as const) {
  test(`swav train started by ${launcher} (its environment variables) joins the other process: one job of 2`, async () => {
    const port = await freePort();
    const out = join(dir, `by-${launcher}`);
    const ranks = [0, 1].map(
      (rank) =>
        new Promise<{ code: number | null; stderr: string }>((done) => {
          const p = spawn(process.execPath, [cli, 'train', '--config', config, `run.out=${out}`, 'optim.batch_size=4'], {
            stdio: ['ignore', 'ignore', 'pipe'],
            env: { ...process.env, ...vars(rank, port) },
          });
          let stderr = '';
          p.stderr.on('data', (d) => {
            stderr += d;
          });
          p.on('close', (code) => done({ code, stderr }));
        }),
    );
    const [a, b] = await Promise.all(ranks);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    assert.match(a.stderr, /6 iterations of 4 x 2 processes per epoch/);
    assert.equal(b.stderr, '', 'rank 1 reports nothing');
    torch.tidy(() => assert.equal(torch.load(join(out, 'checkpoint.pth')).world_size, 2));
  });
}

test('two "nodes" on one machine (--nnodes 2, one process each) train together; Ctrl-C on the launchers stops both with a checkpoint, and the same commands resume', async () => {
  const port = await freePort();
  const out = join(dir, 'nodes');
  const node = (rank: number, ...more: string[]) =>
    spawn(
      process.execPath,
      [
        cli,
        'launch',
        '--nproc-per-node',
        '1',
        '--nnodes',
        '2',
        '--node-rank',
        String(rank),
        '--master-addr',
        '127.0.0.1',
        '--master-port',
        String(port),
        'train',
        '--config',
        config,
        `run.out=${out}`,
        'optim.batch_size=4',
        ...more,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
  const finish = (p: ReturnType<typeof spawn>) =>
    new Promise<{ code: number | null; stderr: string }>((done) => {
      let stderr = '';
      p.stderr!.on('data', (d) => {
        stderr += d;
      });
      p.on('close', (code) => done({ code, stderr }));
    });
  // both "nodes" log to the same directory; rank 0 alone writes its records
  const a = node(0, 'optim.epochs=1000');
  const b = node(1, 'optim.epochs=1000');
  let stderrA = '';
  a.stderr!.on('data', (d) => {
    stderrA += d;
    if (/epoch 1\/1000: loss/.test(stderrA) && !a.killed) {
      a.kill('SIGINT');
      b.kill('SIGINT');
    }
  });
  const [ra, rb] = await Promise.all([finish(a), finish(b)]);
  assert.equal(ra.code, 130, ra.stderr + stderrA);
  assert.equal(rb.code, 130, rb.stderr);
  assert.match(stderrA, /6 iterations of 4 x 2 processes per epoch/);
  assert.match(stderrA, /saved .*checkpoint\.pth at epoch \d+, iteration \d+; run the same command to resume/);
  torch.tidy(() => assert.equal(torch.load(join(out, 'checkpoint.pth')).world_size, 2));
  const again = [node(0, 'optim.epochs=1000', 'run.stop_after_epochs=1'), node(1, 'optim.epochs=1000', 'run.stop_after_epochs=1')];
  const [x, y] = await Promise.all(again.map(finish));
  assert.equal(x.code, 0, x.stderr);
  assert.equal(y.code, 0, y.stderr);
  assert.match(x.stderr, /resuming .* at epoch \d+, iteration \d+ of 6/);
  const one = spawnSync(process.execPath, [cli, 'train', '--config', config, `run.out=${out}`, 'optim.epochs=1000'], { encoding: 'utf8' });
  assert.equal(one.status, 1);
  assert.match(one.stderr, /was trained by 2 processes, this run has 1: .* resume with 2, or set run.out to another directory/);
});
