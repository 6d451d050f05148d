// The training configuration: defaults, overrides, and errors that name the offending key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  loadConfig,
  validateConfig,
  applyOverrides,
  configReference,
  ConfigError,
  METHOD_NAMES,
  type Config,
  type ConfigOf,
  type MethodName,
} from '../../src/train/config.js';
import { root } from '../helpers.js';

/** validateConfig, narrowed to the method the test expects (the check is part of the test). */
function configOf<M extends MethodName>(raw: unknown, method: M): ConfigOf<M> {
  const c = validateConfig(raw);
  assert.equal(c.method, method);
  return c as ConfigOf<M>;
}

const dir = mkdtempSync(join(tmpdir(), 'swav-config-'));
const file = (name: string, text: string) => {
  writeFileSync(join(dir, name), text);
  return join(dir, name);
};

test("defaults are main_swav.py's", () => {
  const c = configOf({ data: { path: '/data' } }, 'swav');
  assert.deepEqual([c.optim.base_lr, c.optim.final_lr, c.optim.epochs, c.optim.batch_size, c.optim.wd], [4.8, 0, 100, 64, 1e-6]);
  assert.deepEqual([c.swav.temperature, c.swav.epsilon, c.swav.sinkhorn_iterations, c.swav.freeze_prototypes_niters], [0.1, 0.05, 3, 313]);
  assert.deepEqual([c.model.arch, c.model.hidden_mlp, c.model.feat_dim, c.model.nmb_prototypes], ['resnet50', 2048, 128, 3000]);
  assert.deepEqual(c.crops.std, [0.228, 0.224, 0.225]);
});

test('an unknown or ill-typed key is an error naming its path', () => {
  assert.throws(() => validateConfig({ data: { path: '/d' }, optim: { lerning_rate: 1 } }), /optim\.lerning_rate: unknown key/);
  assert.throws(() => validateConfig({ data: { path: '/d' }, optim: { base_lr: 'fast' } }), /optim\.base_lr: must be a number, got "fast"/);
  assert.throws(
    () => validateConfig({ data: { path: '/d' }, optim: { epochs: 2.5 } }),
    /optim\.epochs: must be a positive integer or 'auto', got 2\.5/,
  );
  assert.throws(() => validateConfig({ data: { path: '/d' }, optimizer: {} }), /optimizer: unknown section \(did you mean 'optim'\?\)/);
  assert.throws(() => validateConfig({ data: { path: '/d' }, swav: { epsilonn: 0.05 } }), /did you mean 'swav\.epsilon'/);
  assert.throws(() => validateConfig({ data: { path: '/d' }, model: { arch: 'vgg' } }), /model\.arch: must be one of resnet18/);
  assert.throws(
    () => validateConfig({ data: { path: '/d' }, crops: { nmb_crops: [2, 6], size_crops: [224] } }),
    /crops\.size_crops: needs one value per group/,
  );
  assert.throws(
    () => validateConfig({ data: { path: '/d' }, crops: { min_scale_crops: [1.5] } }),
    /crops\.min_scale_crops\[0\]: must be at most 1/,
  );
  assert.throws(
    () => validateConfig({ data: { path: '/d' }, swav: { crops_for_assign: [0, 5] } }),
    /swav\.crops_for_assign\[1\]: crop 5 does not exist/,
  );
  assert.throws(() => validateConfig({}), /data\.path: where is the training data/);
});

test('files and key=value overrides', () => {
  const f = file('a.yaml', 'data: { path: /d }\noptim: { epochs: 3, warmup_epochs: 1 }\n');
  assert.equal(
    loadConfig(f, [
      'optim.epochs=7',
      'crops.nmb_crops=[2, 4]',
      'crops.size_crops=[32,16]',
      'crops.min_scale_crops=[0.2,0.1]',
      'crops.max_scale_crops=[1,0.5]',
    ]).optim.epochs,
    7,
  );
  assert.throws(
    () => loadConfig(file('b.yaml', 'data: { path: /d, typo: 1 }\n')),
    (e: Error) => e instanceof ConfigError && e.message.startsWith(`${join(dir, 'b.yaml')}: data.typo: unknown key`),
  );
  assert.throws(() => loadConfig(file('c.yaml', 'data: [unclosed\n')), ConfigError);
});

test('fuzz finding: a value that contains itself (an alias inside its own anchor) is shown as such, not a TypeError; long values are cut short', () => {
  const f = file('alias.yaml', 'data: { path: /d }\ncrops: { mean: &a [1, *a] }\n');
  assert.throws(
    () => loadConfig(f),
    (e: Error) =>
      e instanceof ConfigError &&
      e.message === `${f}: crops.mean[1]: must be a number, got a value that contains itself (an alias inside its own anchor)`,
  );
  const long = file('long.yaml', `data: { path: [${Array.from({ length: 100 }, (_, i) => i).join(', ')}] }\n`);
  assert.throws(
    () => loadConfig(long),
    (e: Error) => e instanceof ConfigError && /data\.path: must be a string, got \[0,1,2,.{60,80} \.\.\.$/.test(e.message),
  );
});

test('swav train with an unknown key fails with its path and an ordinary error exit, before doing anything', () => {
  const out = join(dir, 'run');
  const f = file(
    'bad.yaml',
    `data: { type: fashion-mnist, path: /usr/share/datasets/fashion-mnist }\nrun: { out: ${out} }\nswav: { queue_lenght: 10 }\n`,
  );
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

test('method: swav when not given; each method its section, with its defaults', () => {
  const swav = configOf({ data: { path: '/d' } }, 'swav');
  assert.deepEqual(METHOD_NAMES, ['swav', 'deepclusterv2', 'selav2']);
  const dc = configOf({ method: 'deepclusterv2', data: { path: '/d' } }, 'deepclusterv2');
  assert.deepEqual(dc.deepclusterv2, {
    crops_for_assign: [0, 1],
    temperature: 0.1,
    freeze_prototypes_niters: 300000,
    kmeans_iterations: 10,
  });
  assert.deepEqual(dc.model.nmb_prototypes, [3000, 3000, 3000]);
  const sela = configOf({ method: 'selav2', data: { path: '/d' }, selav2: null }, 'selav2');
  assert.deepEqual(sela.selav2, {
    crops_for_assign: [0, 1],
    temperature: 0.1,
    epsilon: 0.05,
    sinkhorn_iterations: 3,
    freeze_prototypes_niters: null,
  });
  assert.deepEqual(sela.model.nmb_prototypes, [3000, 3000, 3000]);
  assert.equal(
    validateConfig({ method: 'selav2', data: { path: '/d' }, model: { nmb_prototypes: 100 }, selav2: { freeze_prototypes_niters: 5 } })
      .model.nmb_prototypes,
    100,
  );
  assert.deepEqual(
    validateConfig({ method: 'deepclusterv2', data: { path: '/d' }, model: { nmb_prototypes: 50 } }).model.nmb_prototypes,
    50,
  );
  assert.ok(!('deepclusterv2' in swav) && !('swav' in dc), 'only the method in use has a section');
});

test('Config is a union that narrows on method', () => {
  const raw: unknown = { method: 'deepclusterv2', data: { path: '/d' } };
  const c: Config = validateConfig(raw);
  // @ts-expect-error: not every method has a swav section
  assert.equal(c.swav, undefined);
  const prototypes: number | number[] = c.model.nmb_prototypes;
  assert.deepEqual(prototypes, [3000, 3000, 3000]);
  let iterations = 0;
  if (c.method === 'deepclusterv2') iterations = c.deepclusterv2.kmeans_iterations;
  assert.equal(iterations, 10);
  const selaOf = (x: Config): ConfigOf<'selav2'> | null => (x.method === 'selav2' ? x : null);
  assert.equal(selaOf(c), null);
  const m: MethodName = c.method;
  assert.equal(m, 'deepclusterv2');
});

test("a method's errors: another method's section, an option in the wrong section, an unknown method", () => {
  const d = { path: '/d' };
  assert.throws(() => validateConfig({ method: 'deepclusterv2', data: d, swav: { epsilon: 0.05 } }), {
    message: 'swav: options of method swav, but method is deepclusterv2 (set method: swav, or move them to the deepclusterv2 section)',
  });
  assert.throws(() => validateConfig({ data: d, selav2: {} }), /selav2: options of method selav2, but method is swav \(set method: selav2/);
  assert.throws(() => validateConfig({ method: 'deepclusterv2', data: d, deepclusterv2: { epsilon: 0.05 } }), {
    message:
      'deepclusterv2.epsilon: unknown key (epsilon is an option of selav2, swav); keys of deepclusterv2: crops_for_assign, temperature, freeze_prototypes_niters, kmeans_iterations',
  });
  assert.throws(
    () => validateConfig({ data: d, swav: { kmeans_iterations: 3 } }),
    /swav\.kmeans_iterations: unknown key \(kmeans_iterations is an option of deepclusterv2\)/,
  );
  assert.throws(() => validateConfig({ method: 'dc', data: d }), {
    message: 'method: must be one of swav, deepclusterv2, selav2, got "dc"',
  });
  assert.throws(() => validateConfig({ data: d, model: { nmb_prototypes: [3000, 3000] } }), {
    message: 'model.nmb_prototypes: SwAV trains one prototype head: give a number, got [3000,3000]',
  });
  assert.throws(
    () => validateConfig({ method: 'selav2', data: d, model: { nmb_prototypes: [3000, 0] } }),
    /model\.nmb_prototypes\[1\]: must be at least 1, got 0$/,
  );
  assert.throws(
    () => validateConfig({ method: 'deepclusterv2', data: d, deepclusterv2: { crops_for_assign: [0, 2] } }),
    /deepclusterv2\.crops_for_assign\[1\]: crop 2 does not exist \(2 crops\)$/,
  );
  assert.throws(
    () => validateConfig({ method: 'deepclusterv2', data: d, deepclusterv2: { kmeans_iterations: 0 } }),
    /deepclusterv2\.kmeans_iterations: must be at least 1, got 0$/,
  );
  assert.throws(
    () => validateConfig({ method: 'selav2', data: d, selav2: { freeze_prototypes_niters: 1.5 } }),
    /selav2\.freeze_prototypes_niters: must be an integer, got 1\.5$/,
  );
});

test('the messages of every kind of value error', () => {
  const d = { path: '/d' };
  const fails = (raw: unknown, message: string) => assert.throws(() => validateConfig(raw), { message });
  fails({ data: d, optim: { batch_size: 1 } }, 'optim.batch_size: must be at least 2, got 1');
  fails({ data: d, optim: { epochs: 'x' } }, 'optim.epochs: must be a positive integer or \'auto\', got "x"');
  fails({ data: d, optim: { epochs: 0 } }, 'optim.epochs: must be at least 1, got 0');
  fails({ data: d, optim: { larc: 'yes' } }, 'optim.larc: must be true or false, got "yes"');
  fails({ data: d, run: { device: null } }, 'run.device: must not be empty');
  fails({ data: d, run: { out: 3 } }, 'run.out: must be a string, got 3');
  fails({ data: d, crops: { size_crops: [] } }, 'crops.size_crops: must be a list of numbers, got []');
  fails({ data: d, crops: { max_scale_crops: 1.5 } }, 'crops.max_scale_crops[0]: must be at most 1, got 1.5');
  fails({ data: d, optim: 3 }, 'optim: must be a mapping');
  fails(
    { data: d, optimizer: {} },
    "optimizer: unknown section (did you mean 'optim'?); sections: data, crops, model, swav, optim, run (and the key method)",
  );
  fails(
    { data: d, optim: { temperature: 0.1 } },
    "optim.temperature: unknown key (did you mean 'swav.temperature'?); keys of optim: " +
      'epochs, batch_size, base_lr, final_lr, warmup_epochs, start_warmup, wd, momentum, larc, trust_coefficient',
  );
  fails({ data: d, model: { nmb_prototypes: 'many' } }, 'model.nmb_prototypes: must be an integer or a list of integers, got "many"');
  fails({ data: d, optim: { epochs: 2, warmup_epochs: 3 } }, 'optim.warmup_epochs: 3 exceeds optim.epochs');
  fails({ data: d, crops: { blur_radius: 1 } }, 'crops.blur_radius: needs [min, max]');
  fails({ data: d, crops: { nmb_crops: 1 } }, 'crops.nmb_crops: SwAV needs at least 2 crops');
  fails('x', 'config: the top level must be a mapping of sections');
  // a bare number is a one-element list; an empty section takes the defaults
  const c = validateConfig({ data: d, crops: { nmb_crops: 2, size_crops: 96, min_scale_crops: 0.2, max_scale_crops: 1 }, optim: null });
  assert.deepEqual([c.crops.nmb_crops, c.crops.size_crops, c.optim.epochs], [[2], [96], 100]);
});

test('method=NAME as an override; other keys still need section.key', () => {
  const f = file('m.yaml', 'data: { path: /d }\nmodel: { nmb_prototypes: [30, 30] }\n');
  const c = loadConfig(f, ['method=selav2', 'selav2.epsilon=0.1']);
  assert.equal(c.method, 'selav2');
  assert.equal(c.method === 'selav2' && c.selav2.epsilon, 0.1);
  assert.deepEqual(applyOverrides({}, ['method=deepclusterv2']), { method: 'deepclusterv2' });
  assert.throws(() => applyOverrides({}, ['epochs=3']), /override 'epochs=3': expected section\.key=value/);
  assert.throws(
    () => loadConfig(f, ['method=dc']),
    (e: Error) => e.message === `${f}: method: must be one of swav, deepclusterv2, selav2, got "dc"`,
  );
  assert.throws(
    () => loadConfig(f),
    (e: Error) => e.message.startsWith(`${f}: model.nmb_prototypes: SwAV trains one prototype head`),
  );
});

test('the reference lists every key with its default; swav train --help prints it', () => {
  const ref = configReference();
  for (const line of [
    'method: swav | deepclusterv2 | selav2 (default: swav)',
    '  optim.base_lr: number >= 0 (default: 4.8)',
    '  model.nmb_prototypes: integer >= 1, or list of (integer >= 1) (default: 3000 (swav); [3000, 3000, 3000] (deepclusterv2, selav2))',
    'deepclusterv2 (method: deepclusterv2 only): ',
    '  selav2.freeze_prototypes_niters: integer >= 0, or null (default: null)',
    "      iterations during which the prototypes are not updated; null: the first epoch's",
  ]) {
    assert.ok(ref.includes(line), `the reference has ${JSON.stringify(line)}`);
  }
  const r = spawnSync(process.execPath, [join(root, 'dist/src/cli/main.js'), 'train', '--help'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^Usage: swav train --config FILE/);
  assert.match(r.stdout, /^ {2}deepclusterv2\.kmeans_iterations: integer >= 1 \(default: 10\)$/m);
  assert.match(r.stdout, /^ {2}selav2\.epsilon: number >= 0 \(default: 0\.05\)$/m);
  assert.ok(r.stdout.trimEnd().endsWith(ref.trimEnd()), 'the reference closes the help');
});
