#!/usr/bin/env node
// `swav bench probe` against bench/torch_linear_probe.py: eval_linear.py's head trained on cached features
// (60,000 x 512, 10,000 for validation, 100 epochs, batch 256), alternating in one run.
// usage: node bench/probe.mjs [--rounds 3] [--epochs 100]
import { compare, option } from './compare.mjs';

const args = ['--n', '60000', '--val', '10000', '--dim', '512', '--epochs', option('epochs', '100'), '--batch', '256', '--threads', '2'];
compare({
  title: `Linear probe on cached features, 60000 x 512, ${option('epochs', '100')} epochs, batch 256`,
  metric: 'seconds',
  lowerIsBetter: true,
  ours: (c) => ['node', 'dist/src/cli/main.js', 'bench', 'probe', ...c.args, '--json'],
  peer: (c) => ['/usr/bin/python3', 'bench/torch_linear_probe.py', ...c.args, '--json'],
  configs: [{ name: 'fp32, 2 threads', args }],
  out: option('out', 'bench/results/probe.json'),
});
