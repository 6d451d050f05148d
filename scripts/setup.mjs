#!/usr/bin/env node
// Brings a clone to a working state, doing only what is missing (dependency-free; quick when all is there):
//   1. Debian/Ubuntu packages: libtorch, OpenBLAS, PyTorch for the test oracle, Fashion-MNIST, build tools
//   2. npm ci            3. the native addon (node-gyp, against the libtorch found)      4. the TypeScript build
// Flags: --quiet (print only what it does), --build-only (skip packages and npm ci), --addon-only (the addon alone:
// what `npm install swav` runs; the package ships its JavaScript built).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const quiet = args.includes('--quiet');
const addonOnly = args.includes('--addon-only');
const buildOnly = addonOnly || args.includes('--build-only');

const say = (msg) => console.log(`[setup] ${msg}`);
const fail = (msg) => {
  console.error(`[setup] FAILED: ${msg}`);
  process.exit(1);
};

function run(cmd, argv, opts = {}) {
  say(`$ ${[cmd, ...argv].join(' ')}`);
  const r = spawnSync(cmd, argv, { stdio: 'inherit', cwd: root, ...opts });
  return r.status === 0;
}

// ---------------------------------------------------------------- 1. system packages
const PACKAGES = [
  // the engine, and a fast BLAS for it (the reference BLAS is ~10x slower)
  ['libtorch-dev', () => !process.env.LIBTORCH && !process.env.TORCH_INSTALL_PREFIX],
  ['libopenblas0-openmp', () => true],
  // JPEG decoding in the addon (the libjpeg-turbo that PIL uses; without it sharp decodes, several times slower)
  ['libjpeg-dev', () => true],
  // c10d over Gloo (the headers ProcessGroupGloo.hpp includes; without them the addon builds without src/dist's c10d)
  ['libgloo-dev', () => !process.env.LIBTORCH && !process.env.TORCH_INSTALL_PREFIX],
  // the oracle of the differential tests
  ['python3-torch', () => true],
  ['python3-torchvision', () => true],
  ['python3-numpy', () => true],
  ['python3-pil', () => true],
  // the oracle of the file-format tests (ONNX export, TensorBoard event files)
  ['python3-onnx', () => true],
  ['python3-protobuf', () => true],
  // the browser of the dashboard's test (swav serve, driven by playwright-core: /usr/bin/chromium)
  ['chromium', () => true],
  // the quickstart's data
  ['dataset-fashion-mnist', () => true],
  // the addon's build
  ['g++', () => true],
  ['make', () => true],
  ['python3', () => true],
];

function installed(pkg) {
  try {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format syntax, not a template
    return execFileSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).includes(
      'install ok installed',
    );
  } catch {
    return false;
  }
}

function hasCommand(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

function systemPackages() {
  const wanted = PACKAGES.filter(([, when]) => when()).map(([p]) => p);
  if (!hasCommand('dpkg-query')) {
    if (!quiet) say(`not a Debian/Ubuntu system: make sure these (or their equivalents) are installed: ${wanted.join(' ')}`);
    return;
  }
  const missing = wanted.filter((p) => !installed(p));
  if (!missing.length) return;
  say(`missing system packages: ${missing.join(' ')}`);
  const isRoot = process.getuid?.() === 0;
  const sudo = !isRoot && hasCommand('sudo') && spawnSync('sudo', ['-n', 'true'], { stdio: 'ignore' }).status === 0;
  const command = `${isRoot ? '' : 'sudo '}apt-get install -y ${missing.join(' ')}`;
  if (!isRoot && !sudo) {
    fail(`cannot install system packages without root. Run:\n\n    sudo apt-get update && ${command}\n\nthen run \`npm run setup\` again.`);
  }
  const base = isRoot ? ['apt-get'] : ['sudo', '-n', 'apt-get'];
  const apt = (...a) => run(base[0], [...base.slice(1), ...a], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  if (!apt('install', '-y', '-q', ...missing)) {
    say('retrying after apt-get update');
    if (!apt('update', '-q') || !apt('install', '-y', '-q', ...missing)) {
      fail(`apt-get could not install ${missing.join(' ')}. Try by hand:\n\n    sudo apt-get update && ${command}\n`);
    }
  }
}

// ---------------------------------------------------------------- helpers for "is it up to date"
function newest(paths) {
  let t = 0;
  const visit = (p) => {
    if (!existsSync(p)) return;
    const s = statSync(p);
    if (s.isDirectory()) {
      for (const e of readdirSync(p)) if (e !== 'node_modules' && !e.startsWith('.')) visit(join(p, e));
    } else {
      t = Math.max(t, s.mtimeMs);
    }
  };
  paths.forEach((p) => visit(join(root, p)));
  return t;
}
const mtime = (p) => (existsSync(join(root, p)) ? statSync(join(root, p)).mtimeMs : 0);

// ---------------------------------------------------------------- 2. npm ci
function npmCi() {
  const stamp = 'node_modules/.package-lock.json';
  if (existsSync(join(root, stamp)) && mtime(stamp) >= mtime('package-lock.json')) return;
  const npm = process.env.npm_execpath ? [process.execPath, process.env.npm_execpath] : ['npm'];
  // onnxruntime-node (the ONNX tests' runtime) carries its CPU library; its install step would fetch CUDA ones
  const env = { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip' };
  if (!run(npm[0], [...npm.slice(1), 'ci', '--no-audit', '--no-fund'], { env })) fail('npm ci failed (see above)');
}

// ---------------------------------------------------------------- 3. native addon
function nodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    process.env.npm_execpath && join(dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    join(root, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ].filter(Boolean);
  const found = candidates.find((c) => existsSync(c));
  if (!found) fail('node-gyp not found (it comes with npm). Install npm, or `npm install -g node-gyp`.');
  return found;
}

function addon() {
  const out = 'build/Release/swav_native.node';
  if (mtime(out) > newest(['native', 'binding.gyp', 'scripts/find-libtorch.mjs', 'scripts/find-libjpeg.mjs', 'scripts/find-c10d.mjs']))
    return;
  for (const [cmd, pkg] of [
    ['g++', 'g++'],
    ['make', 'make'],
    ['python3', 'python3'],
  ]) {
    if (!hasCommand(cmd))
      fail(`the native addon needs ${cmd} to build: install it (Debian/Ubuntu: sudo apt-get install ${pkg}), then run the install again`);
  }
  const r = spawnSync(process.execPath, [join(root, 'scripts', 'find-libtorch.mjs'), '--json'], { encoding: 'utf8', cwd: root });
  if (r.status !== 0) fail(r.stderr.trim());
  say(`building the native addon against ${JSON.parse(r.stdout).source} (about a minute)`);
  // Node's own headers, so that node-gyp needs no download (offline machines, GPU boxes).
  const nodedir = process.env.npm_config_nodedir || resolve(dirname(process.execPath), '..');
  const gypArgs = ['rebuild', '-j', 'max'];
  if (existsSync(join(nodedir, 'include', 'node', 'node_api.h'))) gypArgs.push(`--nodedir=${nodedir}`);
  if (!run(process.execPath, [nodeGyp(), ...gypArgs])) {
    fail('the native addon did not build (see the compiler output above). libtorch is found as `node scripts/find-libtorch.mjs` prints.');
  }
}

// ---------------------------------------------------------------- 4. TypeScript
function typescript() {
  const built = mtime('dist/src/index.js');
  if (built && built > newest(['src', 'test', 'bench', 'tsconfig.json'])) return;
  say('compiling TypeScript');
  if (!run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'])) {
    fail('TypeScript did not compile (see above)');
  }
}

if (!buildOnly) {
  systemPackages();
  npmCi();
}
addon();
if (!addonOnly) typescript();
if (!quiet) say('ready');
