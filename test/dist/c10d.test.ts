// c10d process groups over loopback: every collective on 2 and 4 processes (sync and async), a peer killed
// mid-collective, a peer that never comes (the timeout), a port already in use.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { torch, dist } from '../../src/index.js';
import { freePort, outcomes, runRanks } from './ranks.js';

test('one process: every collective is the identity (TCPStore and FileStore), and a port in use is a clear error', {
  timeout: 60_000,
}, async () => {
  const port = await freePort();
  const g = await dist.initProcessGroup({ rank: 0, worldSize: 1, masterPort: port, timeoutSeconds: 10 });
  torch.tidy(() => {
    assert.deepEqual(g.allReduce_(torch.ones([2]), 'avg').tolist(), [1, 1]);
    assert.deepEqual(g.allGather(torch.full([2], 3)).tolist(), [3, 3]);
    assert.deepEqual(g.reduceScatter(torch.full([2], 3)).tolist(), [3, 3]);
  });
  await assert.rejects(
    dist.initProcessGroup({ rank: 0, worldSize: 1, masterPort: port, timeoutSeconds: 5 }),
    /rank 0 cannot serve the TCPStore on 127\.0\.0\.1:\d+: the port is already in use/,
  );
  g.destroy();
  assert.throws(() => g.barrier(), /barrier: the process group was destroyed/);

  const busy = createServer();
  await new Promise<void>((resolve) => busy.listen(0, resolve));
  const taken = (busy.address() as { port: number }).port;
  try {
    await assert.rejects(dist.initProcessGroup({ rank: 0, worldSize: 2, masterPort: taken, timeoutSeconds: 5 }), /already in use/);
  } finally {
    busy.close();
  }
  await assert.rejects(dist.initProcessGroup({ rank: 2, worldSize: 2, masterPort: port }), /rank 2 is not in \[0, 2\)/);

  const dir = mkdtempSync(join(tmpdir(), 'swav-filestore-'));
  try {
    const f = await dist.initProcessGroup({ rank: 0, worldSize: 1, storePath: join(dir, 'store'), timeoutSeconds: 10 });
    torch.tidy(() => assert.deepEqual(f.allReduce_(torch.full([1], 5), 'max').tolist(), [5]));
    f.destroy();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

for (const world of [2, 4]) {
  test(`${world} processes: allReduce (sum, avg, max, min, int64, non-contiguous), broadcast, allGather, reduceScatter, barrier, async handles${world === 4 ? ', subgroups' : ''}`, {
    timeout: 120_000,
  }, async () => {
    const results = outcomes(await runRanks('collectives', world, { timeoutMs: 110_000 }));
    if (world === 4)
      assert.deepEqual(
        results.map((r) => r.sub),
        [[2], null, [2], null],
      );
  });
}

// The survivor's error must come soon after the kill (the connection drops), not at the 20 s timeout.
for (const [victim, mode] of [
  [1, 'async'],
  [0, 'sync'],
] as const) {
  test(`a peer (rank ${victim}) SIGKILLed mid-allReduce: the ${mode} survivor gets an error naming the op and its rank`, {
    timeout: 60_000,
  }, async () => {
    const ready = new Set<number>();
    const results = await runRanks('peer-killed', 2, {
      timeoutMs: 50_000,
      args: [String(victim), mode, '20'],
      onLine: (rank, line, children) => {
        if (line.phase) ready.add(rank);
        if (ready.size === 2 && line.phase) setTimeout(() => children[victim].kill('SIGKILL'), 300);
      },
    });
    assert.equal(results[victim].signal, 'SIGKILL');
    const survivor = 1 - victim;
    const out = results[survivor].lines.at(-1);
    assert.equal(results[survivor].code, 0, results[survivor].stderr);
    assert.match(out.error, new RegExp(`^allReduce on rank ${survivor} of 2 failed: `));
    assert.match(out.error, /closed|reset|peer|EOF|Broken pipe/i);
    assert.ok(out.ms < 15_000, `the error came after ${out.ms} ms`);
  });
}

test("a peer that never joins the allReduce: the survivor fails at the group's timeout", { timeout: 60_000 }, async () => {
  const results = await runRanks('peer-killed', 2, {
    timeoutMs: 50_000,
    args: ['1', 'sync', '3'],
    onLine: (rank, line, children) => {
      if (rank === 0 && line.ok !== undefined) children[1].kill('SIGKILL');
    },
  });
  const out = results[0].lines.at(-1);
  assert.equal(results[0].code, 0, results[0].stderr);
  assert.match(out.error, /^allReduce on rank 0 of 2 failed: .*(Timed out|timed out|no result within)/);
  assert.ok(out.ms >= 2500 && out.ms < 10_000, `the error came after ${out.ms} ms (timeout 3 s)`);
});
