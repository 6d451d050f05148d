// SyncBatchNorm on 2 processes with unequal parts of a batch, against plain BatchNorm on the whole batch.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { outcomes, runRanks } from './ranks.js';

test('SyncBatchNorm (2-d and 4-d, momentum 0.1 and cumulative): outputs, gradients, running statistics equal BatchNorm on the whole batch', {
  timeout: 120_000,
}, async () => {
  for (const r of outcomes(await runRanks('syncbn', 2, { timeoutMs: 110_000 }))) {
    for (const [k, e] of Object.entries(r.errors as Record<string, number>)) {
      assert.ok(e <= 1e-5, `rank ${r.rank}: ${k} relative error ${e}`);
    }
    assert.equal(Object.keys(r.errors).length, 7);
  }
});
