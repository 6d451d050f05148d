// Weighted kNN against PyTorch's (solo-learn's WeightedKNNClassifier, VISSL's kNN) on fixed features: every
// prediction and the top-1, for k from 1 to more than the bank holds; and the predictions of one pass of several
// settings equal one setting at a time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { torch } from '../../src/index.js';
import { knnPredictMany, knnTop1, knnTop1Many } from '../../src/eval/knn.js';
import { decode, golden } from '../helpers.js';

const g = golden('knn.json');
const labels = (e: any) => torch.tidy(() => Int32Array.from(decode(e).tolist() as number[]));

test("knnPredictMany and knnTop1 equal PyTorch's weighted kNN, prediction by prediction", () => {
  assert.ok(g.cases.length >= 5, 'the golden holds its cases');
  torch.tidy(() => {
    const [xtr, xte] = [decode(g.train), decode(g.test)];
    const [ytr, yte] = [labels(g.train_labels), labels(g.test_labels)];
    const settings = g.cases.map((c: any) => ({ k: c.k, temperature: c.temperature }));
    const predictions = knnPredictMany(xtr, ytr, xte, settings, 17); // chunks of 17 rows: the last one partial
    g.cases.forEach((c: any, i: number) => {
      assert.deepEqual(Array.from(predictions[i]), Array.from(labels(c.predictions)), `k ${c.k}, T ${c.temperature}`);
      assert.equal(knnTop1(xtr, ytr, xte, yte, { k: c.k, temperature: c.temperature }), c.top1);
    });
    assert.deepEqual(
      knnTop1Many(xtr, ytr, xte, yte, settings),
      g.cases.map((c: any) => c.top1),
    );
  });
});
