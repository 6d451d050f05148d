// torch.profile with detail: every operator call by its inputs (shapes as torch.profiler's record_shapes writes
// them, dtypes, layouts), what bench/profile.mjs matches with PyTorch's profile.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { torch } from '../../src/index.js';

test('the detailed profile names each call with its input shapes, dtypes and layouts', () => {
  torch.tidy(() => {
    const x = torch.randn([2, 3, 8, 8]).contiguous('channelsLast');
    const w = torch.randn([4, 3, 3, 3]);
    const { ops } = torch.profile(
      () => {
        torch.conv2d(x, w, null, { padding: 1 }).add(1);
      },
      { detail: true },
    );
    const conv = ops.find((o) => o.name === 'aten::conv2d');
    assert.ok(conv, `aten::conv2d among ${ops.map((o) => o.name).join(', ')}`);
    assert.equal(conv.count, 1);
    assert.deepEqual(conv.shapes!.slice(0, 3), [[2, 3, 8, 8], [4, 3, 3, 3], []]);
    assert.deepEqual(conv.dtypes!.slice(0, 2), ['f32', 'f32']);
    assert.deepEqual(conv.layouts!.slice(0, 2), ['cl', 'c']);
    assert.ok(conv.totalUs >= conv.selfUs && conv.selfUs >= 0);
    const add = ops.find((o) => o.name === 'aten::add');
    assert.equal(add?.dtypes?.[0], 'f32');
    assert.deepEqual(add?.shapes?.[0], [2, 4, 8, 8]);
    // without detail: by name only, as before
    const plain = torch.profile(() => {
      x.add(1);
    }).ops;
    assert.ok(plain.some((o) => o.name === 'aten::add') && plain.every((o) => o.shapes === undefined));
  });
});
