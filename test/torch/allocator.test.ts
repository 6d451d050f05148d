// The caching CPU allocator (native/allocator.cc): a block of 256 KiB or more, once freed, is handed out again for a
// request of nearly its size, with the new tensor's values its own; small blocks bypass it; what it holds stays
// within its peak in use plus a margin; emptyCache gives the idle blocks back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { torch } from '../../src/index.js';

const MiB = 1 << 20;
const served = (s: torch.CpuCacheStats) => s.mapped + s.reused;

test('a freed block is reused for the next request of nearly its size; small ones bypass the cache', () => {
  assert.ok(torch.cpu.cacheStats().enabled, 'installed by default');
  for (const elements of [MiB / 8, 10 * MiB]) {
    // 512 KiB, 40 MiB of float32
    const before = served(torch.cpu.cacheStats());
    const a = torch.full([elements], 3);
    const s1 = torch.cpu.cacheStats();
    assert.equal(served(s1), before + 1);
    assert.ok(s1.liveBytes >= elements * 4);
    a.dispose();
    assert.ok(torch.cpu.cacheStats().idleBytes >= elements * 4, 'kept idle once freed');
    const b = torch.full([elements - 1000], 1);
    const s2 = torch.cpu.cacheStats();
    assert.equal(s2.reused, s1.reused + 1, 'served from the cache');
    assert.equal(s2.mapped, s1.mapped, 'nothing newly mapped');
    assert.equal(b.sum().item(), elements - 1000, 'the reused block holds the new values');
    b.dispose();
  }
  const before = served(torch.cpu.cacheStats());
  torch.tidy(() => {
    torch.ones([1000]).add(1);
    torch.ones([60_000]).mul(2);
  }); // 4 KB, 240 KB
  assert.equal(served(torch.cpu.cacheStats()), before, 'small tensors do not go through the cache');
});

test('a loop of the same work maps nothing after its first pass (what keeps a training step free of page faults)', () => {
  const x = torch.randn([8, 16, 64, 64]).contiguous('channelsLast'); // 2 MiB
  const w = torch.randn([32, 16, 3, 3]).requiresGrad_();
  const pass = () =>
    torch.tidy(() => {
      torch.conv2d(x, w, null, { padding: 1 }).relu().square().sum().backward();
      w.grad = null; // each pass starts as a training step does, without a gradient
    });
  pass();
  const s1 = torch.cpu.cacheStats();
  for (let i = 0; i < 3; i++) pass();
  const s2 = torch.cpu.cacheStats();
  assert.equal(s2.mapped, s1.mapped, 'no new block mapped');
  assert.ok(s2.reused - s1.reused >= 3 * 5, `every pass's blocks (activations, gradients) reused: ${s2.reused - s1.reused}`);
  x.dispose();
  w.dispose();
});

test('the cache holds at most its peak in use plus the margin, and emptyCache gives idle blocks back', () => {
  torch.cpu.emptyCache();
  const s0 = torch.cpu.cacheStats();
  assert.equal(s0.idleBytes, 0);
  assert.equal(s0.peakBytes, s0.liveBytes, 'the peak restarts from what is in use');
  // sizes that never fit each other's blocks: each is newly mapped, and old idle blocks are given back on the way
  for (let i = 0; i < 12; i++)
    torch.tidy(() => {
      torch.empty([((40 + 20 * i) * MiB) / 4]);
    });
  const s1 = torch.cpu.cacheStats();
  assert.ok(s1.peakBytes >= 260 * MiB);
  assert.ok(s1.liveBytes + s1.idleBytes <= s1.peakBytes + 256 * MiB, `holds ${s1.idleBytes / MiB} MiB idle`);
  assert.ok(s1.idleBytes < 12 * 150 * MiB, 'not every block was kept');
  torch.cpu.emptyCache();
  assert.equal(torch.cpu.cacheStats().idleBytes, 0);
});

test('a request the system cannot map is a clear error that names its size; the cache goes on working', () => {
  // 1 PiB: beyond the user address space, so no mapping succeeds whatever the system's overcommit setting
  assert.throws(
    () => torch.zeros([2 ** 48]),
    /not enough memory: tried to allocate 1125899906842624 bytes \(1048576\.0 GiB\).*smaller batch/,
  );
  assert.equal(
    torch.tidy(() =>
      torch
        .ones([1 << 20])
        .sum()
        .item(),
    ),
    1 << 20,
  );
});
