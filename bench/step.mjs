#!/usr/bin/env node
// `swav bench step` against ../shared/peer/torch_swav_step.py, alternating in one run on this machine.
// usage: node bench/step.mjs [--rounds 3] [--configs fp32:0,fp32:1,bf16:0,bf16:1] [--arch resnet50] [--batch 8]
//        [--crops 2x224,6x96] [--steps 5] [--warmup 2] [--out bench/results/step.json]
//        [--peer-glibc-tuned] [--peer-env NAME=VALUE ...] [--ours-env NAME=VALUE ...] [--base-env NAME=VALUE ...]
// --peer-glibc-tuned gives the peer glibc's heap kept (GLIBC_TUNABLES as in bench/README), the advantage our caching
// allocator gives us; --peer-env (e.g. LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2) and --ours-env add
// any variable to one side; --base-env runs ours a third time per round with those variables (an optimization
// turned off, e.g. SWAV_FUSED_SGD=0): before and after against the peer in one alternation. All are recorded in the
// results file.
import { compare, option } from './compare.mjs';

const arch = option('arch', 'resnet50');
const batch = option('batch', '8');
const crops = option('crops', '2x224,6x96');
const steps = option('steps', '5');
const warmup = option('warmup', '2');
const common = ['--arch', arch, '--batch', batch, '--crops', crops, '--steps', steps, '--warmup', warmup];
const configs = option('configs', 'fp32:0,fp32:1')
  .split(',')
  .map((c) => {
    const [amp, cl] = c.split(':');
    return { name: `${amp} ${cl === '1' ? 'channels_last' : 'NCHW'}`, args: [...common, '--amp', amp, '--channels-last', cl] };
  });

compare({
  title: `SwAV training step, ${arch}, batch ${batch}, crops ${crops}`,
  metric: 'samples_per_s',
  ours: (c) => ['node', 'dist/src/cli/main.js', 'bench', 'step', ...c.args, '--json'],
  peer: (c) => ['/usr/bin/python3', '../shared/peer/torch_swav_step.py', ...c.args],
  configs,
  out: option('out', 'bench/results/step.json'),
});
