// optim.epochs: auto: as many epochs as fit in run.budget_minutes on this machine. The first iterations are timed
// (a few skipped: the first steps allocate and build kernels), then the number of epochs is fixed so that the whole
// schedule, warmup and cosine, ends inside the budget. The decision goes into the checkpoint, so that a resume on
// any machine keeps the schedule and stays exact. Until it is made, the learning rate is the schedule's at an
// unbounded horizon: the warmup's, then base_lr (what any cosine starts at).

/** Iterations not timed at the start of an invocation, then iterations timed. */
export const CALIBRATION = { skip: 3, measure: 20 } as const;

/** The iteration after which the number of epochs is decided: the calibration's end, at latest the first epoch's. */
export function decisionIteration(itersPerEpoch: number): number {
  return Math.min(CALIBRATION.skip + CALIBRATION.measure, itersPerEpoch);
}

export interface FitOptions {
  budgetSeconds: number;
  /** Since training was started (setup and the method's preparation included). */
  elapsedSeconds: number;
  secondsPerIteration: number;
  /** Per-epoch costs besides iterations (a clustering method's k-means at each epoch's start). */
  epochOverheadSeconds: number;
  itersPerEpoch: number;
  /** Iterations already done (all within the first epoch). */
  iterationsDone: number;
}

/** Share of the budget planned: timing noise and checkpoints take the rest. */
const MARGIN = 0.97;

/** Whole epochs whose iterations fit in what is left of the budget (at least 1). */
export function fitEpochs(o: FitOptions): number {
  const left = o.budgetSeconds * MARGIN - o.elapsedSeconds - (o.itersPerEpoch - o.iterationsDone) * o.secondsPerIteration;
  const perEpoch = o.itersPerEpoch * o.secondsPerIteration + o.epochOverheadSeconds;
  return 1 + Math.max(0, Math.floor(left / perEpoch));
}

/** The durations of one invocation's iterations until the decision. */
export class IterationClock {
  readonly #seconds: number[] = [];
  #last = performance.now();

  /** Called after each iteration. */
  tick(): void {
    const now = performance.now();
    this.#seconds.push((now - this.#last) / 1000);
    this.#last = now;
  }

  /** The mean past the skipped ones (of all, when a resume just before the decision left no more). */
  get secondsPerIteration(): number {
    const timed = this.#seconds.length > CALIBRATION.skip ? this.#seconds.slice(CALIBRATION.skip) : this.#seconds;
    return timed.reduce((a, b) => a + b, 0) / Math.max(1, timed.length);
  }
}
