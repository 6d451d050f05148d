#!/usr/bin/env node
// `swav bench cluster` against bench/torch_cluster.py (main_deepclusterv2.py's cluster_memory on the CPU), alternating
// in one run: one epoch's clustering of a 60,000 x 128 bank, 3 heads of 3,000. The peer runs twice: as the reference
// is written, and with glibc tuned to keep its heap (no fresh mapping and page faults for every 720 MB score matrix:
// the advantage our caching allocator gives us).
// usage: node bench/cluster.mjs [--rounds 3] [--n 60000] [--k 3000]
import { compare, option } from './compare.mjs';

const args = ['--n', option('n', '60000'), '--k', option('k', '3000'), '--dim', '128', '--heads', '3', '--banks', '2', '--iters', '10'];
const TUNED = 'glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=17179869184:glibc.malloc.top_pad=268435456';
compare({
  title: `DeepCluster-v2 clustering, bank ${option('n', '60000')} x 128, 3 heads of ${option('k', '3000')}, 10 k-means iterations`,
  metric: 'seconds',
  lowerIsBetter: true,
  ours: (c) => ['node', 'dist/src/cli/main.js', 'bench', 'cluster', ...c.args, '--json'],
  peer: (c) =>
    (c.name === 'peer glibc tuned' ? ['env', `GLIBC_TUNABLES=${TUNED}`] : []).concat([
      '/usr/bin/python3',
      'bench/torch_cluster.py',
      ...c.args,
      '--json',
    ]),
  configs: [
    { name: 'peer as written', args },
    { name: 'peer glibc tuned', args },
  ],
  out: option('out', 'bench/results/cluster.json'),
});
