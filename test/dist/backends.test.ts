// Which c10d backends the addon is built with: Gloo here (libgloo-dev), NCCL where find-c10d.mjs finds a CUDA
// libtorch with NCCL's and CUDA's headers (checked on a pip-like layout made here: no GPU machine is needed to
// see the build pick it up), and a backend not built is one clear error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { tmpdir } from 'node:os';
import { dist } from '../../src/index.js';
import { root } from '../helpers.js';
import { freePort } from './ranks.js';

const touch = (p: string) => {
  mkdirSync(dirname(p), { recursive: true });
  writeFileSync(p, '');
};

test('find-c10d: a pip CUDA torch with nvidia-nccl and the CUDA runtime headers beside it builds NCCL; without nccl.h it does not', async () => {
  const { findC10d } = await import(join(root, 'scripts', 'find-c10d.mjs'));
  const site = mkdtempSync(join(tmpdir(), 'swav-site-packages-'));
  try {
    const prefix = join(site, 'torch');
    const libdir = join(prefix, 'lib');
    for (const f of [
      'include/ATen/ATen.h',
      'include/torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp',
      'lib/libtorch_cpu.so',
      'lib/libtorch_cuda.so',
    ])
      touch(join(prefix, f));
    touch(join(site, 'nvidia', 'cuda_runtime', 'include', 'cuda_runtime_api.h'));
    const cuda = findC10d({ prefix, libdir }, {});
    assert.equal(cuda.nccl, false, 'no nccl.h yet');
    assert.ok(!cuda.defines.includes('USE_C10D_NCCL'));
    touch(join(site, 'nvidia', 'nccl', 'include', 'nccl.h'));
    const nccl = findC10d({ prefix, libdir }, {});
    assert.equal(nccl.nccl, true);
    assert.equal(nccl.found, true);
    assert.ok(nccl.defines.includes('USE_C10D_NCCL') && nccl.defines.includes('SWAV_HAS_C10D'), nccl.defines.join(' '));
    // pip's headers beside torch, besides a CUDA toolkit's where the machine has one (/usr/local/cuda)
    for (const part of ['cuda_runtime', 'nccl'])
      assert.ok(nccl.includes.includes(join(site, 'nvidia', part, 'include')), nccl.includes.join(' '));
    rmSync(join(libdir, 'libtorch_cuda.so'));
    assert.equal(findC10d({ prefix, libdir }, {}).nccl, false, 'a CPU-only torch');
  } finally {
    rmSync(site, { recursive: true, force: true });
  }
});

test("this build has Gloo and not NCCL (Debian's CPU libtorch); asking for NCCL is one clear error", async () => {
  assert.deepEqual(dist.availableBackends(), ['gloo']);
  await assert.rejects(
    dist.initProcessGroup({ backend: 'nccl', rank: 0, worldSize: 1, masterPort: await freePort(), timeoutSeconds: 5 }),
    /backend 'nccl' is not in this build \(it has: gloo; NCCL needs the addon built against a CUDA libtorch/,
  );
});
