#!/usr/bin/env node
// `swav bench data` against ../shared/peer/torch_multicrop_data.py (torchvision + PIL, the reference multi-crop
// pipeline, one core) on the same JPEG files, alternating in one run. Both report images per second per core.
// usage: node bench/data.mjs [--rounds 3] [--images 64] [--passes 3] [--dir /tmp/swav-data-bench]
// (--passes: passes over the files per run, the best one counted, for both: the first includes warming up)
import { mkdirSync, readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { compare, option } from './compare.mjs';

const dir = option('dir', '/tmp/swav-data-bench');
mkdirSync(dir, { recursive: true });
if (!readdirSync(dir).some((f) => f.endsWith('.jpg'))) {
  // the peer writes its ImageNet-like JPEGs (500 x 375, q90)
  spawnSync(
    '/usr/bin/python3',
    ['../shared/peer/torch_multicrop_data.py', '--dir', dir, '--images', option('images', '64'), '--rounds', '1'],
    { stdio: 'inherit' },
  );
}
compare({
  title: 'Multi-crop data pipeline 2x224 + 6x96 from JPEG, per core',
  metric: 'images_per_s',
  ours: (c) => ['node', 'dist/src/cli/main.js', 'bench', 'data', ...c.args, '--json'],
  peer: (c) => ['/usr/bin/python3', '../shared/peer/torch_multicrop_data.py', ...c.args],
  configs: [{ name: '2x224+6x96', args: ['--dir', dir, '--crops', '2x224,6x96', '--rounds', option('passes', '3')] }],
  out: option('out', 'bench/results/data.json'),
});
