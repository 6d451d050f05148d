#!/usr/bin/env node
// Loading a ~380 MB checkpoint (SwAV RN50-w2 state dict, legacy and zip formats): `swav bench load` against
// torch.load, alternating in one run. usage: node bench/load.mjs [--rounds 5] [--dir /tmp/swav-load-bench]
import { existsSync, mkdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { compare, option } from './compare.mjs';

const dir = option('dir', '/tmp/swav-load-bench');
mkdirSync(dir, { recursive: true });
const configs = ['legacy', 'zip'].map((format) => {
  const file = join(dir, `rn50w2_${format}.pth${format === 'legacy' ? '.tar' : ''}`);
  if (!existsSync(file)) spawnSync('/usr/bin/python3', ['bench/torch_load.py', '--make', file, '--format', format], { stdio: 'inherit' });
  return { name: `${format} format`, args: ['--file', file] };
});
compare({
  title: 'Loading a SwAV RN50-w2 checkpoint (~380 MB)',
  metric: 'load_s',
  lowerIsBetter: true,
  ours: (c) => ['node', 'dist/src/cli/main.js', 'bench', 'load', ...c.args, '--json'],
  peer: (c) => ['/usr/bin/python3', 'bench/torch_load.py', ...c.args],
  configs,
  out: option('out', 'bench/results/load.json'),
});
