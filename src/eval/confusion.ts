// A confusion matrix of class predictions, and the table a terminal shows of it (torchmetrics' and sklearn's
// layout: a row per true class, a column per predicted class).

/** counts[t][p]: test rows of true class t predicted as p. */
export function confusionMatrix(predictions: Int32Array, truth: Int32Array, classes: number): number[][] {
  if (predictions.length !== truth.length) throw new Error(`confusionMatrix: ${predictions.length} predictions for ${truth.length} labels`);
  const m = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  truth.forEach((t, i) => {
    m[t][predictions[i]]++;
  });
  return m;
}

/** The matrix as aligned text: a header of predicted classes, each row its true class, its counts and its recall. */
export function formatConfusion(m: number[][], names: string[] = m.map((_, i) => String(i))): string {
  const label = Math.max(4, ...names.map((n) => n.length));
  const cell = Math.max(5, ...m.flat().map((v) => String(v).length + 1));
  const head = `${'true\\pred'.padEnd(label + 1)}${names.map((n) => n.slice(0, cell - 1).padStart(cell)).join('')}  recall`;
  const rows = m.map((row, t) => {
    const total = row.reduce((a, b) => a + b, 0);
    return `${names[t].padEnd(label + 1)}${row.map((v) => String(v).padStart(cell)).join('')}  ${total ? ((100 * row[t]) / total).toFixed(1) : '-'}%`;
  });
  return [head, ...rows].join('\n');
}
