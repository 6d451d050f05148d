// The evaluation of a run's trunk during and after training: weighted kNN of the eval split against the train
// split (VISSL's and solo-learn's monitor), and after the last epoch the kNN confusion matrix and, when asked, a
// linear probe on the same features. Several processes share the extraction (each its shard); every one holds the
// train features, votes for its test shard, and rank 0 gathers what it reports.
import * as torch from '../torch/index.js';
import type { ResNet } from '../models/resnet.js';
import { singleProcess, type ProcessGroup } from '../dist/group.js';
import { openSplits } from '../data/datasets.js';
import { datasetFeatures, gatherRows, knnPredictMany, shardOf, top1Of } from '../eval/knn.js';
import { confusionMatrix, formatConfusion } from '../eval/confusion.js';
import { linearProbe } from '../eval/linear.js';
import type { Config } from './config.js';

export interface EvaluationReport {
  knnTop1: number;
  linearTop1?: number;
}

type Metric = (m: Record<string, unknown>) => void;

/** kNN top-1 (k = run.knn_k, T = run.knn_temperature); with `final`, the confusion matrix and run.linear_eval's probe too. */
export async function evaluateFeatures(
  model: ResNet,
  c: Config,
  log: (s: string) => void,
  metric: Metric,
  epoch: number,
  o: { group?: ProcessGroup; final?: boolean } = {},
): Promise<EvaluationReport> {
  const group = o.group ?? singleProcess;
  const t0 = performance.now();
  const opts = { device: c.run.device, mean: c.crops.mean, std: c.crops.std };
  const { train: trainDs, val: testDs } = openSplits(c.data.type, c.data.path!, c.data.eval_train_split, c.data.eval_split);
  const tensors: torch.Tensor[] = [];
  try {
    const train = await datasetFeatures(model, trainDs, { ...opts, group: group.worldSize > 1 ? group : undefined });
    const test = await datasetFeatures(model, testDs, { ...opts, range: shardOf(testDs.length, group) });
    tensors.push(train.feats, test.feats);
    const [predicted] = knnPredictMany(train.feats, train.labels, test.feats, [{ k: c.run.knn_k, temperature: c.run.knn_temperature }]);
    const [correct, total] = torch.tidy(
      () =>
        group
          .allReduceSum_(
            torch.tensor([Math.round(top1Of(predicted, test.labels) * test.labels.length), test.labels.length], { dtype: 'float64' }),
          )
          .tolist() as number[],
    );
    const knnTop1 = correct / Math.max(1, total);
    log(
      `kNN (k=${c.run.knn_k}, T=${c.run.knn_temperature}) top-1 on ${testDs.name}: ${(100 * knnTop1).toFixed(2)}% ` +
        `(${train.labels.length} train / ${total} test images, ${((performance.now() - t0) / 1000).toFixed(0)} s)`,
    );
    metric({ type: 'eval', metric: 'knn_top1', value: knnTop1, epoch, k: c.run.knn_k, temperature: c.run.knn_temperature });
    const report: EvaluationReport = { knnTop1 };
    if (!o.final) return report;
    // rank 0 reports the rest: every test row's prediction and label (and features, for the probe) gathered there
    const per = Math.ceil(testDs.length / group.worldSize);
    const all = (rows: Int32Array) =>
      group.worldSize === 1
        ? rows
        : Int32Array.from(
            torch.tidy(
              () =>
                gatherRows(group, torch.tensor(Array.from(rows), { dtype: 'int64' }).view(-1, 1), per, 'int64')
                  .view(-1)
                  .tolist() as number[],
            ),
          );
    const [predictions, truth] = [all(predicted), all(test.labels)];
    const testFeats = group.worldSize === 1 || !c.run.linear_eval ? test.feats : gatherRows(group, test.feats, per);
    if (testFeats !== test.feats) tensors.push(testFeats);
    if (group.rank > 0) return report;
    const classes =
      Math.max(
        train.labels.reduce((a, b) => Math.max(a, b), -1),
        truth.reduce((a, b) => Math.max(a, b), -1),
      ) + 1;
    const matrix = confusionMatrix(predictions, truth, classes);
    log(
      `kNN confusion matrix on ${testDs.name} (rows: true class, columns: predicted):\n${formatConfusion(matrix, testDs.classes ?? trainDs.classes)}`,
    );
    metric({ type: 'eval', metric: 'knn_confusion', epoch, matrix, classes: testDs.classes ?? trainDs.classes ?? null });
    if (c.run.linear_eval) report.linearTop1 = await probe(c, train, { feats: testFeats, labels: truth }, log, metric, epoch);
    return report;
  } finally {
    tensors.forEach((t) => t.dispose());
    for (const ds of [trainDs, testDs]) if (ds.kind === 'tensor') ds.images.dispose();
  }
}

/** A linear head on the cached features (`swav eval linear --cached-features`'s settings), its best epoch reported. */
async function probe(
  c: Config,
  train: { feats: torch.Tensor; labels: Int32Array },
  test: { feats: torch.Tensor; labels: Int32Array },
  log: (s: string) => void,
  metric: Metric,
  epoch: number,
): Promise<number> {
  const t0 = performance.now();
  const [ty, vy] = [train.labels, test.labels].map((l) => torch.tensor(Array.from(l), { dtype: 'int64' }));
  try {
    const r = await linearProbe(train.feats, ty, test.feats, vy, {
      epochs: c.run.linear_epochs,
      lr: 0.3,
      batchSize: 256,
      weightDecay: 1e-6,
      momentum: 0.9,
    });
    r.head.dispose();
    log(
      `linear probe on the cached features (${c.run.linear_epochs} epochs, ${((performance.now() - t0) / 1000).toFixed(0)} s): ` +
        `top-1 ${(100 * r.bestTop1).toFixed(2)}%, top-5 ${(100 * r.bestTop5).toFixed(2)}% (epoch ${r.bestEpoch})`,
    );
    metric({
      type: 'eval',
      metric: 'linear_top1',
      value: r.bestTop1,
      top5: r.bestTop5,
      best_epoch: r.bestEpoch,
      epochs: c.run.linear_epochs,
      epoch,
    });
    return r.bestTop1;
  } finally {
    ty.dispose();
    vy.dispose();
  }
}
