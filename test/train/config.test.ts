// The training configuration: defaults, overrides, and errors that name the offending key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, validateConfig, ConfigError } from '../../src/train/config.js';
import { root } from '../helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'swav-config-'));
const file = (name: string, text: string) => { writeFileSync(join(dir, name), text); return join(dir, name); };

test("defaults are main_swav.py's", () => {
  const c = validateConfig({ data: { path: '/data' } });
  assert.deepEqual([c.optim.base_lr, c.optim.final_lr, c.optim.epochs, c.optim.batch_size, c.optim.wd], [4.8, 0, 100, 64, 1e-6]);
  assert.deepEqual([c.swav.temperature, c.swav.epsilon, c.swav.sinkhorn_iterations, c.swav.freeze_prototypes_niters], [0.1, 0.05, 3, 313]);
  assert.deepEqual([c.model.arch, c.model.hidden_mlp, c.model.feat_dim, c.model.nmb_prototypes], ['resnet50', 2048, 128, 3000]);
  assert.deepEqual(c.crops.std, [0.228, 0.224, 0.225]);
});

test('an unknown or ill-typed key is an error naming its path', () => {
  assert.throws(() => validateConfig({ data: { path: '/d' }, optim: { lerning_rate: 1 } }), /optim\.lerning_rate: unknown key/);
  assert.throws(() => validateConfig({ data: { path: '/d' }, optim: { base_lr: 'fast' } }), /optim\.base_lr: must be a number, got "fast"/);
  assert.throws(() => validateConfig({ data: { path: '/d' }, optim: { epochs: 2.5 } }), /optim\.epochs: must be an integer/);
  assert.throws(() => validateConfig({ data: { path: '/d' }, optimizer: {} }), /optimizer: unknown section \(did you mean 'optim'\?\)/);
  assert.throws(() => validateConfig({ data: { path: '/d' }, swav: { epsilonn: 0.05 } }), /did you mean 'swav\.epsilon'/);
  assert.throws(() => validateConfig({ data: { path: '/d' }, model: { arch: 'vgg' } }), /model\.arch: must be one of resnet18/);
  assert.throws(() => validateConfig({ data: { path: '/d' }, crops: { nmb_crops: [2, 6], size_crops: [224] } }), /crops\.size_crops: needs one value per group/);
  assert.throws(() => validateConfig({ data: { path: '/d' }, crops: { min_scale_crops: [1.5] } }), /crops\.min_scale_crops\[0\]: must be at most 1/);
  assert.throws(() => validateConfig({ data: { path: '/d' }, swav: { crops_for_assign: [0, 5] } }), /swav\.crops_for_assign\[1\]: crop 5 does not exist/);
  assert.throws(() => validateConfig({}), /data\.path: where is the training data/);
});

test('files and key=value overrides', () => {
  const f = file('a.yaml', 'data: { path: /d }\noptim: { epochs: 3, warmup_epochs: 1 }\n');
  assert.equal(loadConfig(f, ['optim.epochs=7', 'crops.nmb_crops=[2, 4]', 'crops.size_crops=[32,16]', 'crops.min_scale_crops=[0.2,0.1]', 'crops.max_scale_crops=[1,0.5]']).optim.epochs, 7);
  assert.throws(() => loadConfig(file('b.yaml', 'data: { path: /d, typo: 1 }\n')), (e: Error) => e instanceof ConfigError && e.message.startsWith(`${join(dir, 'b.yaml')}: data.typo: unknown key`));
  assert.throws(() => loadConfig(file('c.yaml', 'data: [unclosed\n')), ConfigError);
});

test('swav train with an unknown key fails with its path and an ordinary error exit, before doing anything', () => {
  const out = join(dir, 'run');
  const f = file('bad.yaml', `data: { type: fashion-mnist, path: /usr/share/datasets/fashion-mnist }\nrun: { out: ${out} }\nswav: { queue_lenght: 10 }\n`);
  const r = spawnSync(process.execPath, [join(root, 'dist/src/cli/main.js'), 'train', '--config', f], { encoding: 'utf8' });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /swav: error: .*bad\.yaml: swav\.queue_lenght: unknown key \(did you mean 'swav\.queue_length'\?\)/);
  assert.throws(() => readdirSync(out), 'no run directory was made');
});

test('every config in configs/ is valid', () => {
  for (const f of readdirSync(join(root, 'configs'))) loadConfig(join(root, 'configs', f));
});

test('run.amp auto is bf16 on a CPU with native bf16, else fp32; fp16 on a CPU is refused', async () => {
  const { resolveAmp } = await import('../../src/train/trainer.js');
  const { torch } = await import('../../src/index.js');
  assert.equal(validateConfig({ data: { path: '/data' } }).run.amp, 'auto');
  assert.equal(resolveAmp('auto', 'cuda'), 'fp32');
  assert.equal(resolveAmp('auto', 'cpu'), torch.cpu.hasNativeBf16() ? 'bf16' : 'fp32');
  assert.equal(resolveAmp('fp32', 'cpu'), 'fp32');
  assert.throws(() => resolveAmp('fp16', 'cpu'), /fp16 autocast needs CUDA; on a CPU use bf16/);
});
