#!/usr/bin/env node
// Which c10d backends the addon can be built with, for binding.gyp. Gloo: ProcessGroupGloo.hpp needs gloo's own
// headers (Debian's libgloo-dev). NCCL: a CUDA libtorch (libtorch_cuda, as a pip PyTorch has) with
// ProcessGroupNCCL.hpp, plus nccl.h and CUDA's runtime headers (a CUDA toolkit, or pip's nvidia-* packages beside
// torch). `--found` prints 1 or 0 (either backend), `--defines` the macros that make the headers declare
// anything, `--includes` NCCL's and CUDA's include folders, `--libs` -lgloo where libgloo.so is a library of its
// own (Debian's libtorch_cpu links it); `--json` all of it.
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { findLibtorch } from './find-libtorch.mjs';

const has = (dirs, file) => dirs.some((d) => existsSync(join(d, file)));
const subdirs = (d) => (existsSync(d) ? readdirSync(d).map((e) => join(d, e)) : []);

export function findC10d(t = findLibtorch(), env = process.env) {
  const includes = [join(t.prefix, 'include'), '/usr/include', '/usr/local/include'];
  const arch = process.arch === 'arm64' ? 'aarch64-linux-gnu' : 'x86_64-linux-gnu';
  const libdirs = [t.libdir, '/usr/lib', `/usr/lib/${arch}`, '/lib'];
  const gloo = has(includes, 'torch/csrc/distributed/c10d/ProcessGroupGloo.hpp') && has(includes, 'gloo/config.h');
  // pip's CUDA packages sit beside torch in site-packages: nvidia/<part>/include (nvidia/cu13/include in CUDA 13's)
  const cudaIncludes = [env.CUDA_HOME, env.CUDA_PATH, '/usr/local/cuda']
    .filter(Boolean)
    .map((d) => join(d, 'include'))
    .concat(subdirs(join(dirname(t.prefix), 'nvidia')).map((d) => join(d, 'include')))
    .filter((d) => existsSync(d));
  const nccl =
    has(includes, 'torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp') &&
    existsSync(join(t.libdir, 'libtorch_cuda.so')) &&
    has([...includes, ...cudaIncludes], 'nccl.h') &&
    has([...includes, ...cudaIncludes], 'cuda_runtime_api.h');
  const found = gloo || nccl;
  return {
    found,
    gloo,
    nccl,
    defines: [
      ...(found ? ['SWAV_HAS_C10D', 'USE_DISTRIBUTED'] : []),
      ...(gloo ? ['USE_C10D_GLOO'] : []),
      ...(nccl ? ['USE_C10D_NCCL', 'USE_CUDA'] : []),
    ],
    includes: nccl ? cudaIncludes : [],
    libs: gloo && has(libdirs, 'libgloo.so') ? ['-lgloo'] : [],
  };
}

const isMain = process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (isMain) {
  const c = findC10d();
  const out = { '--found': [c.found ? 1 : 0], '--defines': c.defines, '--includes': c.includes, '--libs': c.libs }[process.argv[2]];
  console.log(out ? out.join(' ') : JSON.stringify(c, null, 2));
}
