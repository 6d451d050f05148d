// nn: BatchNorm statistics, state dicts, to(), initialization, against PyTorch.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { torch, nn, models } from '../../src/index.js';
import { assertClose, decode, golden } from '../helpers.js';

const data = golden('nn.json');

for (const kind of ['1d', '2d'] as const) {
  test(`BatchNorm${kind} running statistics after train steps, and the eval forward, equal PyTorch's`, () => {
    torch.tidy(() => {
      const g = data[`bn${kind}`];
      const bn = kind === '2d' ? new nn.BatchNorm2d(3) : new nn.BatchNorm1d(3);
      for (const x of g.xs) bn.forward(decode(x));
      bn.eval();
      assertClose(bn.forward(decode(g.x_eval)), decode(g.y_eval), 'eval output', 1e-5);
      const sd = bn.stateDict();
      assert.deepEqual(Object.keys(sd).sort(), Object.keys(g.state).sort());
      for (const [k, v] of Object.entries<any>(g.state)) assertClose(sd[k], decode(v), k, 1e-6);
      bn.dispose();
    });
  });
}

test('a freshly built model has the weights PyTorch builds under the same seed', () => {
  const sums = golden('init.json');
  const build = {
    resnet18: () => models.resnet18(),
    resnet50: () => models.resnet50(),
    swav_resnet50_head: () => models.resnet50({ numClasses: 0, normalize: true, hiddenMlp: 64, outputDim: 16, nmbPrototypes: [10, 12] }),
  };
  for (const [name, make] of Object.entries(build)) {
    torch.manualSeed(0);
    const m = make();
    torch.tidy(() => {
      const sd = m.stateDict();
      assert.deepEqual(Object.keys(sd), Object.keys(sums[name]), `${name}: state dict keys and their order`);
      for (const [k, [sum, norm]] of Object.entries<[number, number]>(sums[name])) {
        const t = sd[k].double();
        assert.ok(Math.abs(t.sum().item() - sum) <= 1e-6 * (Math.abs(sum) + 1), `${name} ${k}: sum`);
        assert.ok(Math.abs(t.norm().item() - norm) <= 1e-6 * (norm + 1), `${name} ${k}: norm`);
      }
    });
    m.dispose();
  }
});

test('loadStateDict: strict errors, missing and unexpected keys, size mismatches, loads that match nothing', () => {
  torch.tidy(() => {
    const a = new nn.Sequential(new nn.Linear(3, 4), new nn.ReLU(), new nn.Linear(4, 2));
    const b = new nn.Sequential(new nn.Linear(3, 4), new nn.ReLU(), new nn.Linear(4, 2));
    const sd = a.stateDict();
    b.loadStateDict(new Map(Object.entries(sd)));
    assert.ok(b.stateDict()['2.weight'].equal(sd['2.weight']));
    const partial = { '0.weight': sd['0.weight'], 'extra.weight': sd['0.bias'] };
    assert.throws(() => b.loadStateDict(partial), /missing keys: 0\.bias, 2\.weight, 2\.bias[\s\S]*unexpected keys: extra\.weight/);
    const r = b.loadStateDict(partial, { strict: false });
    assert.deepEqual(r, { missingKeys: ['0.bias', '2.weight', '2.bias'], unexpectedKeys: ['extra.weight'] });
    const prefixed = Object.fromEntries(Object.entries(sd).map(([k, v]) => [`module.${k}`, v]));
    assert.throws(() => b.loadStateDict(prefixed, { strict: false }), /no key of the state dict matches/);
    assert.throws(() => b.loadStateDict({ ...sd, '0.weight': torch.zeros([5, 3]) }), /size mismatch for 0\.weight/);
    a.dispose();
    b.dispose();
  });
});

test('Module.to converts dtype, memory format, keeps parameter identity and grad', () => {
  torch.tidy(() => {
    const m = models.resnet18({ numClasses: 4 });
    const w = m.conv1.weight;
    m.to('channelsLast');
    assert.equal(m.conv1.weight, w);
    assert.ok(w.isContiguous('channelsLast'));
    assert.ok(w.requiresGrad && w.isLeaf);
    m.to('float64');
    assert.equal(w.dtype, 'float64');
    assert.equal(m.bn1.numBatchesTracked!.dtype, 'int64', 'to(dtype) leaves integer buffers alone');
    const y = m.forward(torch.randn([2, 3, 32, 32], { dtype: 'float64' }));
    y.sum().backward();
    assert.equal(w.grad!.dtype, 'float64');
    m.eval();
    assert.ok(m.modules().every((x) => !x.training));
    assert.equal([...m.namedParameters()].length, 62);
    m.dispose();
  });
});
