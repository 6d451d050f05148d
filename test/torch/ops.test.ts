// Every wrapped op's forward and gradient against PyTorch (test/golden/data/ops.json).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { torch } from '../../src/index.js';
import type { Tensor } from '../../src/torch/tensor.js';
import { assertClose, decode, golden } from '../helpers.js';

type Out = Tensor | Tensor[] | { values: Tensor; indices: Tensor };
const T = torch;
const F = torch;
// The same cases as make_golden.py's op_cases, through the public TS API.
const cases: Record<string, (i: Record<string, Tensor>) => Out> = {
  add: ({ a, b }) => a.add(b, 2),
  add_scalar: ({ a }) => a.add(1.5),
  sub: ({ a, b }) => a.sub(b),
  mul: ({ a, b }) => a.mul(b),
  mul_scalar: ({ a }) => a.mul(0.5),
  div: ({ a, b }) => a.div(b),
  div_scalar: ({ a }) => a.div(3),
  pow: ({ a }) => a.pow(2.5),
  pow_tensor: ({ a, b }) => a.pow(b),
  maximum: ({ a, b }) => T.maximum(a, b),
  minimum: ({ a, b }) => T.minimum(a, b),
  neg: ({ a }) => a.neg(),
  abs: ({ a }) => a.abs(),
  exp: ({ a }) => a.exp(),
  sin: ({ a }) => a.sin(),
  cos: ({ a }) => a.cos(),
  tanh: ({ a }) => a.tanh(),
  sigmoid: ({ a }) => a.sigmoid(),
  relu: ({ a }) => a.relu(),
  square: ({ a }) => a.square(),
  log: ({ a }) => a.log(),
  log1p: ({ a }) => a.log1p(),
  sqrt: ({ a }) => a.sqrt(),
  rsqrt: ({ a }) => a.rsqrt(),
  reciprocal: ({ a }) => a.reciprocal(),
  clamp: ({ a }) => a.clamp(-0.5, 0.7),
  clamp_min: ({ a }) => a.clampMin(0.1),
  matmul: ({ a, b }) => a.matmul(b),
  mm: ({ a, b }) => a.mm(b),
  bmm: ({ a, b }) => a.bmm(b),
  softmax: ({ a }) => a.softmax(1),
  log_softmax: ({ a }) => a.logSoftmax(-1),
  sum: ({ a }) => a.sum(),
  sum_dim: ({ a }) => a.sum([0, 2], true),
  mean: ({ a }) => a.mean(),
  mean_dim: ({ a }) => a.mean(1),
  std: ({ a }) => a.std(1),
  var: ({ a }) => a.var(),
  norm: ({ a }) => a.norm(),
  norm_dim: ({ a }) => a.norm(2, 1, true),
  logsumexp: ({ a }) => a.logsumexp(1),
  cumsum: ({ a }) => a.cumsum(1),
  prod: ({ a }) => a.prod(1),
  max: ({ a }) => a.max(),
  max_dim: ({ a }) => a.max(1),
  min_dim: ({ a }) => a.min(0, true),
  amax: ({ a }) => a.amax(1),
  argmax: ({ a }) => a.argmax(1),
  argmin: ({ a }) => a.argmin(),
  topk: ({ a }) => a.topk(3, 1),
  sort: ({ a }) => a.sort(1, true),
  reshape: ({ a }) => a.reshape(2, 6),
  view: ({ a }) => a.view(-1),
  flatten: ({ a }) => a.flatten(1),
  squeeze: ({ a }) => a.squeeze(1),
  unsqueeze: ({ a }) => a.unsqueeze(0),
  permute: ({ a }) => a.permute(2, 0, 1),
  transpose: ({ a }) => a.transpose(0, 2),
  t: ({ a }) => a.t(),
  expand: ({ a }) => a.expand(3, 4),
  repeat: ({ a }) => a.repeat(2, 2),
  flip: ({ a }) => a.flip(1),
  narrow: ({ a }) => a.narrow(0, 1, 3),
  select: ({ a }) => a.select(1, 2),
  slice: ({ a }) => a.index('1:6:2'),
  index_basic: ({ a }) => a.index(1, ':', null, '2:5'),
  index_ellipsis: ({ a }) => a.index('...', 0),
  index_tensor: ({ a, i }) => a.index(i, '1:3'),
  chunk: ({ a }) => a.chunk(3, 0),
  split: ({ a }) => a.split([1, 3], 1),
  unbind: ({ a }) => a.unbind(0),
  index_select: ({ a, i }) => a.indexSelect(0, i),
  gather: ({ a, i }) => a.gather(1, i),
  scatter_add: ({ a, i, s }) => a.scatterAdd(1, i, s),
  where: ({ c, a, b }) => T.where(c, a, b),
  masked_fill: ({ a, m }) => a.maskedFill(m, -2),
  eq: ({ a, b }) => a.eq(b),
  gt_scalar: ({ a }) => a.gt(0.2),
  cat: ({ a, b }) => T.cat([a, b], 0),
  stack: ({ a, b }) => T.stack([a, b], 1),
  einsum: ({ a, b }) => T.einsum('ij,jk->ik', a, b),
  conv2d: ({ x, w, b }) => F.conv2d(x, w, b, { stride: 2, padding: 1 }),
  conv2d_groups: ({ x, w }) => F.conv2d(x, w, null, { padding: [1, 2], dilation: 2, groups: 2 }),
  linear: ({ x, w, b }) => F.linear(x, w, b),
  batch_norm_train: ({ x, rm, rv, w, b }) => F.batchNorm(x, rm.clone(), rv.clone(), w, b, { training: true, momentum: 0.1, eps: 1e-5 }),
  batch_norm_eval: ({ x, rm, rv, w, b }) => F.batchNorm(x, rm, rv, w, b, { training: false }),
  batch_norm_1d: ({ x, rm, rv, w, b }) => F.batchNorm(x, rm.clone(), rv.clone(), w, b, { training: true }),
  max_pool2d: ({ x }) => F.maxPool2d(x, 3, { stride: 2, padding: 1 }),
  avg_pool2d: ({ x }) => F.avgPool2d(x, 2),
  adaptive_avg_pool2d: ({ x }) => F.adaptiveAvgPool2d(x, [1, 1]),
  normalize: ({ x }) => F.normalize(x, 2, 1),
  cross_entropy: ({ x, y }) => F.crossEntropy(x, y),
  nll_loss: ({ x, y }) => F.nllLoss(F.logSoftmax(x, 1), y),
  mse_loss: ({ x, y }) => F.mseLoss(x, y),
  pad: ({ x }) => F.pad(x, [1, 2, 0, 1], 0.5),
  interpolate: ({ x }) => F.interpolate(x, [8, 7], 'bilinear', false),
  grid_sample: ({ x, g }) => F.gridSample(x, g, 'bilinear', 'zeros', false),
  affine_grid: ({ th }) => F.affineGrid(th, [2, 1, 4, 5], false),
  to_float64: ({ a }) => a.double(),
  to_bfloat16: ({ a }) => a.bfloat16().float(),
  contiguous_channels_last: ({ a }) => a.contiguous('channelsLast').mul(2),
};

const outputsOf = (o: Out): Tensor[] =>
  Array.isArray(o) ? o : 'values' in o && !(o instanceof torch.Tensor) ? [o.values, o.indices] : [o as Tensor];

const data = golden('ops.json');

test('every golden op case has a TS counterpart and vice versa', () => {
  assert.deepEqual(Object.keys(cases).sort(), Object.keys(data).sort());
});

for (const [name, entry] of Object.entries<any>(data)) {
  test(`op ${name}: forward and gradient equal PyTorch's`, () => {
    torch.tidy(() => {
      const inputs: Record<string, Tensor> = {};
      for (const [k, e] of Object.entries<any>(entry.inputs)) {
        inputs[k] = decode(e);
        if (entry.grad.includes(k)) inputs[k].requiresGrad_(true);
      }
      const outs = outputsOf(cases[name](inputs));
      assert.equal(outs.length, entry.outputs.length, 'number of outputs');
      outs.forEach((o, i) => assertClose(o, decode(entry.outputs[i]), `${name} output ${i}`, 1e-5));
      if (entry.out_weights) {
        const diff = outs.filter((o) => o.requiresGrad);
        const loss = diff.map((o, i) => o.mul(decode(entry.out_weights[i])).sum()).reduce((a, b) => a.add(b));
        loss.backward();
        for (const [k, g] of Object.entries<any>(entry.grads)) {
          assertClose(inputs[k].grad!, decode(g), `${name} grad of ${k}`, 1e-5);
        }
      }
    });
  });
}
