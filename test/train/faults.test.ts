// Faults in the middle of training: SIGKILL at random moments (also while the checkpoint is being written) then the
// same command again ends with the weights of a run never interrupted; SIGTERM stops with a checkpoint as Ctrl-C
// does; a file size limit hit while writing the checkpoint is a clear error that leaves the previous one intact;
// a run directory that cannot be written is a clear error; images deleted during training are skipped and counted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, watch } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { torch } from '../../src/index.js';
import { assertSameCheckpoint, idxDataset, root, tinySwavConfig } from '../helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'swav-faults-'));
chmodSync(dir, 0o755);
const cli = join(root, 'dist/src/cli/main.js');
const data = idxDataset(join(dir, 'idx'), 9, 96);
const config = tinySwavConfig(join(dir, 'tiny.yaml'), data, { epochs: 6, logEvery: 4 });
const train = (...args: string[]) => spawnSync(process.execPath, [cli, 'train', '--config', config, ...args], { encoding: 'utf8' });
const reference = join(dir, 'uninterrupted');
const methodKeys = ['queue', 'use_the_queue'];

/** Starts `swav train` into `out`; kills it with SIGKILL when `when` says so; resolves with its exit signal. */
function killed(out: string, when: (child: ReturnType<typeof spawn>) => void): Promise<NodeJS.Signals | null> {
  const child = spawn(process.execPath, [cli, 'train', '--config', config, `run.out=${out}`], { stdio: 'ignore' });
  when(child);
  return new Promise((done) => child.on('exit', (_code, signal) => done(signal)));
}

let runMs = 0;
test('the uninterrupted reference run', () => {
  const t0 = Date.now();
  const r = train(`run.out=${reference}`);
  runMs = Date.now() - t0;
  assert.equal(r.status, 0, r.stderr);
});

test('SIGKILL at random moments, then the same command: the weights of the uninterrupted run, bit for bit', async () => {
  const seed = Date.now() % 100_000;
  let s = seed;
  const random = () => (s = (s * 16807) % 2147483647) / 2147483647;
  for (let round = 0; round < 3; round++) {
    const out = join(dir, `killed-${round}`);
    let kills = 0;
    // kill again and again (the first time early, then later) until a run gets to the end
    for (let attempt = 0; attempt < 4; attempt++) {
      const delay = runMs * (0.1 + (attempt === 0 ? 0.5 : 0.8) * random()); // the first kill surely before the end
      const signal = await killed(out, (child) => setTimeout(() => child.kill('SIGKILL'), delay));
      if (signal !== 'SIGKILL') break;
      kills++;
      if (existsSync(join(out, 'checkpoint.pth'))) torch.tidy(() => torch.load(join(out, 'checkpoint.pth'))); // always loads
    }
    const r = train(`run.out=${out}`);
    assert.equal(r.status, 0, `seed ${seed}, round ${round}: ${r.stderr}`);
    assert.ok(kills > 0, `seed ${seed}: the run was killed at least once`);
    assertSameCheckpoint(reference, out, methodKeys);
  }
});

test('SIGKILL while the checkpoint is being written: the previous one loads, and the run ends as the uninterrupted one', async () => {
  const out = join(dir, 'killed-writing');
  mkdirSync(out);
  let hit = 0;
  for (let attempt = 0; attempt < 6 && hit < 2; attempt++) {
    const before = existsSync(join(out, 'checkpoint.pth')) ? readFileSync(join(out, 'checkpoint.pth')) : null;
    const signal = await killed(out, (child) => {
      const w = watch(out, (_event, name) => {
        if (name && /^\.checkpoint\.pth\.tmp-/.test(String(name))) {
          child.kill('SIGKILL');
          w.close();
        }
      });
      child.on('exit', () => w.close());
    });
    if (signal !== 'SIGKILL') break;
    hit++;
    const after = existsSync(join(out, 'checkpoint.pth')) ? readFileSync(join(out, 'checkpoint.pth')) : null;
    assert.deepEqual(after, before, 'the checkpoint under the final name is the previous one, whole');
    if (after) torch.tidy(() => torch.load(join(out, 'checkpoint.pth')));
  }
  assert.ok(hit > 0, 'a kill landed during a checkpoint write');
  const r = train(`run.out=${out}`);
  assert.equal(r.status, 0, r.stderr);
  assertSameCheckpoint(reference, out, methodKeys);
});

test("SIGTERM (SLURM's preemption) stops with a checkpoint as Ctrl-C does; the same command resumes to the same weights", async () => {
  const out = join(dir, 'sigterm');
  const child = spawn(process.execPath, [cli, 'train', '--config', config, `run.out=${out}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const code = await new Promise<number | null>((done) => {
    child.stderr.on('data', (d) => {
      stderr += d;
      if (/epoch 2\/6: loss/.test(stderr) && !child.killed) child.kill('SIGTERM');
    });
    child.on('close', (c) => done(c));
  });
  assert.equal(code, 130, stderr);
  assert.match(stderr, /saved .*checkpoint\.pth at epoch \d+, iteration \d+; run the same command to resume/);
  assert.equal(train(`run.out=${out}`).status, 0);
  assertSameCheckpoint(reference, out, methodKeys);
});

test('a file size limit (RLIMIT_FSIZE) hit while writing the checkpoint: one clear error, the previous checkpoint intact, no partial file', () => {
  const out = join(dir, 'fsize');
  assert.equal(train(`run.out=${out}`, 'run.stop_after_epochs=1').status, 0);
  const before = readFileSync(join(out, 'checkpoint.pth'));
  const limit = Math.floor(before.length / 2 / 512); // ulimit -f counts 512-byte blocks: half the checkpoint
  const r = spawnSync(
    'bash',
    ['-c', `ulimit -f ${limit}; exec "$@"`, 'bash', process.execPath, cli, 'train', '--config', config, `run.out=${out}`],
    { encoding: 'utf8' },
  );
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /^swav: error: .*(EFBIG|file too large)/im);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  assert.ok(readFileSync(join(out, 'checkpoint.pth')).equals(before), 'the previous checkpoint, byte for byte');
  assert.deepEqual(
    readdirSync(out).filter((f) => f.includes('.tmp')),
    [],
    'no temporary file left',
  );
  assert.equal(train(`run.out=${out}`).status, 0, 'without the limit the run goes on');
  assertSameCheckpoint(reference, out, methodKeys);
});

test('a run directory that cannot be written: one clear error naming it, nothing written', () => {
  const out = join(dir, 'readonly');
  assert.equal(train(`run.out=${out}`, 'run.stop_after_epochs=1').status, 0);
  const before = readFileSync(join(out, 'checkpoint.pth'));
  chmodSync(out, 0o555);
  try {
    // as an unprivileged user where the tests run as root (root writes anywhere)
    const asUser = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
    const r = spawnSync(process.execPath, [cli, 'train', '--config', config, `run.out=${out}`], { encoding: 'utf8', ...asUser });
    assert.equal(r.status, 1, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(`^swav: error: run\\.out ${out.replace(/[/.]/g, '\\$&')} cannot be written \\(EACCES\\): make it writable`, 'm'),
    );
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    assert.ok(readFileSync(join(out, 'checkpoint.pth')).equals(before));
  } finally {
    chmodSync(out, 0o755);
  }
});

test('images deleted from a folder during training are skipped and counted; the run ends', async () => {
  const folder = join(dir, 'folder');
  mkdirSync(folder);
  // PNGs from the IDX images (PIL-free): sharp writes them
  const sharp = (await import('sharp')).default;
  const raw = readFileSync(join(data, 'train-images-idx3-ubyte')).subarray(16);
  for (let i = 0; i < 64; i++) {
    await sharp(raw.subarray(i * 144, (i + 1) * 144), { raw: { width: 12, height: 12, channels: 1 } })
      .png()
      .toFile(join(folder, `img${String(i).padStart(2, '0')}.png`));
  }
  const out = join(dir, 'deleted');
  const child = spawn(
    process.execPath,
    [
      cli,
      'train',
      '--config',
      config,
      `run.out=${out}`,
      'data.type=folder',
      `data.path=${folder}`,
      'data.workers=1',
      'optim.epochs=4',
      'model.in_channels=3',
      'crops.mean=[0.5,0.5,0.5]',
      'crops.std=[0.25,0.25,0.25]',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  const code = await new Promise<number | null>((done) => {
    child.stderr.on('data', (d) => {
      stderr += d;
      if (/epoch 1\/4: loss/.test(stderr) && existsSync(join(folder, 'img00.png'))) {
        for (let i = 0; i < 8; i++) rmSync(join(folder, `img${String(i).padStart(2, '0')}.png`));
      }
    });
    child.on('close', (c) => done(c));
  });
  assert.equal(code, 0, stderr);
  assert.match(stderr, /warning: skipped an unreadable image: .*img0\d\.png/);
  const epochs = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .filter((m) => m.type === 'epoch');
  assert.equal(epochs.length, 4);
  assert.ok(epochs[3].skipped_images > 0 && epochs[3].skipped_images <= 8, JSON.stringify(epochs[3]));
  assert.ok(statSync(join(out, 'checkpoint.pth')).size > 0);
});
