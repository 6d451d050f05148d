// SwAV's learning-rate schedule, one value per iteration: linear warmup (numpy.linspace from startWarmup to
// baseLr over warmupEpochs), then a cosine from baseLr to finalLr over the remaining iterations.
export interface CosineScheduleOptions {
  baseLr: number;
  finalLr: number;
  epochs: number;
  itersPerEpoch: number;
  warmupEpochs?: number;
  startWarmup?: number;
}

export function cosineSchedule(o: CosineScheduleOptions): Float64Array {
  const warmupEpochs = o.warmupEpochs ?? 0;
  const nWarm = o.itersPerEpoch * warmupEpochs;
  const nCos = o.itersPerEpoch * (o.epochs - warmupEpochs);
  if (nCos < 0 || nWarm < 0) throw new Error('cosineSchedule: warmupEpochs exceeds epochs');
  const out = new Float64Array(nWarm + nCos);
  const start = o.startWarmup ?? 0;
  // numpy.linspace(start, base, n): start + i * step, the last value exactly base.
  const step = nWarm > 1 ? (o.baseLr - start) / (nWarm - 1) : 0;
  for (let i = 0; i < nWarm; i++) out[i] = i * step + start;
  if (nWarm > 0) out[nWarm - 1] = nWarm > 1 ? o.baseLr : start;
  for (let t = 0; t < nCos; t++) {
    out[nWarm + t] = o.finalLr + 0.5 * (o.baseLr - o.finalLr) * (1 + Math.cos((Math.PI * t) / nCos));
  }
  return out;
}
