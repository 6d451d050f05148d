// Every user mistake gets one clear line and exit status 1 or 2, no stack trace, and leaves nothing behind: the
// README's table of what was tried ("Mistakes"), row by row.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { torch, models } from '../../src/index.js';
import { idxDataset, root } from '../helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'swav-mistakes-'));
const cli = join(root, 'dist/src/cli/main.js');
const data = idxDataset(join(dir, 'idx'), 4);
const ok = join(dir, 'ok.yaml');
writeFileSync(
  ok,
  `
data: { type: idx, path: ${data} }
crops: { nmb_crops: [2], size_crops: [12], min_scale_crops: [0.4], max_scale_crops: [1], mean: [0.5], std: [0.25] }
model: { arch: resnet18, stem: small, width: 4, in_channels: 1, hidden_mlp: 8, feat_dim: 8, nmb_prototypes: 6 }
swav: { queue_length: 0 }
optim: { epochs: 1, batch_size: 8, warmup_epochs: 0 }
run: { threads: 1 }
`,
);
writeFileSync(join(dir, 'bad.yaml'), 'data: {type: folder, path: /x\nrun: [\n');
writeFileSync(join(dir, 'afile'), 'x');
mkdirSync(join(dir, 'empty'));
mkdirSync(join(dir, 'texts'));
writeFileSync(join(dir, 'texts', 'notes.txt'), 'not an image');
const out = join(dir, 'out');
torch.tidy(() => torch.save(torch.zeros([2, 5, 5]), join(dir, 'flat.npy')));
torch.tidy(() => torch.save({ 'conv1.weight': torch.zeros([3, 3, 3, 3]) }, join(dir, 'other.pth')));
const rn18 = models.resnet18({ numClasses: 0 });
torch.tidy(() => torch.save(new Map(Object.entries(rn18.stateDict())), join(dir, 'resnet18.pth')));
rn18.dispose();

const rows: [string, string[], RegExp][] = [
  ['an unknown command', ['frobnicate'], /unknown command 'frobnicate'/],
  ['an unknown option', ['train', '--config', ok, '--epoch', '3'], /unknown option '--epoch'/],
  ['a missing config file', ['train', '--config', join(dir, 'nosuch.yaml')], /nosuch\.yaml: ENOENT/],
  ['YAML that does not parse', ['train', '--config', join(dir, 'bad.yaml')], /bad\.yaml: .* at line \d+, column \d+ \(not valid YAML\)$/],
  ['an unknown key', ['train', '--config', ok, 'optim.lerning_rate=1'], /optim\.lerning_rate: unknown key/],
  ['a value of the wrong type', ['train', '--config', ok, 'optim.batch_size=big'], /optim\.batch_size: must be an integer, got "big"/],
  ['a negative size', ['train', '--config', ok, 'crops.size_crops=[-12]'], /crops\.size_crops\[0\]: must be at least 1, got -12/],
  [
    'a data path that does not exist',
    ['train', '--config', ok, `run.out=${out}`, 'data.path=/nonexistent'],
    /data not found at \/nonexistent/,
  ],
  [
    'an empty image folder',
    ['train', '--config', ok, `run.out=${out}`, 'data.type=folder', `data.path=${join(dir, 'empty')}`, 'model.in_channels=3'],
    /no images .* found/,
  ],
  [
    'a folder without images',
    ['train', '--config', ok, `run.out=${out}`, 'data.type=folder', `data.path=${join(dir, 'texts')}`, 'model.in_channels=3'],
    /no images .* found/,
  ],
  [
    'a file where a folder should be',
    ['train', '--config', ok, `run.out=${out}`, 'data.type=folder', `data.path=${join(dir, 'afile')}`, 'model.in_channels=3'],
    /afile is a file, not a folder of images/,
  ],
  [
    'a run directory that is a file',
    ['train', '--config', ok, `run.out=${join(dir, 'afile')}`],
    /run\.out .*afile is a file: set run\.out to a directory/,
  ],
  [
    '--device cuda without CUDA',
    ['train', '--config', ok, `run.out=${out}`, 'run.device=cuda'],
    /run\.device cuda: this libtorch has no CUDA/,
  ],
  [
    'channels that do not match the data',
    ['train', '--config', ok, `run.out=${out}`, 'model.in_channels=3'],
    /1-channel images but model\.in_channels is 3/,
  ],
  [
    'an unknown zoo name',
    ['extract', '--arch', 'resnet50', '--weights', 'swav_900ep', '--input', join(dir, 'flat.npy'), '--out', join(out, 'f.npy')],
    /--weights swav_900ep is neither a file nor a zoo name/,
  ],
  [
    'weights that are no ResNet',
    ['extract', '--arch', 'resnet50', '--weights', join(dir, 'other.pth'), '--input', join(dir, 'flat.npy'), '--out', join(out, 'f.npy')],
    /other\.pth holds no ResNet trunk we know/,
  ],
  [
    'a checkpoint of another architecture',
    [
      'extract',
      '--arch',
      'resnet50',
      '--weights',
      join(dir, 'resnet18.pth'),
      '--input',
      join(dir, 'flat.npy'),
      '--out',
      join(out, 'f.npy'),
    ],
    /resnet18\.pth holds a resnet18, not a resnet50/,
  ],
  [
    'an input of the wrong shape',
    [
      'extract',
      '--arch',
      'resnet18',
      '--weights',
      join(dir, 'resnet18.pth'),
      '--input',
      join(dir, 'flat.npy'),
      '--out',
      join(out, 'f.npy'),
    ],
    /flat\.npy must hold an N x 3 x H x W array of normalized images, it holds shape \[2,5,5\]/,
  ],
  ['a bad number', ['eval', 'knn', '--weights', dir, '--k', 'many'], /argument 'many' is invalid\. expected positive numbers/],
];

for (const [what, args, message] of rows) {
  test(`${what}: one line, exit status 1 or 2, nothing written`, () => {
    const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', cwd: dir });
    assert.ok(r.status === 1 || r.status === 2, `exit status ${r.status}: ${r.stderr}`);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `one line: ${r.stderr}`);
    assert.match(lines[0], /^swav( [a-z]+)*: /);
    assert.match(lines[0], message);
    assert.doesNotMatch(r.stderr, /\n\s+at |Error:/, 'no stack trace');
    assert.ok(!existsSync(out) || readdirSync(out).length === 0, `nothing written in ${out}`);
    assert.ok(!existsSync(join(dir, 'runs')), 'no default run directory made');
  });
}
