#!/usr/bin/env node
// Locates libtorch for the addon build. Order: LIBTORCH / TORCH_INSTALL_PREFIX (an unpacked libtorch or a
// pip torch package directory), Debian's libtorch-dev, then a pip PyTorch found through python3.
// Prints, for binding.gyp: `--include` dirs, `--libdir`, `--libs`, `--defines`; `--json` prints everything.
import { existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

function fromPrefix(prefix, source) {
  const inc = join(prefix, 'include');
  const lib = join(prefix, 'lib');
  if (!existsSync(join(inc, 'ATen', 'ATen.h')) || !existsSync(join(lib, 'libtorch_cpu.so'))) return null;
  return { source, prefix, include: [inc, join(inc, 'torch', 'csrc', 'api', 'include')], libdir: lib };
}

function debian() {
  const inc = '/usr/include';
  const arch = process.arch === 'arm64' ? 'aarch64-linux-gnu' : 'x86_64-linux-gnu';
  const lib = `/usr/lib/${arch}`;
  if (!existsSync(join(inc, 'ATen', 'ATen.h')) || !existsSync(join(lib, 'libtorch_cpu.so'))) return null;
  // /usr/include is a system directory already: naming it with -I would break libstdc++'s #include_next.
  return { source: 'debian libtorch-dev', prefix: '/usr', include: [join(inc, 'torch', 'csrc', 'api', 'include')], libdir: lib };
}

function pythonTorch() {
  for (const py of [process.env.PYTHON, 'python3', '/usr/bin/python3'].filter(Boolean)) {
    try {
      const out = execFileSync(
        py,
        ['-c', 'import torch, os; print(os.path.dirname(torch.__file__)); print(int(torch._C._GLIBCXX_USE_CXX11_ABI))'],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 60000 },
      )
        .trim()
        .split('\n');
      const found = fromPrefix(out[0], `pip torch via ${py}`);
      if (found) return { ...found, abi: out[1] };
    } catch {
      /* this python has no torch */
    }
  }
  return null;
}

export function findLibtorch() {
  const explicit = process.env.LIBTORCH || process.env.TORCH_INSTALL_PREFIX;
  let found = null;
  if (explicit) {
    found = fromPrefix(explicit, explicit === process.env.LIBTORCH ? 'LIBTORCH' : 'TORCH_INSTALL_PREFIX');
    if (!found) throw new Error(`libtorch not found under ${explicit}: expected include/ATen/ATen.h and lib/libtorch_cpu.so there`);
  }
  found = found || debian() || pythonTorch();
  if (!found) {
    throw new Error(
      'libtorch not found. Install it with `sudo apt-get install libtorch-dev` (Debian/Ubuntu), ' +
        'or set LIBTORCH=/path/to/libtorch (an unpacked libtorch, or a pip torch package directory).',
    );
  }
  const libs = ['-ltorch', '-ltorch_cpu', '-lc10'];
  // CUDA builds: link the CUDA parts too, so that the CUDA hooks register at load.
  for (const name of ['torch_cuda', 'c10_cuda']) {
    if (existsSync(join(found.libdir, `lib${name}.so`))) libs.push(`-l${name}`);
  }
  const defines = found.abi !== undefined ? [`_GLIBCXX_USE_CXX11_ABI=${found.abi}`] : [];
  return { ...found, libs, defines };
}

const isMain = process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (isMain) {
  try {
    const t = findLibtorch();
    const what = process.argv[2] || '--json';
    const out = { '--include': t.include, '--libdir': [t.libdir], '--libs': t.libs, '--defines': t.defines }[what];
    console.log(out ? out.join(' ') : JSON.stringify(t, null, 2));
  } catch (e) {
    console.error(`swav: ${e.message}`);
    process.exit(1);
  }
}
