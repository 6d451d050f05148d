#!/usr/bin/env node
// `swav bench step` against ../shared/peer/torch_swav_step.py, alternating in one run on this machine.
// usage: node bench/step.mjs [--rounds 3] [--configs fp32:0,fp32:1,bf16:0,bf16:1] [--arch resnet50] [--batch 8]
//        [--crops 2x224,6x96] [--steps 5] [--warmup 2] [--out bench/results/step.json]
import { compare, option } from './compare.mjs';

const arch = option('arch', 'resnet50');
const batch = option('batch', '8');
const crops = option('crops', '2x224,6x96');
const steps = option('steps', '5');
const warmup = option('warmup', '2');
const common = ['--arch', arch, '--batch', batch, '--crops', crops, '--steps', steps, '--warmup', warmup];
const configs = option('configs', 'fp32:0,fp32:1').split(',').map((c) => {
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
