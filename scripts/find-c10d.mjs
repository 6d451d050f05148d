#!/usr/bin/env node
// Whether the libtorch found can do c10d over Gloo (ProcessGroupGloo.hpp needs gloo's headers: Debian's
// libgloo-dev), for binding.gyp: `--found` prints 1 or 0, `--defines` the macros that make ProcessGroupGloo.hpp
// declare anything, `--libs` -lgloo where libgloo.so is a library of its own (Debian's libtorch_cpu links it).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { findLibtorch } from './find-libtorch.mjs';

const t = findLibtorch();
const includes = [join(t.prefix, 'include'), '/usr/include', '/usr/local/include'];
const arch = process.arch === 'arm64' ? 'aarch64-linux-gnu' : 'x86_64-linux-gnu';
const libdirs = [t.libdir, '/usr/lib', `/usr/lib/${arch}`, '/lib'];
const has = (dirs, file) => dirs.some((d) => existsSync(join(d, file)));
const found = has(includes, 'torch/csrc/distributed/c10d/ProcessGroupGloo.hpp') && has(includes, 'gloo/config.h');
const out = {
  '--found': [found ? 1 : 0],
  '--defines': found ? ['SWAV_HAS_C10D', 'USE_C10D_GLOO', 'USE_DISTRIBUTED'] : [],
  '--libs': found && has(libdirs, 'libgloo.so') ? ['-lgloo'] : [],
}[process.argv[2]];
console.log(out ? out.join(' ') : JSON.stringify({ found }));
