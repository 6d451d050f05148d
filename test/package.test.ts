// swav as a package: `npm pack` in a clean clone (its prepack builds the JavaScript), the tarball installed into a
// new project (its install script builds the addon), then the library imported and the CLI run from there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { idxDataset, root } from './helpers.js';

const npm = process.env.npm_execpath ? [process.execPath, process.env.npm_execpath] : ['npm'];
function sh(cmd: string[], o: SpawnSyncOptions & { cwd: string }): string {
  const r = spawnSync(cmd[0], cmd.slice(1), { encoding: 'utf8', timeout: 900_000, ...o });
  assert.equal(r.status, 0, `${cmd.join(' ')} in ${o.cwd}:\n${r.stdout}\n${r.stderr}`);
  return String(r.stdout);
}

test('npm pack of a clean clone installs into a new project: the library imports, swav --version and a tiny swav train run', {
  timeout: 1_500_000,
}, () => {
  const dir = mkdtempSync(join(tmpdir(), 'swav-package-'));
  const clone = join(dir, 'clone');
  sh(['git', 'clone', '-q', root, clone], { cwd: dir });
  // the clone borrows this checkout's dependencies and compiled addon (the same sources): prepack then builds only
  // the TypeScript, which a clone lacks
  symlinkSync(join(root, 'node_modules'), join(clone, 'node_modules'));
  mkdirSync(join(clone, 'build', 'Release'), { recursive: true });
  copyFileSync(join(root, 'build', 'Release', 'swav_native.node'), join(clone, 'build', 'Release', 'swav_native.node'));
  const later = new Date(Date.now() + 60_000);
  utimesSync(join(clone, 'build', 'Release', 'swav_native.node'), later, later);
  const printed = sh([...npm, 'pack', '--json'], { cwd: clone });
  const [packed] = JSON.parse(printed.slice(printed.search(/^\[$/m))); // (after prepack's own lines)
  const files: string[] = packed.files.map((f: { path: string }) => f.path);
  assert.ok(files.includes('dist/src/index.js') && files.includes('dist/src/cli/main.js'), 'the built JavaScript is in the tarball');
  assert.ok(files.includes('binding.gyp') && files.includes('native/addon.cc') && files.includes('LICENSE'));
  assert.deepEqual(
    files.filter((f) => /(^|\/)test\/|\.test\.|^bench\/|^src\//.test(f)),
    [],
    'no tests, benchmarks or TypeScript sources',
  );

  const app = join(dir, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', type: 'module', private: true }));
  sh([...npm, 'install', '--no-audit', '--no-fund', '--prefer-offline', join(clone, packed.filename)], { cwd: app });
  const out = sh(
    [
      process.execPath,
      '-e',
      "import { torch, models } from 'swav'; const m = models.resnet18({ numClasses: 0 }); " +
        "console.log(torch.tidy(() => m.forward(torch.randn([2, 3, 32, 32])).shape.join('x')));",
    ],
    { cwd: app },
  );
  assert.equal(out.trim(), '2x512');
  const swav = join(app, 'node_modules', '.bin', 'swav');
  assert.equal(sh([swav, '--version'], { cwd: app }).trim(), '0.1.0');
  const data = idxDataset(join(dir, 'idx'), 3);
  writeFileSync(
    join(app, 'tiny.yaml'),
    `
data: { type: idx, path: ${data} }
crops: { nmb_crops: [2], size_crops: [12], min_scale_crops: [0.4], max_scale_crops: [1], mean: [0.5], std: [0.25] }
model: { arch: resnet18, stem: small, width: 4, in_channels: 1, hidden_mlp: 8, feat_dim: 8, nmb_prototypes: 6 }
swav: { queue_length: 0 }
optim: { epochs: 1, batch_size: 8, warmup_epochs: 0 }
run: { threads: 1, out: ${join(dir, 'run')} }
`,
  );
  const r = spawnSync(swav, ['train', '--config', 'tiny.yaml'], { cwd: app, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /epoch 1\/1: loss/);
});
