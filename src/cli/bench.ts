// `swav bench step`: one full SwAV training step on synthetic data, with the flags of the PyTorch peer
// (../shared/peer/torch_swav_step.py) so that the two run side by side.
import { torch, models, optim } from '../index.js';
import { linearProbe } from '../eval/linear.js';
import { swavStep } from '../methods/swav.js';
import { Option, type Command } from 'commander';
import { machineInfo } from './machine.js';
import { UsageError, action, bool01, crops as cropSpec, examples, int, num, subcommand } from './options.js';
import type { Architecture } from '../models/resnet.js';
import { architectures } from '../models/resnet.js';
import { FrozenTrunk } from '../models/inference.js';
import { listImages } from '../data/image.js';
import { DecodePool } from '../data/workers.js';
import { imageTensor } from '../data/loader.js';
import { multiCropBatches } from '../data/crops.js';
import { REFERENCE_MULTICROP } from '../data/multicrop.js';
import { AUTOCAST_DTYPE, type Amp } from '../methods/common.js';
import { MemoryBank, clusterMemory, kmeansRule } from '../methods/deepclusterv2.js';

interface StepOptions {
  arch: Architecture;
  batch: number;
  steps: number;
  warmup: number;
  amp: Amp;
  channelsLast: boolean;
  crops: { n: number; size: number }[];
  device?: string;
  stem: 'imagenet' | 'small';
  width?: number;
  stemStride: number;
  inChannels: number;
  hiddenMlp: number;
  prototypes: number;
  profile: number;
  profileDetail?: boolean;
}

function benchStep(o: StepOptions): Record<string, unknown> {
  const {
    arch,
    batch,
    steps,
    warmup,
    amp,
    channelsLast,
    crops: spec,
    stem,
    width,
    stemStride,
    inChannels,
    hiddenMlp,
    prototypes: nmbPrototypes,
  } = o;
  const profileSteps = o.profile;
  const device = o.device ?? (torch.cuda.isAvailable() ? 'cuda' : 'cpu');
  if (batch < 2) throw new UsageError('bench step: --batch must be at least 2 (BatchNorm needs it)');

  const model = models.architectures[arch]({
    numClasses: 0,
    normalize: true,
    hiddenMlp,
    outputDim: 128,
    nmbPrototypes,
    stem,
    stemStride,
    width,
    inChannels,
  });
  model.to({ device, memoryFormat: channelsLast ? 'channelsLast' : undefined });
  const opt = new optim.LARC(new optim.SGD(model.parameters(), { lr: 0.1, momentum: 0.9, weightDecay: 1e-6 }), {
    trustCoefficient: 0.001,
    clip: false,
  });
  const crops = spec.flatMap(({ n, size }) =>
    Array.from({ length: n }, () =>
      torch.keep(
        torch.tidy(() => torch.randn([batch, inChannels, size, size], { device }).contiguous(channelsLast ? 'channelsLast' : 'contiguous')),
      ),
    ),
  );
  const nmbCrops = spec.map((s) => s.n);

  // the trainer's own SwAV iteration (main_swav.py's defaults, no queue, prototypes never frozen)
  const ctx = {
    model,
    optimizer: opt,
    amp: AUTOCAST_DTYPE[amp],
    deviceType: device.startsWith('cuda') ? ('cuda' as const) : ('cpu' as const),
    hyper: { nmbCrops, cropsForAssign: [0, 1], temperature: 0.1, epsilon: 0.05, sinkhornIterations: 3, freezePrototypesNiters: 0 },
  };
  let iteration = 0;
  const step = () => swavStep(ctx, crops, 0.1, iteration++, null).loss; // loss.item() also synchronizes a GPU
  for (let i = 0; i < warmup; i++) step();
  const usage0 = process.resourceUsage();
  const t0 = performance.now();
  let loss = 0;
  for (let i = 0; i < steps; i++) loss = step();
  const dt = (performance.now() - t0) / 1000 / steps;
  const usage1 = process.resourceUsage();
  // where the time goes: self time per operator over `profileSteps` more steps, the 15 largest; with profileDetail,
  // every operator and inputs (shapes, dtypes, layouts: what bench/profile.mjs matches with PyTorch's profile)
  const profile =
    profileSteps > 0
      ? (() => {
          const { ops } = torch.profile(
            () => {
              for (let i = 0; i < profileSteps; i++) step();
            },
            { detail: o.profileDetail },
          );
          const total = ops.reduce((a, x) => a + x.selfUs, 0);
          return (o.profileDetail ? ops : ops.slice(0, 15)).map((x) => ({
            op: x.name,
            calls: x.count / profileSteps,
            ms: Number((x.selfUs / 1000 / profileSteps).toFixed(o.profileDetail ? 4 : 2)),
            share: Number((x.selfUs / total).toFixed(o.profileDetail ? 5 : 3)),
            ...(x.shapes ? { shapes: x.shapes, dtypes: x.dtypes, layouts: x.layouts } : {}),
          }));
        })()
      : undefined;
  return {
    arch,
    batch,
    crops: spec.map((s) => `${s.n}x${s.size}`).join(','),
    amp,
    channels_last: channelsLast ? 1 : 0,
    device,
    threads: torch.getNumThreads(),
    libtorch: torch.version,
    step_s: Number(dt.toFixed(5)),
    samples_per_s: Number((batch / dt).toFixed(3)),
    loss,
    peak_rss_mib: Math.round(process.resourceUsage().maxRSS / 1024),
    faults_per_step: Math.round((usage1.minorPageFault - usage0.minorPageFault) / steps),
    cpu_s_per_step: Number(
      ((usage1.userCPUTime + usage1.systemCPUTime - usage0.userCPUTime - usage0.systemCPUTime) / 1e6 / steps).toFixed(3),
    ),
    sys_s_per_step: Number(((usage1.systemCPUTime - usage0.systemCPUTime) / 1e6 / steps).toFixed(3)),
    profile,
  };
}

/** torch.load of a checkpoint, timed in-process (the peer is bench/torch_load.py). */
function benchLoad({ file }: { file: string }): Record<string, unknown> {
  const t0 = performance.now();
  const obj = torch.load(file);
  const dt = (performance.now() - t0) / 1000;
  const tensors = Object.values(obj as object).filter((t) => t instanceof torch.Tensor);
  tensors.forEach((t) => t.dispose());
  return { load_s: Number(dt.toFixed(4)), tensors: tensors.length, peak_rss_mib: Math.round(process.resourceUsage().maxRSS / 1024) };
}

/** Feature extraction throughput (the peer is ../shared/peer/torch_infer.py): the inference trunk on random images. */
function benchExtract(o: {
  arch: Architecture;
  batch: number;
  steps: number;
  size: number;
  amp: 'fp32' | 'bf16';
  device?: string;
}): Record<string, unknown> {
  const { arch, batch, steps, size, amp } = o;
  const device = o.device ?? (torch.cuda.isAvailable() ? 'cuda' : 'cpu');
  const model = models.architectures[arch]({ numClasses: 0 }).eval();
  const trunk = new FrozenTrunk(model, { dtype: amp === 'bf16' ? 'bfloat16' : 'float32', device });
  model.dispose();
  const x = torch.randn([batch, 3, size, size]).contiguous('channelsLast');
  for (let i = 0; i < 3; i++) torch.tidy(() => trunk.forward(x).cpu());
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) torch.tidy(() => trunk.forward(x).cpu());
  const dt = (performance.now() - t0) / 1000 / steps;
  trunk.dispose();
  x.dispose();
  return {
    arch,
    batch,
    size,
    amp,
    images_per_s: Number((batch / dt).toFixed(3)),
    libtorch: torch.version,
    peak_rss_mib: Math.round(process.resourceUsage().maxRSS / 1024),
  };
}

/**
 * Multi-crop data throughput per core (the peer is ../shared/peer/torch_multicrop_data.py): JPEG files decoded by
 * one worker thread, cropped, colored and normalized on the main thread with one libtorch thread; images per
 * CPU-second of the whole process.
 */
async function benchData(o: {
  dir: string;
  crops: { n: number; size: number }[];
  minScale: number[];
  maxScale: number[];
  rounds: number;
  batch: number;
}): Promise<Record<string, unknown>> {
  const { dir, crops: spec, minScale, maxScale, rounds, batch } = o;
  const files = listImages(dir).filter((p) => p.endsWith('.jpg'));
  if (!files.length) throw new UsageError(`bench data: no .jpg files in ${dir}`);
  torch.setNumThreads(1);
  const crops = {
    ...REFERENCE_MULTICROP,
    nmbCrops: spec.map((s) => s.n),
    sizeCrops: spec.map((s) => s.size),
    minScaleCrops: minScale,
    maxScaleCrops: maxScale,
  };
  const pool = new DecodePool(1);
  let best = 0;
  let bestWall = 0;
  try {
    for (let r = 0; r < rounds; r++) {
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      for (let i = 0; i < files.length; i += batch) {
        const samples = await Promise.all(files.slice(i, i + batch).map((file, k) => pool.decode(file, i + k, 0, r, crops)));
        torch.tidy(() => {
          multiCropBatches(
            samples.map((s) => imageTensor(s.image)),
            samples.map((s) => s.params),
            crops,
          );
        }); // freed now, as the trainer does
      }
      const cpu = process.cpuUsage(cpu0);
      best = Math.max(best, files.length / ((cpu.user + cpu.system) / 1e6));
      bestWall = Math.max(bestWall, files.length / ((performance.now() - t0) / 1000));
    }
  } finally {
    pool.close();
  }
  return {
    images_per_s: Number(best.toFixed(1)),
    wall_images_per_s: Number(bestWall.toFixed(1)),
    crops: spec.map((s) => `${s.n}x${s.size}`).join(','),
    images: files.length,
    cores: 1,
  };
}

/**
 * DeepCluster-v2's clustering at the start of an epoch (the peer is bench/torch_cluster.py, main_deepclusterv2.py's
 * cluster_memory): spherical k-means of every head on a random normalized bank (banks x n x dim), centroids into the
 * heads, the assignments table.
 */
function benchCluster(o: {
  n: number;
  dim: number;
  heads: number;
  k: number;
  banks: number;
  iters: number;
  seed: number;
  threads: number;
}): Record<string, unknown> {
  const { n, dim, heads, k, banks, iters, seed, threads } = o;
  torch.setNumThreads(threads);
  torch.manualSeed(seed);
  const bank = new MemoryBank(
    torch.keep(torch.tidy(() => torch.normalize(torch.randn([banks, n, dim]), 2, 2))),
    torch.keep(torch.arange(n, undefined, 1, { dtype: 'int64' })),
  );
  const prototypes = Array.from({ length: heads }, () => torch.keep(torch.zeros([k, dim])));
  const t0 = performance.now();
  const table = clusterMemory(bank, prototypes, kmeansRule(iters), n);
  const seconds = (performance.now() - t0) / 1000;
  const unlabelled = torch.tidy(() => table.lt(0).sum().item());
  if (unlabelled !== 0) throw new Error(`bench cluster: ${unlabelled} samples without a label`);
  table.dispose();
  bank.dispose();
  prototypes.forEach((p) => p.dispose());
  return { seconds: Number(seconds.toFixed(4)), n, k, heads, dim, banks, iters, threads, libtorch: torch.version };
}

/**
 * The linear probe on cached features (the peer is bench/torch_linear_probe.py): evaluation.linearProbe with
 * eval_linear.py's defaults on random features of a few classes, shuffled every epoch.
 */
async function benchProbe(o: {
  n: number;
  val: number;
  dim: number;
  classes: number;
  epochs: number;
  batch: number;
  threads: number;
}): Promise<Record<string, unknown>> {
  const { n, val, dim, classes, epochs, batch, threads } = o;
  torch.setNumThreads(threads);
  torch.manualSeed(0);
  const make = (rows: number, centers: torch.Tensor) =>
    torch.tidy(() => {
      const y = torch.randint(0, classes, [rows], { dtype: 'int64' });
      return { x: torch.keep(centers.indexSelect(0, y).add(torch.randn([rows, dim]).mul(4))), y: torch.keep(y) };
    });
  const centers = torch.randn([classes, dim]);
  const tr = make(n, centers);
  const va = make(val, centers);
  const t0 = performance.now();
  const r = await linearProbe(tr.x, tr.y, va.x, va.y, { epochs, batchSize: batch, lr: 0.3, momentum: 0.9, weightDecay: 1e-6, seed: 31 });
  const seconds = (performance.now() - t0) / 1000;
  r.classifier.dispose();
  [tr.x, tr.y, va.x, va.y, centers].forEach((t) => t.dispose());
  return {
    seconds: Number(seconds.toFixed(3)),
    best_top1: r.bestTop1,
    best_top5: r.bestTop5,
    n,
    dim,
    epochs,
    batch,
    libtorch: torch.version,
  };
}

/** `swav bench NAME`: the record printed as JSON with --json (what bench/*.mjs read), else one key per line. */
function benchmark<O extends object>(
  bench: Command,
  name: string,
  description: string,
  run: (o: O) => Record<string, unknown> | Promise<Record<string, unknown>>,
): Command {
  return subcommand(bench, name, description)
    .option('--json', 'print the record as one JSON line')
    .addHelpText('after', examples(`swav bench ${name} --json`, `node bench/${name}.mjs   # beside its PyTorch peer, alternating`))
    .action(
      action(async (o: O & { json?: boolean }) => {
        const res = await run(o);
        if (o.json) console.log(JSON.stringify(res));
        else for (const [k, v] of Object.entries(res)) console.log(`${k.padEnd(16)} ${v}`);
        return 0;
      }),
    );
}

const archOption = () => new Option('--arch <arch>', 'the architecture').choices(Object.keys(architectures)).default('resnet50');
const cropsOption = () => new Option('--crops <spec>', 'crops per size').argParser(cropSpec).default(cropSpec('2x224,6x96'), '2x224,6x96');
const numbers = (raw: string) => raw.split(',').map((x) => num(x));

export function benchCommand(swav: Command): void {
  const bench = subcommand(swav, 'bench', 'benchmarks, each the side of a PyTorch peer in bench/ (bench/README.md)');
  benchmark(bench, 'step', 'one SwAV training step on synthetic data (the peer: ../shared/peer/torch_swav_step.py)', benchStep)
    .addOption(archOption())
    .option('--batch <n>', 'images per crop', int, 64)
    .addOption(cropsOption())
    .option('--steps <n>', 'timed steps', int, 20)
    .option('--warmup <n>', 'untimed steps first', int, 5)
    .addOption(new Option('--amp <dtype>', 'autocast dtype').choices(['fp32', 'bf16', 'fp16']).default('bf16'))
    .addOption(new Option('--channels-last <0|1>', 'channels_last memory format').argParser(bool01).default(true, '1'))
    .option('--device <device>', 'cpu, cuda or cuda:N (default: cuda when there is one)')
    .addOption(new Option('--stem <stem>', 'the ResNet stem').choices(['imagenet', 'small']).default('imagenet'))
    .option('--width <n>', "the ResNet width (the first stage's channels)", int)
    .option('--stem-stride <n>', "the small stem's stride", int, 1)
    .option('--in-channels <n>', 'image channels', int, 3)
    .option('--hidden-mlp <n>', "the projection head's hidden width", int, 2048)
    .option('--prototypes <n>', 'SwAV prototypes', int, 3000)
    .option('--profile <n>', 'then time each operator over N more steps', int, 0)
    .option(
      '--profile-detail',
      "with --profile: every operator by its inputs (shapes, dtypes, layouts), as bench/profile.mjs matches them with PyTorch's",
    );
  benchmark(
    bench,
    'extract',
    'feature extraction throughput of the inference trunk (the peer: ../shared/peer/torch_infer.py)',
    benchExtract,
  )
    .addOption(archOption())
    .option('--batch <n>', 'images per forward', int, 256)
    .option('--size <px>', 'image size', int, 224)
    .option('--steps <n>', 'timed batches', int, 20)
    .addOption(new Option('--amp <dtype>', 'compute dtype').choices(['fp32', 'bf16']).default('bf16'))
    .option('--device <device>', 'cpu, cuda or cuda:N (default: cuda when there is one)');
  benchmark(
    bench,
    'data',
    'multi-crop decoding and augmentation of the .jpg files in --dir, per core (the peer: ../shared/peer/torch_multicrop_data.py)',
    benchData,
  )
    .requiredOption('--dir <dir>', 'a folder of .jpg files')
    .addOption(cropsOption())
    .option('--min-scale <list>', "RandomResizedCrop's smallest scale per size", numbers, [0.14, 0.05])
    .option('--max-scale <list>', 'its largest scale per size', numbers, [1, 0.14])
    .option('--rounds <n>', 'passes over the files (the best is kept)', int, 2)
    .option('--batch <n>', 'images decoded at once', int, 16);
  benchmark(bench, 'load', 'loading a checkpoint (the peer: bench/torch_load.py)', benchLoad).requiredOption(
    '--file <file>',
    'the checkpoint',
  );
  benchmark(bench, 'cluster', "DeepCluster-v2's clustering of a random memory bank (the peer: bench/torch_cluster.py)", benchCluster)
    .option('--n <n>', 'samples in the bank', int, 60000)
    .option('--dim <n>', 'feature dimension', int, 128)
    .option('--heads <n>', 'prototype heads', int, 3)
    .option('--k <n>', 'centroids per head', int, 3000)
    .option('--banks <n>', 'memory banks (crops)', int, 2)
    .option('--iters <n>', 'k-means iterations', int, 10)
    .option('--seed <n>', 'the random seed', int, 31)
    .option('--threads <n>', 'libtorch threads', int, 2);
  benchmark(
    bench,
    'probe',
    "the linear probe on cached features, eval_linear.py's defaults (the peer: bench/torch_linear_probe.py)",
    benchProbe,
  )
    .option('--n <n>', 'train rows', int, 60000)
    .option('--val <n>', 'validation rows', int, 10000)
    .option('--dim <n>', 'feature dimension', int, 512)
    .option('--classes <n>', 'classes', int, 10)
    .option('--epochs <n>', 'epochs', int, 100)
    .option('--batch <n>', 'batch size', int, 256)
    .option('--threads <n>', 'libtorch threads', int, 2);
  subcommand(bench, 'info', 'the machine a benchmark runs on: CPU, the flags that pick kernels, libtorch, oneDNN and the kernels it picks')
    .option('--json', 'print the record as one JSON line')
    .action(
      action((o: { json?: boolean }) => {
        const m = machineInfo();
        if (o.json) console.log(JSON.stringify(m));
        else for (const [k, v] of Object.entries(m)) console.log(`${k.padEnd(16)} ${Array.isArray(v) ? v.join('\n'.padEnd(18)) : v}`);
        return 0;
      }),
    );
}
