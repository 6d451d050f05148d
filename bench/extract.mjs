#!/usr/bin/env node
// `swav bench extract` against ../shared/peer/torch_infer.py (ResNet-50 trunk, 224, eval), alternating in one run.
// usage: node bench/extract.mjs [--rounds 3] [--batch 16] [--steps 5] [--arch resnet50]
import { compare, option } from './compare.mjs';

const common = ['--arch', option('arch', 'resnet50'), '--batch', option('batch', '16'), '--steps', option('steps', '5')];
compare({
  title: `Feature extraction, ${option('arch', 'resnet50')}, 224 px, batch ${option('batch', '16')} (peer: channels_last)`,
  metric: 'images_per_s',
  ours: (c) => ['node', 'dist/src/cli/main.js', 'bench', 'extract', ...c.args, '--json'],
  peer: (c) => ['/usr/bin/python3', '../shared/peer/torch_infer.py', ...c.args],
  configs: ['fp32', 'bf16'].map((amp) => ({ name: amp, args: [...common, '--amp', amp] })),
  out: option('out', 'bench/results/extract.json'),
});
