// The caching CPU allocator (native/allocator.cc): a large block freed is handed out again for a request of nearly
// its size, with the new tensor's values its own; small blocks bypass it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { torch } from '../../src/index.js';

const MiB = 1 << 20;

test('a freed 40 MiB block is reused for the next request of nearly its size; small ones bypass the cache', () => {
  const s0 = torch.cpu.cacheStats();
  assert.ok(s0.enabled, 'installed by default');
  const a = torch.full([10 * MiB], 3); // 40 MiB of float32
  const s1 = torch.cpu.cacheStats();
  assert.equal(s1.mapped + s1.reused, s0.mapped + s0.reused + 1);
  a.dispose();
  assert.ok(torch.cpu.cacheStats().idleBytes >= 40 * MiB, 'kept idle once freed');
  const b = torch.full([10 * MiB - 1000], 1);
  const s2 = torch.cpu.cacheStats();
  assert.equal(s2.reused, s1.reused + 1, 'served from the cache');
  assert.equal(s2.mapped, s1.mapped, 'nothing newly mapped');
  assert.equal(b.sum().item(), 10 * MiB - 1000, 'the reused block holds the new values');
  b.dispose();
  torch.tidy(() => { torch.ones([1000]).add(1); });
  const s3 = torch.cpu.cacheStats();
  assert.equal(s3.reused + s3.mapped, s2.reused + s2.mapped, 'small tensors do not go through the cache');
});
